package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
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
		{"secrets", "show", "admin", dir}, // it has no password yet: show would make one
		{"secrets", "rotate", "admin", dir},
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

// Read-only commands are not blocked by the lock (say, an apply waiting at
// its prompt): secrets show and bundle of an account whose password exists,
// status and plan answer, and write nothing into the state directory.
func TestReadOnlyCommandsWhileLocked(t *testing.T) {
	dir := t.TempDir()
	home := "package home\nbroker: hostname: \"mqtt.lan\"\nlisteners: {mqtt: port: 1883, mqtts: {port: 8883, tls: true}}\ntls: {}\nusers: admin: acl: [\"readwrite #\"]\ndevices: porch: publishes: [\"state\"]\ndeploy: project: \"mqttgen-readonly-test\"\n"
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"render", dir, "-o", filepath.Join(dir, "out")}, &stdout, &stderr); code != 0 {
		t.Fatalf("render: %s", stderr.String())
	}
	state := filepath.Join(dir, ".mqttgen")
	release, err := workspace.LockDir(dir, state, "apply")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	before := treeSums(t, state) // with the holder's name in the lock file
	pw, _ := os.ReadFile(filepath.Join(state, "passwords", "admin"))
	for _, args := range [][]string{
		{"secrets", "show", "admin", dir},
		{"secrets", "bundle", "porch", dir, "--format", "json"},
		{"status", dir},
		{"plan", dir},
	} {
		stdout.Reset()
		stderr.Reset()
		run(args, &stdout, &stderr)
		if strings.Contains(stderr.String(), "is working on this home") {
			t.Errorf("%v was blocked by the lock: %s", args, stderr.String())
		}
		if args[1] == "show" && stdout.String() != string(pw) {
			t.Errorf("secrets show printed %q, want the stored password", stdout.String())
		}
		if args[1] == "bundle" && !strings.Contains(stdout.String(), `"ca_certificate"`) {
			t.Errorf("bundle: %s%s", stdout.String(), stderr.String())
		}
	}
	if after := treeSums(t, state); !maps.Equal(before, after) {
		t.Errorf("read-only commands changed the state directory:\nbefore %v\nafter  %v", before, after)
	}
}

// treeSums is the SHA-256 of every file under dir, by relative path.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sums[rel] = fmt.Sprintf("%x", sha256.Sum256(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}
