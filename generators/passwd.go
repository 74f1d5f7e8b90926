package generators

import (
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/schema"
)

// Passwd renders the password file: one line per account, users and devices,
// sorted by name, with the hashes package secrets made or kept.
func Passwd(cfg *schema.Config, hashes map[string]string) File {
	var entries []passwd.Entry
	for _, a := range cfg.Accounts() {
		entries = append(entries, passwd.Entry{User: a.Name, Hash: hashes[a.Name]})
	}
	return File{Path: "config/passwd", Mode: secretMode, Data: passwd.Format(entries)}
}
