// Package importer brings an existing Mosquitto setup into mqttgen: it reads
// a mosquitto.conf (following include_dir), or the one a folder or a
// docker-compose.yml's Mosquitto service holds, with its passwd and acl
// files, and writes a new home.cue that renders to the same behaviour.
// Hashes are kept as they are (password: "hash"), plain-text passwords
// become the accounts' passwords, bridge passwords move to the state
// directory. Every line mqttgen cannot carry is reported with its position
// and what was done, and the result is proven: the new home is rendered and
// read back with the same reader as the original, and the two are compared
// fact by fact (logins, ACL decisions, listeners, limits, persistence).
package importer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/secrets"
	"github.com/mqttgen/mqttgen/workspace"
)

// Result is an import: the new home and what the proof found.
type Result struct {
	// Source is the mosquitto.conf read.
	Source string
	// Resolved are the files found elsewhere than the setup names them:
	// through a compose file's volumes, or beside the conf.
	Resolved [][2]string
	// Home is the text of home.cue.
	Home []byte
	// Notes say what happened to each line not carried as it was.
	Notes []Note
	// Differences are what the new home does otherwise than the original.
	Differences []Difference
	// Accounts and Topics count what the proof compared.
	Accounts, Topics, Facts int

	hashes, passwords, bridgePW map[string]string
	out                         string
	relPaths                    []string // files home.cue names relative to out
}

// Lost reports whether any line could not be expressed.
func (r *Result) Lost() []Note {
	var out []Note
	for _, n := range r.Notes {
		if n.Kind == Lost {
			out = append(out, n)
		}
	}
	return out
}

// Import reads the setup at src and translates it into a home for the
// folder out (which is not touched). The proof renders the new home in a
// temporary folder, removed before Import returns.
func Import(src, out string) (*Result, error) {
	if home := filepath.Join(out, "home.cue"); exists(home) {
		return nil, fmt.Errorf("%s exists: import writes a new home only", home)
	}
	s, err := locate(src)
	if err != nil {
		return nil, err
	}
	orig, err := load(s)
	if err != nil {
		return nil, err
	}
	base := filepath.Dir(s.conf)
	if s.compose != nil {
		base = filepath.Dir(s.compose.file)
	}
	t := &translator{l: orig, out: out, w: &cueWriter{base: base}, bridgePW: map[string]string{}}
	t.translate()
	order := map[string]int{}
	for i, d := range orig.directives {
		order[t.rel(d.Pos())] = i
	}
	sortNotes(t.notes, order)
	r := &Result{Source: s.conf, Resolved: s.resolved, Home: t.w.bytes(), Notes: t.notes, hashes: t.hashes, passwords: t.passwords, bridgePW: t.bridgePW, out: out, relPaths: t.relPaths}
	if err := r.prove(orig); err != nil {
		return nil, err
	}
	return r, nil
}

