package conf

import (
	"bytes"
	"strconv"
	"strings"
)

// Directive is one option line of a mosquitto.conf as Read finds it.
type Directive struct {
	// File and Line are its position, for messages (file:line).
	File string
	Line int
	// Key is the option's name; Value the rest of the line, without the
	// spaces around it.
	Key, Value string
	// Section is the index in File.Sections of the listener or bridge
	// the line is written under, or -1 before the first section.
	Section int
}

// Pos is the directive's file:line.
func (d Directive) Pos() string { return d.File + ":" + strconv.Itoa(d.Line) }

// Section is a `listener` or `connection` (bridge) block: its head line and
// the lines written under it up to the next head.
type Section struct {
	// Head is the listener or connection line; Head.Key is the kind.
	Head       Directive
	Directives []Directive
}

// Listener says the section is a `listener`.
func (s Section) Listener() bool { return s.Head.Key == "listener" }

// Name is the first word of the head's value: a listener's port, a
// bridge's name.
func (s Section) Name() string {
	if f := strings.Fields(s.Head.Value); len(f) > 0 {
		return f[0]
	}
	return ""
}

// Values are the values of key in the section, in order.
func (s Section) Values(key string) []string { return values(s.Directives, key) }

// File is a mosquitto.conf read by Read.
type File struct {
	Name string
	// Global are the lines before the first section.
	Global   []Directive
	Sections []Section
}

// Values are the values of the global option key, in order.
func (f *File) Values(key string) []string { return values(f.Global, key) }

// Directives are every option line of the file, in order, section heads
// included.
func (f *File) Directives() []Directive {
	out := append([]Directive(nil), f.Global...)
	for _, s := range f.Sections {
		out = append(out, s.Head)
		out = append(out, s.Directives...)
	}
	return out
}

func values(ds []Directive, key string) []string {
	var out []string
	for _, d := range ds {
		if d.Key == key {
			out = append(out, d.Value)
		}
	}
	return out
}

// Read reads a mosquitto.conf leniently: a deployed file, one of another
// version, or one written by hand. It never fails; it keeps each option
// line with its position and the section it stands in, and checks nothing
// (Parse checks what the bundled broker serves). file names the data in
// positions. Blank lines and lines starting with '#' (after spaces) are
// skipped.
func Read(file string, data []byte) *File {
	f := &File{Name: file}
	cur := -1
	for n, raw := range lines(data) {
		key, value, ok := split(raw)
		if !ok {
			continue
		}
		d := Directive{File: file, Line: n + 1, Key: key, Value: value, Section: cur}
		if key == "listener" || key == "connection" {
			cur = len(f.Sections)
			d.Section = cur
			f.Sections = append(f.Sections, Section{Head: d})
			continue
		}
		if cur >= 0 {
			f.Sections[cur].Directives = append(f.Sections[cur].Directives, d)
			continue
		}
		f.Global = append(f.Global, d)
	}
	return f
}

// lines splits data at line ends; a "\r" before "\n" is dropped.
func lines(data []byte) []string {
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return nil
	}
	out := strings.Split(text, "\n")
	for i, l := range out {
		out[i] = strings.TrimSuffix(l, "\r")
	}
	return out
}

// split cuts an option line into key and value; ok is false for comments
// and blank lines.
func split(raw string) (key, value string, ok bool) {
	line := strings.TrimSpace(raw)
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, "", true
	}
	return line[:i], strings.TrimSpace(line[i:]), true
}

// Redact returns data with the value of each secret option (Secret)
// replaced by with(d), every other byte as it was, and the directives it
// replaced; data itself when it holds no secret.
func Redact(file string, data []byte, with func(d Directive) string) ([]byte, []Directive) {
	var redacted []Directive
	for _, d := range Read(file, data).Directives() {
		if Secret(d.Key) && d.Value != "" {
			redacted = append(redacted, d)
		}
	}
	if len(redacted) == 0 {
		return data, nil
	}
	ls := lines(data)
	for _, d := range redacted {
		l := ls[d.Line-1]
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		ls[d.Line-1] = indent + d.Key + " " + with(d)
	}
	var out bytes.Buffer
	out.WriteString(strings.Join(ls, "\n"))
	if bytes.HasSuffix(data, []byte("\n")) {
		out.WriteByte('\n')
	}
	return out.Bytes(), redacted
}

// Persistence reads persistence, persistence_location and persistence_file
// (wherever they stand, as Mosquitto reads them): whether the engine keeps
// a database, the folder it is in ("" when not set) and its name
// (Database(engine), Mosquitto's for an engine not known, when not set).
func (f *File) Persistence(engine string) (on bool, location, file string) {
	if file = Database(engine); file == "" {
		file = Database(Mosquitto)
	}
	for _, d := range f.Directives() {
		if d.Value == "" {
			continue
		}
		switch d.Key {
		case "persistence":
			on = d.Value == "true"
		case "persistence_location":
			location = strings.TrimSuffix(d.Value, "/")
			if location == "" {
				location = "/"
			}
		case "persistence_file":
			file = d.Value
		}
	}
	return on, location, file
}
