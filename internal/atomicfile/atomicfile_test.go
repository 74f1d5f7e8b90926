package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAll(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []File{{filepath.Join(dir, "a"), []byte("new a"), 0o600}, {filepath.Join(dir, "b"), []byte("b"), 0o644}}
	if err := WriteAll(files); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f.Path)
		st, _ := os.Stat(f.Path)
		if err != nil || string(data) != string(f.Data) || st.Mode().Perm() != f.Mode {
			t.Errorf("%s: %q %v %v", f.Path, data, st.Mode(), err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left: %v", entries)
	}
	// A file that cannot be written leaves the others as they were.
	bad := []File{{filepath.Join(dir, "a"), []byte("newer"), 0o600}, {filepath.Join(dir, "no", "such"), nil, 0o600}}
	if err := WriteAll(bad); err == nil {
		t.Fatal("want an error")
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "a")); string(data) != "new a" {
		t.Errorf("a = %q after a failed batch", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("temporary files left after a failed batch: %v", entries)
	}
}
