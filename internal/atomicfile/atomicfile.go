// Package atomicfile writes files so that a reader sees the old content or
// the new, never a part: a crash or a full disk leaves the old file in place.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
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

// File is one file of WriteAll.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// WriteAll writes files as Write does, each atomically, but with one flush
// of the file system for all instead of one per file: temporary files
// first, then syncfs, then the renames. A thousand devices render two
// thousand discovery files; one fsync each would take seconds.
func WriteAll(files []File) (err error) {
	temps := make([]string, 0, len(files))
	renamed := 0
	defer func() {
		for _, t := range temps[renamed:] {
			os.Remove(t)
		}
	}()
	var last *os.File
	for _, f := range files {
		tmp, err := os.CreateTemp(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".tmp*")
		if err != nil {
			return err
		}
		temps = append(temps, tmp.Name())
		_, werr := tmp.Write(f.Data)
		if werr == nil {
			werr = tmp.Chmod(f.Mode)
		}
		if werr != nil {
			tmp.Close()
			return werr
		}
		if last != nil {
			last.Close()
		}
		last = tmp
	}
	if last != nil {
		err := unix.Syncfs(int(last.Fd()))
		last.Close()
		if err != nil {
			return err
		}
	}
	for i, f := range files {
		if err := os.Rename(temps[i], f.Path); err != nil {
			return err
		}
		renamed++
	}
	return nil
}
