package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/workspace"
)

// One command at a time works on a home: while another holds its lock, a
// command fails at once, names the holder and changes nothing.
func TestLockedHome(t *testing.T) {
	dir := t.TempDir()
	home, err := os.ReadFile(filepath.Join("..", "..", "examples", "minimal", "home.cue"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), home, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, ".mqttgen")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	release, err := workspace.LockDir(dir, state, "apply")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	plan := filepath.Join(dir, "home.plan")
	if err := deploy.Save(plan, &deploy.Plan{Fingerprint: "observed"}, &deploy.Desired{Project: "locked-home-test"}, dir, state, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"render", dir, "-o", out},
		{"secrets", "show", "admin", dir},
		{"secrets", "rotate", "admin", dir},
		{"status", dir},
		{"apply", plan},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Errorf("%v: exit %d, want 1\n%s%s", args, code, stdout.String(), stderr.String())
		}
		if want := "mqttgen apply (pid "; !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "is working on this home") {
			t.Errorf("%v: stderr %q does not name the holder", args, stderr.String())
		}
		if strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Errorf("%v: more than one line: %q", args, stderr.String())
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("render wrote %s while the home was locked", out)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 1 {
		t.Errorf("state directory holds %d entries, want only the lock", len(ents))
	}

	release()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"render", dir, "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("render after the lock was released: exit %d\n%s", code, stderr.String())
	}
	// The command released the lock when it ended.
	again, err := workspace.LockDir(dir, state, "test")
	if err != nil {
		t.Fatalf("render kept the lock: %v", err)
	}
	again()
}
