package importer

import (
	"encoding/json"
	"path/filepath"
	"strings"
)

// cueWriter writes home.cue: one field per line, each with the line it
// came from.
type cueWriter struct {
	b    strings.Builder
	base string // folder positions are made relative to
}

func (w *cueWriter) from(pos ...string) string {
	var out []string
	for _, p := range pos {
		if p == "" || strings.HasPrefix(p, ":") {
			continue
		}
		out = append(out, relTo(w.base, p))
	}
	if len(out) == 0 {
		return ""
	}
	return " // from " + strings.Join(out, ", ")
}

func (w *cueWriter) line(indent int, text string, pos ...string) {
	w.b.WriteString(strings.Repeat("\t", indent))
	w.b.WriteString(text)
	w.b.WriteString(w.from(pos...))
	w.b.WriteString("\n")
}

// blank separates sections: one empty line, never two.
func (w *cueWriter) blank() {
	if !strings.HasSuffix(w.b.String(), "\n\n") {
		w.b.WriteString("\n")
	}
}

// bytes is the text, with blocks that stayed empty left out.
func (w *cueWriter) bytes() []byte {
	s := w.b.String()
	for _, empty := range []string{"logging: {\n}\n", "limits: {\n}\n"} {
		s = strings.ReplaceAll(s, empty, "")
	}
	for strings.Contains(s, "\n\n\n") {
		s = strings.ReplaceAll(s, "\n\n\n", "\n\n")
	}
	return []byte(strings.TrimRight(s, "\n") + "\n")
}

// str writes a CUE string: JSON's quoting is valid CUE.
func str(s string) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), `\(`, `\\(`)
}

// label writes a field name, quoted unless it is an identifier.
func label(s string) string {
	ok := s != ""
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			ok = false
		}
	}
	if ok && !strings.HasPrefix(s, "_") {
		return s
	}
	return str(s)
}

func list(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = str(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// relTo is p relative to base where p lies below base, else p. Positions
// ("file:line") work too.
func relTo(base, p string) string {
	ab, err1 := filepath.Abs(base)
	ap, err2 := filepath.Abs(p)
	if err1 != nil || err2 != nil {
		return p
	}
	if rel, err := filepath.Rel(ab, ap); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}
