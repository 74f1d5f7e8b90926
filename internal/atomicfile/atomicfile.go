// Package atomicfile writes files so that a reader sees the old content or
// the new, never a part: a crash or a full disk leaves the old file in place.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Write writes data to path atomically: a temporary file in the same
// folder, synced, given its mode, then renamed over path.
func Write(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
