package generators

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/schema"
)

// Passwd renders the password file: one line per account, users and devices,
// sorted by name, with the hashes package secrets made or kept, and the
// healthcheck's login (schema.ProbeUser) when the inputs hold it.
func Passwd(cfg *schema.Config, in Inputs) (File, error) {
	var entries []passwd.Entry
	for _, a := range cfg.Accounts() {
		entries = append(entries, passwd.Entry{User: a.Name, Hash: in.Hashes[a.Name]})
	}
	if in.probe() {
		entries = append(entries, passwd.Entry{User: schema.ProbeUser, Hash: in.ProbeHash})
		slices.SortFunc(entries, func(a, b passwd.Entry) int { return strings.Compare(a.User, b.User) })
	}
	if err := passwd.Check(entries); err != nil {
		return File{}, fmt.Errorf("passwd: %w", err)
	}
	return File{Path: "config/passwd", Mode: secretMode, Data: passwd.Format(entries)}, nil
}
