package backup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestReadStateImported: an imported home's kept hashes are archived as the
// other hashes are, its bridge passwords only with secrets.
func TestReadStateImported(t *testing.T) {
	dir := t.TempDir()
	for rel, data := range map[string]string{
		"passwd.hashes":    "a:$7$x\n",
		"hashes/alice":     "$7$1000$salt$key\n",
		"passwords/bob":    "bob-pw\n",
		"bridges/cloud":    "cloud-pw\n",
		"certs/server.crt": "PEM",
	} {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	paths := func(fs []File) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Path)
		}
		slices.Sort(out)
		return out
	}
	public, secret, omitted, err := readState(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(public), []string{"state/certs/server.crt", "state/hashes/alice", "state/passwd.hashes"}; !slices.Equal(got, want) {
		t.Errorf("public %v, want %v", got, want)
	}
	var om []string
	for _, o := range omitted {
		om = append(om, o.Path)
	}
	slices.Sort(om)
	if len(secret) > 0 || !slices.Equal(om, []string{"state/bridges/cloud", "state/passwords/bob"}) {
		t.Errorf("without secrets: secret %v, omitted %v", paths(secret), om)
	}
	_, secret, _, err = readState(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(secret), []string{"state/bridges/cloud", "state/passwords/bob"}; !slices.Equal(got, want) {
		t.Errorf("with secrets %v, want %v", got, want)
	}
}
