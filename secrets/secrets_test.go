package secrets

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/schema"
)

func TestGenerated(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "state"), t.TempDir())
	pw, err := s.Password("admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`).MatchString(pw) {
		t.Errorf("password %q: want 32 URL-safe characters", pw)
	}
	again, _ := s.Password("admin", nil)
	if again != pw {
		t.Error("a stored password changed")
	}
	other, _ := s.Password("device", nil)
	if other == pw {
		t.Error("two accounts got one password")
	}
	st, err := os.Stat(s.passwordPath("admin"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v, %v", st.Mode(), err)
	}
	if st, _ := os.Stat(s.Dir); st.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v", st.Mode())
	}
	rotated, err := s.Rotate("admin")
	if err != nil || rotated == pw {
		t.Fatalf("rotate: %q %v", rotated, err)
	}
	if now, _ := s.Password("admin", nil); now != rotated {
		t.Error("rotation not kept")
	}
}

func TestExternal(t *testing.T) {
	home := t.TempDir()
	s := NewStore(filepath.Join(home, ".mqttgen"), home)
	s.Getenv = func(k string) string {
		return map[string]string{
			"PW":     "from-env",
			"INJECT": "pw\ncleansession false\ntopic x/# out 0\nconnection evil\naddress 127.0.0.1:40198\ntopic # both 0",
			"SPACE":  "pw ",
			"TAB":    "p\tw",
		}[k]
	}
	os.WriteFile(filepath.Join(home, "pw.txt"), []byte("from-file\n"), 0o600)
	os.WriteFile(filepath.Join(home, "two.txt"), []byte("a\nb\n"), 0o600)
	os.WriteFile(filepath.Join(home, "space.txt"), []byte("from-file \n"), 0o600)
	os.WriteFile(filepath.Join(home, "nul.txt"), []byte("a\x00b\n"), 0o600)
	os.WriteFile(filepath.Join(home, "big.txt"), []byte(strings.Repeat("x", MaxPasswordFile+1)), 0o600)
	for _, tt := range []struct {
		src       schema.Secret
		want, err string
	}{
		{schema.Secret{Env: "PW"}, "from-env", ""},
		{schema.Secret{Env: "NOPE"}, "", "environment variable NOPE is not set"},
		{schema.Secret{File: "pw.txt"}, "from-file", ""},
		{schema.Secret{File: filepath.Join(home, "pw.txt")}, "from-file", ""},
		{schema.Secret{File: "missing"}, "", "missing: no such file or directory"},
		{schema.Secret{File: "two.txt"}, "", "want the password alone on one line"},
		// Issue 11: what Mosquitto cannot carry is refused where it is read.
		{schema.Secret{Env: "INJECT"}, "", "environment variable INJECT: the password holds the control character U+000A"},
		{schema.Secret{Env: "SPACE"}, "", "environment variable SPACE: the password has leading or trailing white space"},
		{schema.Secret{Env: "TAB"}, "", "the password holds the control character U+0009"},
		{schema.Secret{File: "space.txt"}, "", "space.txt: the password has leading or trailing white space"},
		{schema.Secret{File: "nul.txt"}, "", "nul.txt: the password holds the control character U+0000"},
		{schema.Secret{File: "big.txt"}, "", "big.txt: larger than 65537 bytes"},
		{schema.Secret{File: "/dev/zero"}, "", "/dev/zero: larger than 65537 bytes"},
	} {
		got, err := s.External(tt.src)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: %q, %v; want %q, %q", tt.src, got, err, tt.want, tt.err)
		}
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Error("reading external secrets created the state directory")
	}
}

func TestHashesKeptWhileValid(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "state"), "")
	pws := map[string]string{"a": "alpha", "b": "bravo"}
	first, err := s.Hashes(pws, 10)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range first {
		if !passwd.Verify(h, pws[name]) {
			t.Errorf("%s: hash does not verify", name)
		}
	}
	second, _ := s.Hashes(pws, 10)
	if second["a"] != first["a"] || second["b"] != first["b"] {
		t.Error("valid hashes were made anew")
	}

	// A lost fingerprint file: the hashes still verify and are kept.
	os.Remove(filepath.Join(s.Dir, "passwd.fingerprints"))
	third, _ := s.Hashes(pws, 10)
	if third["a"] != first["a"] {
		t.Error("a verifying hash was replaced when its fingerprint was missing")
	}

	// A changed password, and another iteration count: hashed anew.
	pws["b"] = "changed"
	fourth, _ := s.Hashes(pws, 10)
	if fourth["b"] == first["b"] || !passwd.Verify(fourth["b"], "changed") || fourth["a"] != first["a"] {
		t.Error("only b's hash should change with its password")
	}
	fifth, _ := s.Hashes(pws, 11)
	if p, _ := passwd.ParseHash(fifth["a"]); p.Iterations != 11 {
		t.Errorf("iterations %d, want 11", p.Iterations)
	}

	// A forged fingerprint never keeps a hash of another password.
	os.WriteFile(filepath.Join(s.Dir, "passwd.fingerprints"), []byte("a:"+fingerprint(fifth["a"], "alpha")+"\n"), 0o600)
	pws["a"] = "new-a"
	sixth, _ := s.Hashes(pws, 11)
	if !passwd.Verify(sixth["a"], "new-a") {
		t.Error("a stale fingerprint kept the old hash")
	}
	for _, f := range []string{"passwd.hashes", "passwd.fingerprints"} {
		if st, err := os.Stat(filepath.Join(s.Dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st.Mode(), err)
		}
	}
}
