package backup

import (
	"path/filepath"

	"github.com/mqttgen/mqttgen/workspace"
)

// DefaultKeep is how many archives are kept when home.cue says nothing.
const DefaultKeep = 7

// DefaultDir is the backup folder, inside the state directory, of a home
// without a backup block.
const DefaultDir = "backups"

// Location is a home's backup folder and how many archives it keeps:
// backup.dir (relative to home.cue's folder) and backup.keep; without a
// backup block, backups/ in the state directory (which the .gitignore of
// mqttgen init keeps out of git) and 7. Backups are taken without one too:
// apply takes one before it replaces the broker.
func Location(h *workspace.Home) (dir string, keep int) {
	b := h.Config.Backup
	if b == nil || b.Dir == "" {
		return filepath.Join(h.Secrets.Dir, DefaultDir), DefaultKeep
	}
	dir = b.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(h.Dir, dir)
	}
	keep = b.Keep
	if keep < 1 {
		keep = DefaultKeep
	}
	return filepath.Clean(dir), keep
}
