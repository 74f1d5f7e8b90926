package kube

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqttgen/mqttgen/deploy"
)

// Reloader is `mqttgen reloader`, in a Mosquitto pod: Mosquitto 2.1 refuses
// the symlinked files of Secret and ConfigMap volumes (and mqttgen never
// sets MOSQUITTO_UNSAFE_ALLOW_SYMLINKS), so the mounted files are copied as
// plain files into a folder of the pod's own (an emptyDir) that Mosquitto
// reads; an init container makes the first copy (Once), a sidecar in the
// pod's shared process namespace the next ones, each followed by SIGHUP.
// A copy is checked first as apply checks files before SIGHUP
// (deploy.ValidateFiles): an update that would make Mosquitto drop its ACL
// or quit is refused and the previous files keep serving.
type Reloader struct {
	// From is the mounted volume, To the folder Mosquitto reads.
	From, To string
	Log      io.Writer
	// Proc is where processes are found (/proc).
	Proc string
}

// Sync copies From to To when they differ, if the files pass the checks.
// It reports whether anything changed.
func (r *Reloader) Sync() (bool, error) {
	files, err := readTree(r.From)
	if err != nil {
		return false, err
	}
	if len(files) == 0 {
		return false, fmt.Errorf("%s holds no file", r.From)
	}
	current, err := readTree(r.To)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if sameFiles(files, current) {
		return false, nil
	}
	if err := deploy.ValidateFiles(files); err != nil {
		return false, fmt.Errorf("refusing the update of %s, the previous files keep serving: %w", r.From, err)
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := writeFile(filepath.Join(r.To, p), files[p]); err != nil {
			return false, err
		}
	}
	for p := range current {
		if _, ok := files[p]; !ok {
			if err := os.Remove(filepath.Join(r.To, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, err
			}
		}
	}
	return true, nil
}

// Run syncs every interval until ctx ends, and sends SIGHUP to Mosquitto
// after each copy; failures are logged and the next update tried.
func (r *Reloader) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		changed, err := r.Sync()
		switch {
		case err != nil:
			r.logf("%v", err)
		case changed:
			if pid, err := r.Signal(); err != nil {
				r.logf("copied the updated files of %s to %s, but %v", r.From, r.To, err)
			} else {
				r.logf("copied the updated files of %s to %s and sent SIGHUP to mosquitto (pid %d)", r.From, r.To, pid)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (r *Reloader) logf(format string, args ...any) {
	if r.Log != nil {
		fmt.Fprintf(r.Log, time.Now().UTC().Format(time.RFC3339)+" reloader: "+format+"\n", args...)
	}
}

// Signal sends SIGHUP to the Mosquitto that reads To: the process named
// mosquitto whose command line names To's mosquitto.conf (the image's
// `mosquitto -c /mosquitto/config/mosquitto.conf`).
func (r *Reloader) Signal() (int, error) {
	proc := r.Proc
	if proc == "" {
		proc = "/proc"
	}
	confPath := filepath.Join(r.To, "mosquitto.conf")
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "mosquitto" {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(proc, e.Name(), "cmdline"))
		if err != nil || !slices.Contains(strings.Split(string(cmdline), "\x00"), confPath) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return 0, fmt.Errorf("SIGHUP to mosquitto (pid %d): %w", pid, err)
		}
		return pid, nil
	}
	return 0, fmt.Errorf("no mosquitto reading %s runs in the pod (shareProcessNamespace must be on): it reads the files when it starts", confPath)
}

// readTree reads the files under dir by path, following symlinks, as one
// snapshot of a Secret or ConfigMap volume: through the ..data symlink
// read once, and without the kubelet's hidden ..folders.
func readTree(dir string) (map[string][]byte, error) {
	root := dir
	if target, err := os.Readlink(filepath.Join(dir, kubeletData)); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		root = target
	}
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), "..") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p) // a symlink is followed
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = data
		return nil
	})
	return out, err
}

// kubeletData is the symlink a Secret or ConfigMap volume swaps on update.
const kubeletData = "..data"

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for p, d := range a {
		if e, ok := b[p]; !ok || !bytes.Equal(d, e) {
			return false
		}
	}
	return true
}

// writeFile replaces a file atomically, readable by its owner alone (the
// pod's user, Mosquitto's too): passwd, acl and keys are among them, and
// Mosquitto warns about any file others may read.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%x", path, sha256.Sum256(data))[:len(path)+13]
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
