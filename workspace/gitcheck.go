package workspace

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mqttgen/mqttgen/generators"
)

// Unignored reports the files of files (written under out) that hold
// secrets (mode 0600: passwd, acl, keys, Zigbee2MQTT's secret.yaml) and lie
// inside a git work tree without being ignored by it: a `git add .` away from
// being committed. root is the work tree; "" with no paths when out is not in
// one. git itself answers (git check-ignore), so every .gitignore, the
// global excludes and .git/info/exclude count; without git, err says so.
func Unignored(out string, files []generators.File) (root string, paths []string, err error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", nil, err
	}
	for dir := abs; ; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			root = dir
			break
		}
		if dir == filepath.Dir(dir) {
			return "", nil, nil
		}
	}
	var secret []string
	for _, f := range files {
		if f.Mode.Perm()&0o077 == 0 {
			secret = append(secret, filepath.Join(abs, filepath.FromSlash(f.Path)))
		}
	}
	if len(secret) == 0 {
		return root, nil, nil
	}
	cmd := exec.Command("git", "-C", root, "check-ignore", "--stdin")
	cmd.Stdin = strings.NewReader(strings.Join(secret, "\n") + "\n")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		// Exit 1: none of them is ignored.
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return root, nil, err
		}
	}
	ignored := map[string]bool{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		p := sc.Text()
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		ignored[filepath.Clean(p)] = true
	}
	for _, p := range secret {
		if !ignored[p] {
			rel, _ := filepath.Rel(abs, p)
			paths = append(paths, filepath.ToSlash(rel))
		}
	}
	return root, paths, nil
}
