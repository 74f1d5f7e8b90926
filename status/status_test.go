package status

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/workspace"
)

func open(t *testing.T, text string) (*workspace.Home, []generators.File) {
	t.Helper()
	return openIn(t, t.TempDir(), text)
}

func openIn(t *testing.T, dir, text string) (*workspace.Home, []generators.File) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := workspace.Open(dir, filepath.Join(dir, ".mqttgen"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := h.Render(workspace.RenderOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var config []generators.File
	for _, f := range files {
		if rel, ok := strings.CutPrefix(f.Path, "config/"); ok {
			f.Path = rel
			config = append(config, f)
		}
	}
	return h, config
}

// TestSysReader: the monitoring user first, else the first account the
// deployed acl lets read $SYS ('#' does not cover it), else an explanation.
func TestSysReader(t *testing.T) {
	h, files := open(t, `package home
listeners: mqtt: port: 1883
users: {
	admin: acl: ["readwrite #"]
	zmon: acl: ["read $SYS/#"]
	exporter: acl: ["read $SYS/#"]
}
monitoring: prometheus: {enabled: true, user: "exporter"}
`)
	if user, pw, why := sysReader(h, files); user != "exporter" || pw == "" || why != "" {
		t.Errorf("with monitoring: %q %q", user, why)
	}
	h, files = open(t, `package home
listeners: mqtt: port: 1883
users: {
	admin: acl: ["readwrite #"]
	zmon: acl: ["read $SYS/broker/#"]
}
`)
	if user, _, _ := sysReader(h, files); user != "zmon" {
		t.Errorf("without monitoring: %q, want zmon", user)
	}
	// An imported account (its password unknown) is passed over.
	dir := t.TempDir()
	hash := "$7$101$qBa248uFLxgUEaNL$pX+6e4ImTa7kjpWgISiJ9ThMhUnr2IbLIYpJ7kLsCLeADWENcl3mnSPZwuhXJS2MFZtAEYS9sVRNWfIhvy+yZw=="
	if err := os.MkdirAll(filepath.Join(dir, ".mqttgen", "hashes"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".mqttgen", "hashes", "amon"), []byte(hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, files = openIn(t, dir, `package home
listeners: mqtt: port: 1883
users: {
	amon: {password: "hash", acl: ["read $SYS/#"]}
	zmon: acl: ["read $SYS/#"]
}
`)
	if user, _, why := sysReader(h, files); user != "zmon" {
		t.Errorf("an imported reader first: %q %q, want zmon", user, why)
	}
	h, files = open(t, `package home
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
`)
	if user, _, why := sysReader(h, files); user != "" || !strings.Contains(why, `add users: monitor: acl: ["read $SYS/#"]`) {
		t.Errorf("no reader: %q %q", user, why)
	}
}
