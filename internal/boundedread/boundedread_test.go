package boundedread

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("12345"), 0o600)
	if data, err := File(p, 5); err != nil || string(data) != "12345" {
		t.Errorf("File(5 bytes, 5) = %q, %v", data, err)
	}
	if _, err := File(p, 4); err == nil || !strings.Contains(err.Error(), "larger than 4 bytes") {
		t.Errorf("File(5 bytes, 4) = %v", err)
	}
	start := time.Now()
	if _, err := File("/dev/zero", 1<<16); err == nil || !strings.Contains(err.Error(), "/dev/zero: larger than") {
		t.Errorf("/dev/zero: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("/dev/zero took %v", d)
	}
	if _, err := File(filepath.Join(t.TempDir(), "none"), 4); err == nil || strings.Contains(err.Error(), "open ") {
		t.Errorf("missing file: %v", err)
	}
}
