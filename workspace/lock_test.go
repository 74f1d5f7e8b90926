package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLock(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(baseHome), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *Home {
		h, err := Open(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	if err := os.Mkdir(filepath.Join(dir, ".mqttgen"), 0o700); err != nil {
		t.Fatal(err)
	}
	release, err := lockHome(open(), "apply")
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockHome(open(), "backup")
	if err == nil {
		t.Fatal("a second command took the lock of a locked home")
	}
	if !strings.Contains(err.Error(), "mqttgen apply (pid ") || !strings.Contains(err.Error(), "is working on this home ("+dir+"): wait for it to finish") {
		t.Fatalf("error %q does not name the holder", err)
	}
	release()
	if b, _ := os.ReadFile(filepath.Join(dir, ".mqttgen", LockName)); len(b) != 0 {
		t.Errorf("the lock file still names a holder after release: %q", b)
	}
	release2, err := lockHome(open(), "backup")
	if err != nil {
		t.Fatalf("lock not released: %v", err)
	}
	release2()
	st, err := os.Stat(filepath.Join(dir, ".mqttgen", LockName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %o, want 600", st.Mode().Perm())
	}
}

// Without a state directory the lock creates none, and still excludes.
func TestLockCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(baseHome), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	release, err := lockHome(h, "restore")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := lockHome(h, "apply"); err == nil || !strings.Contains(err.Error(), "another mqttgen command is working on this home") {
		t.Fatalf("second lock: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the home folder holds %d entries, want home.cue only", len(ents))
	}
}

func lockHome(h *Home, command string) (func(), error) {
	return LockDir(h.Dir, h.Secrets.Dir, command)
}