// prove renders the new home into a temporary folder, reads it back and
// compares it with the original.
func (r *Result) prove(orig *loaded) error {
	tmp, err := os.MkdirTemp("", "mqttgen-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	home := filepath.Join(tmp, "home")
	if err := r.writeTo(home, ""); err != nil {
		return err
	}
	if err := r.linkRelative(home); err != nil {
		return err
	}
	h, err := workspace.Open(home, filepath.Join(home, workspace.DefaultStateDir))
	if err != nil {
		var ds schema.Diagnostics
		if errors.As(err, &ds) {
			return fmt.Errorf("the new home would not vet, so nothing is written (the setup holds something mqttgen refuses, or import mistranslated it):\n%s", strings.ReplaceAll(ds.Error(), home+"/", ""))
		}
		return err
	}
	rendered := filepath.Join(tmp, "out")
	files, err := h.Render(workspace.RenderOptions{Local: true, KeepUser: true, Out: rendered, Now: time.Now()})
	if err != nil {
		return fmt.Errorf("rendering the new home: %v", err)
	}
	if err := workspace.Write(rendered, files, false); err != nil {
		return err
	}
	now, err := load(&source{conf: filepath.Join(rendered, "config", "mosquitto.conf")})
	if err != nil {
		return fmt.Errorf("reading the rendered home back: %v", err)
	}
	topics := topicSet(orig, now)
	users := usersOf(orig, now)
	a, b := orig.effective(topics, users), now.effective(topics, users)
	r.Differences = compare(a, b)
	r.Accounts, r.Topics, r.Facts = len(users), len(topics), len(a)
	return nil
}

// linkRelative makes the files home.cue names relative to the output
// folder (the original setup's certificates) reachable from dir, the
// proof's copy of the home.
func (r *Result) linkRelative(dir string) error {
	outAbs, err := filepath.Abs(r.out)
	if err != nil {
		return err
	}
	for _, p := range r.relPaths {
		target := filepath.Join(dir, filepath.FromSlash(p))
		if exists(target) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(filepath.Join(outAbs, filepath.FromSlash(p)), target); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}

// Write puts the new home into the output folder: home.cue (never over an
// existing one), the kept hashes, passwords and bridge passwords into the
// state directory (stateDir; "" is .mqttgen in the output folder), and a
// .gitignore that keeps .mqttgen out of git.
func (r *Result) Write(stateDir string) error {
	if exists(filepath.Join(r.out, "home.cue")) {
		return fmt.Errorf("%s exists: import writes a new home only", filepath.Join(r.out, "home.cue"))
	}
	if stateDir != "" {
		abs, err := filepath.Abs(stateDir)
		if err != nil {
			return err
		}
		outAbs, err := filepath.Abs(r.out)
		if err != nil {
			return err
		}
		if rel, err := filepath.Rel(outAbs, abs); err == nil && !strings.HasPrefix(rel, "..") {
			abs = rel
		}
		// Bridge password files live in the state directory, which home.cue names.
		r.Home = []byte(strings.ReplaceAll(string(r.Home), `file: "`+workspace.DefaultStateDir+`/bridges/`, `file: "`+filepath.ToSlash(abs)+`/bridges/`))
	}
	return r.writeTo(r.out, stateDir)
}

func (r *Result) writeTo(dir, state string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if state == "" {
		state = filepath.Join(dir, workspace.DefaultStateDir)
	}
	store := secrets.NewStore(state, dir)
	for u, h := range r.hashes {
		if err := store.KeepHash(u, h); err != nil {
			return err
		}
	}
	for u, pw := range r.passwords {
		if err := store.SetPassword(u, pw); err != nil {
			return err
		}
	}
	for name, pw := range r.bridgePW {
		p := filepath.Join(state, "bridges", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := atomicfile.Write(p, []byte(pw+"\n"), 0o600); err != nil {
			return err
		}
	}
	if _, err := workspace.WriteGitignore(dir); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "home.cue"), r.Home, 0o644)
}

// sortNotes orders notes as the broker reads the lines (includes where
// they are included); notes of other files (compose, passwd) follow.
func sortNotes(notes []Note, order map[string]int) {
	slices.SortStableFunc(notes, func(a, b Note) int {
		ia, oka := order[a.Pos]
		ib, okb := order[b.Pos]
		switch {
		case oka && okb:
			return ia - ib
		case oka:
			return -1
		case okb:
			return 1
		}
		fa, la := splitPos(a.Pos)
		fb, lb := splitPos(b.Pos)
		if c := strings.Compare(fa, fb); c != 0 {
			return c
		}
		return la - lb
	})
}

func splitPos(pos string) (string, int) {
	i := strings.LastIndexByte(pos, ':')
	if i < 0 {
		return pos, 0
	}
	n, err := strconv.Atoi(pos[i+1:])
	if err != nil {
		return pos, 0
	}
	return pos[:i], n
}
