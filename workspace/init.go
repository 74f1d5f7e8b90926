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

// PlanExt is the extension the docs give saved plans (mqttgen plan -o):
// init's .gitignore covers it. A saved plan holds no secret (references and
// fingerprints only), but names the home's accounts and layout, and is
// valid for one state of one engine: it has no place in git.
const PlanExt = ".plan"

// ignored are the .gitignore lines init makes sure of: the state directory
// (passwords, hashes, keys, default backups), rendered files, saved plans.
var ignored = []string{"/" + DefaultStateDir + "/", "/out/", "*" + PlanExt}

const ignoreHeader = "# mqttgen: passwords, hashes and keys; rendered files; saved plans"

// Init writes a minimal commented home.cue and a .gitignore into dir. It
// refuses to overwrite an existing home.cue; an existing .gitignore gets the
// lines of ignored it lacks.
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
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	have := strings.Split(string(old), "\n")
	var add []string
	for _, l := range ignored {
		if !slices.Contains(have, l) {
			add = append(add, l)
		}
	}
	if len(add) == 0 {
		return "", nil
	}
	data := old
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, ignoreHeader+"\n"+strings.Join(add, "\n")+"\n"...)
	if err := atomicfile.Write(ignore, data, 0o644); err != nil {
		return "", err
	}
	return ignore, nil
}
