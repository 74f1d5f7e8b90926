package schema

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/token"
)

// fieldsAt lists the fields allowed at a path of the home, read off the Go
// types (which mirror the CUE schema; a test keeps the two in step).
func fieldsAt(path []string) []string {
	t := reflect.TypeFor[Config]()
	for _, p := range path {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Map, reflect.Slice:
			t = t.Elem()
		case reflect.Struct:
			f, ok := fieldByTag(t, p)
			if !ok {
				return nil
			}
			t = f.Type
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for f := range t.Fields() {
		if name := jsonName(f); name != "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// unknownFields reports every field the user wrote that the schema does not
// have. CUE reports closedness too, but only while a struct has no other
// error; this walk finds them all.
func unknownFields(user cue.Value) Diagnostics {
	var out Diagnostics
	var walk func(v cue.Value, t reflect.Type, path []string)
	walk = func(v cue.Value, t reflect.Type, path []string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t.Kind() == reflect.Map && v.IncompleteKind() == cue.StructKind:
			it, err := v.Fields()
			if err != nil {
				return
			}
			for it.Next() {
				key := it.Selector().Unquoted()
				p := append(path[:len(path):len(path)], key)
				if msg := checkName(path, key); msg != "" {
					out = append(out, Diagnostic{Pos: it.Value().Pos().Position(), Path: formatPath(p), Msg: msg})
					continue
				}
				walk(it.Value(), t.Elem(), p)
			}
		case t.Kind() == reflect.Slice && v.IncompleteKind() == cue.ListKind:
			it, err := v.List()
			if err != nil {
				return
			}
			for i := 0; it.Next(); i++ {
				walk(it.Value(), t.Elem(), append(path[:len(path):len(path)], strconv.Itoa(i)))
			}
		case t.Kind() == reflect.Struct && v.IncompleteKind() == cue.StructKind:
			it, err := v.Fields()
			if err != nil {
				return
			}
			for it.Next() {
				name := it.Selector().Unquoted()
				p := append(path[:len(path):len(path)], name)
				f, ok := fieldByTag(t, name)
				if !ok {
					out = append(out, Diagnostic{Pos: it.Value().Pos().Position(), Path: formatPath(p), Msg: unknownField(p)})
					continue
				}
				walk(it.Value(), f.Type, p)
			}
		}
	}
	walk(user, reflect.TypeFor[Config](), nil)
	return out
}

var (
	plainKeyRE = regexp.MustCompile(`^[a-zA-Z0-9_$#-]+$`)
	nameRE     = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	userNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.@-]*$`)
)

// checkName checks a map key: user names go into passwd and acl lines,
// every other name (devices, entities, listeners, bridges) into Home
// Assistant ids and topics.
func checkName(path []string, key string) string {
	if len(path) == 1 && path[0] == "users" {
		if !userNameRE.MatchString(key) {
			return fmt.Sprintf("%q is not a usable user name: start with a letter or digit, then letters, digits, '_', '.', '@' or '-' (no ':', spaces or MQTT wildcards)", key)
		}
		if strings.HasPrefix(key, ReservedUserPrefix) {
			return reservedUser(key)
		}
		return ""
	}
	if !nameRE.MatchString(key) {
		return fmt.Sprintf("%q is not a usable name: only letters, digits, '_' and '-', as Home Assistant ids and topics need; e.g. %q", key, suggestName(key))
	}
	return ""
}

func suggestName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !nameRE.Match([]byte{c}) {
			b[i] = '-'
		}
	}
	return string(b)
}

// closest returns the candidate within two edits of s, if exactly one is.
func closest(s string, candidates []string) string {
	best, bestD, ties := "", 3, 0
	for _, c := range candidates {
		d := editDistance(s, c)
		switch {
		case d < bestD:
			best, bestD, ties = c, d, 0
		case d == bestD:
			ties++
		}
	}
	if ties > 0 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// positions maps the paths of the user's own values to where they stand, so
// that checks made in Go point at the user's text.
type positions struct {
	at    map[string]token.Position
	first token.Position
	// names caches displayName per file: Position is asked for every
	// built-in expectation of every device, and each displayName asks the
	// system for the working directory.
	mu    sync.Mutex
	names map[string]string
}

func newPositions(user cue.Value) *positions {
	p := &positions{at: map[string]token.Position{}}
	var walk func(v cue.Value, path string)
	walk = func(v cue.Value, path string) {
		if pos := v.Pos().Position(); pos.IsValid() {
			p.at[path] = pos
			if !p.first.IsValid() {
				p.first = pos
			}
		}
		switch v.IncompleteKind() {
		case cue.StructKind:
			it, err := v.Fields(cue.Optional(true))
			if err != nil {
				return
			}
			for it.Next() {
				walk(it.Value(), join(path, it.Selector().Unquoted()))
			}
		case cue.ListKind:
			it, err := v.List()
			if err != nil {
				return
			}
			for i := 0; it.Next(); i++ {
				walk(it.Value(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(user, "")
	return p
}

func join(path, field string) string {
	if path == "" {
		return Path(field)
	}
	return path + "." + Path(field)
}

// of returns the position of the value at path, or of its nearest ancestor
// the user wrote.
func (p *positions) of(path string) token.Position {
	for path != "" {
		if pos, ok := p.at[path]; ok {
			return pos
		}
		switch i := strings.LastIndexAny(path, ".["); {
		case i < 0:
			path = ""
		default:
			path = path[:i]
		}
	}
	return p.first
}

// Path builds a display path from field names and list indices, quoting
// names that are not plain: Path("users", "a.b", "acl", 0) is users."a.b".acl[0].
func Path(parts ...any) string {
	var b strings.Builder
	for _, part := range parts {
		switch x := part.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(x) + "]")
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			if !plainKeyRE.MatchString(x) {
				x = strconv.Quote(x)
			}
			b.WriteString(x)
		}
	}
	return b.String()
}

// reservedUser is the message for a user name mqttgen keeps for itself.
func reservedUser(key string) string {
	return fmt.Sprintf("%q is mqttgen's own: names beginning with %q are reserved (its healthcheck logs in as %s); choose another name", key, ReservedUserPrefix, ProbeUser)
}
