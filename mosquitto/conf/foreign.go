// Package conf reads mosquitto.conf files. This file is its lenient,
// position-keeping side for files anyone wrote: lines split as Mosquitto
// splits them, include_dir followed, every option kept with its file:line
// for a reader that decides what each means (mqttgen import).
package conf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Directive is one option line of a mosquitto.conf written by anyone, with
// where it stands.
type Directive struct {
	File string // as opened
	Line int
	Key  string
	// Value is the rest of the line, blanks around it trimmed.
	Value string
}

// Pos is "file:line".
func (d Directive) Pos() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// SplitLines splits a configuration into directives as Mosquitto does:
// '#' starts a comment only in the first column, a line's leading and
// trailing blanks are dropped, the key ends at the first space or tab. It
// knows no option: every line becomes a directive, for readers of foreign
// files that decide themselves what each means.
func SplitLines(file string, r io.Reader) ([]Directive, error) {
	var out []Directive
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if raw == "" || raw[0] == '#' {
			continue
		}
		if strings.IndexByte(raw, 0) >= 0 {
			return nil, fmt.Errorf("%s:%d: the line holds a NUL byte", file, n)
		}
		line := strings.Trim(raw, " \t\r\n")
		if line == "" {
			continue
		}
		key, value := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, value = line[:i], strings.TrimLeft(line[i+1:], " \t")
		}
		out = append(out, Directive{File: file, Line: n, Key: key, Value: value})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// ReadTree reads the configuration at path and, where an include_dir line
// stands, the files ending in .conf of that folder in alphabetical order, as
// Mosquitto does (the include_dir line itself is kept before them). resolve
// maps a folder named in the file (the broker's view, say a container path)
// to where it is here; nil keeps it. A file included again while it is
// being read is an include loop, reported at the include_dir line.
func ReadTree(path string, resolve func(string) string) ([]Directive, error) {
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	var out []Directive
	var read func(path string, stack []string) error
	read = func(path string, stack []string) error {
		f, err := os.Open(path)
		if err != nil {
			return pathError(err)
		}
		defer f.Close()
		ds, err := SplitLines(path, f)
		if err != nil {
			return err
		}
		stack = append(stack, path)
		for _, d := range ds {
			out = append(out, d)
			if d.Key != "include_dir" {
				continue
			}
			if d.Value == "" {
				return fmt.Errorf("%s: include_dir without a folder", d.Pos())
			}
			dir := resolve(d.Value)
			entries, err := os.ReadDir(dir)
			if err != nil {
				return fmt.Errorf("%s: include_dir %s: %v", d.Pos(), d.Value, pathError(err))
			}
			var names []string
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
					names = append(names, e.Name())
				}
			}
			slices.Sort(names)
			for _, n := range names {
				p := filepath.Join(dir, n)
				if slices.ContainsFunc(stack, func(s string) bool { return sameFile(s, p) }) {
					return fmt.Errorf("%s: include_dir %s includes %s again: an include loop", d.Pos(), d.Value, p)
				}
				if err := read(p, stack); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, read(path, nil)
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(sa, sb)
}

// pathError drops the "open" of a PathError: "PATH: permission denied".
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}
