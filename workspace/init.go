package workspace

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
)

//go:embed template/home.cue
var homeTemplate []byte

// gitignore keeps secrets and rendered files out of git.
const gitignore = "# mqttgen: passwords, hashes and keys; rendered files\n/" + DefaultStateDir + "/\n/out/\n"

// Init writes a minimal commented home.cue and a .gitignore into dir. It
// refuses to overwrite an existing home.cue; an existing .gitignore gets the
// state directory added when it lacks it.
func Init(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "home.cue")
	if _, err := os.Stat(home); err == nil {
		return nil, fmt.Errorf("%s exists: init writes a new home only", home)
	}
	if err := atomicfile.Write(home, homeTemplate, 0o644); err != nil {
		return nil, err
	}
	written := []string{home}
	ignore, err := WriteGitignore(dir)
	if err != nil || ignore == "" {
		return written, err
	}
	return append(written, ignore), nil
}

// WriteGitignore makes sure dir's .gitignore keeps the state directory and
// rendered files out of git. It returns the file's path when it wrote it.
func WriteGitignore(dir string) (string, error) {
	ignore := filepath.Join(dir, ".gitignore")
	old, err := os.ReadFile(ignore)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", err
	case slices.Contains(strings.Split(string(old), "\n"), "/"+DefaultStateDir+"/"):
		return "", nil
	}
	data := append(old, []byte(gitignore)...)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		data = append(append(old, '\n'), []byte(gitignore)...)
	}
	if err := atomicfile.Write(ignore, data, 0o644); err != nil {
		return "", err
	}
	return ignore, nil
}
