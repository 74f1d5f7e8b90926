package passwd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// needTool returns the path of a Mosquitto program. When it is missing the
// test is skipped, or fails when CI is "true", so that CI cannot pass
// without the cross-check.
func needTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); isExec(p) {
			return p
		}
	}
	msg := name + " is not installed (Debian: apt-get install mosquitto mosquitto-clients); the cross-check against the real tool cannot run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// TestMosquittoPasswd has mosquitto_passwd write hashes and checks that
// Parse reads its file and Verify accepts the right passwords only.
// mosquitto_passwd 2.0.11 knows -H sha512-pbkdf2 (the default, $7$ with 101
// iterations) and -H sha512 ($6$); it also takes -I ITERATIONS, which its
// help does not list.
func TestMosquittoPasswd(t *testing.T) {
	tool := needTool(t, "mosquitto_passwd")
	file := filepath.Join(t.TempDir(), "passwd")
	users := []struct {
		name, password, algo string
		kind, iterations     int
		setIterations        bool
	}{
		{"alice", "apw", "", 7, 101, false},
		{"bob", "pässwörd with spaces", "sha512-pbkdf2", 7, 101, false},
		{"six", "spw", "sha512", 6, 0, false},
		{"dave", "dpw", "sha512-pbkdf2", 7, 1, true},
		{"erin", "epw", "", 7, 1000, true},
	}
	for i, u := range users {
		args := []string{"-b", file, u.name, u.password}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if u.setIterations {
			args = append([]string{"-I", strconv.Itoa(u.iterations)}, args...)
		}
		if u.algo != "" {
			args = append([]string{"-H", u.algo}, args...)
		}
		if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
		}
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse refuses mosquitto_passwd's file: %v", err)
	}
	if len(entries) != len(users) {
		t.Fatalf("Parse read %d entries, want %d: %v", len(entries), len(users), entries)
	}
	for i, u := range users {
		e := entries[i]
		if e.User != u.name {
			t.Errorf("entry %d is %q, want %q", i, e.User, u.name)
		}
		if !Verify(e.Hash, u.password) {
			t.Errorf("Verify(%q, %q) = false for mosquitto_passwd's hash", e.Hash, u.password)
		}
		for _, wrong := range []string{u.password + "x", strings.ToUpper(u.password) + "!", "apw"} {
			if wrong != u.password && Verify(e.Hash, wrong) {
				t.Errorf("Verify(%q, %q) = true for a wrong password", e.Hash, wrong)
			}
		}
		p, err := ParseHash(e.Hash)
		if err != nil || p.Kind != u.kind || p.Iterations != u.iterations {
			t.Errorf("ParseHash(%q) = %+v, %v; want kind %d, %d iterations", e.Hash, p, err, u.kind, u.iterations)
		}
	}
}
