package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/workspace"
)

// TestProbeSkipsImported: apply's probe logs in as the first account whose
// password mqttgen knows; an imported hash (password: "hash") is passed
// over, and a home of imported accounts only is told what to do.
func TestProbeSkipsImported(t *testing.T) {
	hash := "$7$101$qBa248uFLxgUEaNL$pX+6e4ImTa7kjpWgISiJ9ThMhUnr2IbLIYpJ7kLsCLeADWENcl3mnSPZwuhXJS2MFZtAEYS9sVRNWfIhvy+yZw==\n"
	open := func(text string) *workspace.Home {
		dir := t.TempDir()
		for rel, data := range map[string]string{"home.cue": text, ".mqttgen/hashes/alice": hash} {
			p := filepath.Join(dir, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		h, err := workspace.Open(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	d, err := deploy.FromHome(open("package home\nlisteners: mqtt: port: 1883\nusers: alice: password: \"hash\"\nusers: bob: {}\n"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if d.Probe.Credentials.Username != "bob" || d.Probe.Credentials.Password == "" {
		t.Errorf("probe as %q, want bob", d.Probe.Credentials.Username)
	}
	_, err = deploy.FromHome(open("package home\nlisteners: mqtt: port: 1883\nusers: alice: password: \"hash\"\n"), time.Now())
	if err == nil || !strings.Contains(err.Error(), "mqttgen knows no account's password") || !strings.Contains(err.Error(), "mqttgen secrets rotate alice") {
		t.Errorf("only imported accounts: %v", err)
	}
}
