package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mqttgen/mqttgen/secrets"
)

// DefaultBackupKeep is how many archives are kept when home.cue says nothing.
const DefaultBackupKeep = 7

// DefaultBackupDir is the backup folder, inside the state directory, of a home
// without a backup block.
const DefaultBackupDir = "backups"

// BackupLocation is a home's backup folder and how many archives it keeps:
// backup.dir (relative to home.cue's folder) and backup.keep; without a
// backup block, backups/ in the state directory (which the .gitignore of
// mqttgen init keeps out of git) and 7. Backups are taken without one too:
// apply takes one before it replaces the broker.
func (h *Home) BackupLocation() (dir string, keep int) {
	b := h.Config.Backup
	if b == nil || b.Dir == "" {
		return filepath.Join(h.Secrets.Dir, DefaultBackupDir), DefaultBackupKeep
	}
	dir = b.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(h.Dir, dir)
	}
	keep = b.Keep
	if keep < 1 {
		keep = DefaultBackupKeep
	}
	return filepath.Clean(dir), keep
}

// AccountPassword is the password of the user or device name, from the
// state directory or home.cue's secret reference.
func (h *Home) AccountPassword(name string) (string, error) {
	for _, a := range h.Config.Accounts() {
		if a.Name == name {
			return h.Secrets.Password(a.Name, a.Password)
		}
	}
	return "", fmt.Errorf("no user or device %s", name)
}

// StateFile is a file of a state directory, its path relative to it.
type StateFile struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

// WithState calls fn with the home as it will be once the state files
// (from a backup archive) are written where the state directory lacks
// them: a temporary copy of the state directory with those files added,
// so that a home whose state directory was lost is rendered with the
// archive's passwords and CA, not with new ones made now. The state
// directory itself is not written, and the copy is gone when fn returns.
func (h *Home) WithState(state []StateFile, fn func(*Home) error) error {
	tmp, err := os.MkdirTemp("", "mqttgen-restore-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o700); err != nil {
		return err
	}
	if err := copyTree(h.Secrets.Dir, tmp); err != nil {
		return fmt.Errorf("copy the state directory: %w", err)
	}
	for _, f := range state {
		if !fs.ValidPath(f.Path) {
			continue
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.Path))
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, f.Mode.Perm()|0o600); err != nil {
			return err
		}
	}
	overlay := &Home{Dir: h.Dir, Config: h.Config, Warnings: h.Warnings, Secrets: secrets.NewStore(tmp, h.Dir)}
	overlay.Secrets.ReadFile, overlay.Secrets.Getenv = h.Secrets.ReadFile, h.Secrets.Getenv
	return fn(overlay)
}

// copyTree copies the regular files and folders under src into dst (a
// missing src copies nothing).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == src {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case e.IsDir():
			return os.MkdirAll(target, 0o700)
		case e.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
		return nil
	})
}
