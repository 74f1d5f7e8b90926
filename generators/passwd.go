package generators

import (
	"fmt"

	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/schema"
)

// Passwd renders the password file: one line per account, users and devices,
// sorted by name, with the hashes package secrets made or kept.
func Passwd(cfg *schema.Config, hashes map[string]string) (File, error) {
	var entries []passwd.Entry
	for _, a := range cfg.Accounts() {
		entries = append(entries, passwd.Entry{User: a.Name, Hash: hashes[a.Name]})
	}
	if err := passwd.Check(entries); err != nil {
		return File{}, fmt.Errorf("passwd: %w", err)
	}
	return File{Path: "config/passwd", Mode: secretMode, Data: passwd.Format(entries)}, nil
}
