// Package schema holds the embedded CUE schema of home.cue and loads a
// user's home into a validated, typed Config. Every problem it finds is a
// Diagnostic that names file:line:col, the field, what is wrong and the fix.
package schema

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

//go:embed home.cue
var Source []byte

// Diagnostic is one problem in a home: an error, or a warning that does not
// stop rendering.
type Diagnostic struct {
	Pos     token.Position
	Path    string
	Msg     string
	Warning bool
}

func (d Diagnostic) String() string {
	var b strings.Builder
	if d.Pos.Filename != "" {
		fmt.Fprintf(&b, "%s:%d:%d: ", displayName(d.Pos.Filename), d.Pos.Line, d.Pos.Column)
	}
	if d.Warning {
		b.WriteString("warning: ")
	}
	if d.Path != "" {
		b.WriteString(d.Path + ": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// displayName shortens an absolute file name to one relative to the working
// directory when that is shorter, as compilers print them.
func displayName(name string) string {
	wd, err := os.Getwd()
	if err != nil || !filepath.IsAbs(name) {
		return name
	}
	if rel, err := filepath.Rel(wd, name); err == nil && len(rel) < len(name) {
		return rel
	}
	return name
}

// Diagnostics is the outcome of a check, sorted by position.
type Diagnostics []Diagnostic

// Errors counts the diagnostics that are not warnings.
func (ds Diagnostics) Errors() int {
	n := 0
	for _, d := range ds {
		if !d.Warning {
			n++
		}
	}
	return n
}

// Error makes Diagnostics usable as an error: one diagnostic a line.
func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

func (ds Diagnostics) sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

var (
	compileOnce sync.Once
	homeDef     cue.Value
	// Every load shares the schema's context, and CUE's runtime is not safe
	// for concurrent use: loads are serialised.
	loadMu sync.Mutex
)

// schemaValue compiles the embedded schema once.
func schemaValue() cue.Value {
	compileOnce.Do(func() {
		ctx := cuecontext.New()
		v := ctx.CompileBytes(Source, cue.Filename("schema/home.cue"))
		if v.Err() != nil {
			panic("embedded schema does not compile: " + v.Err().Error())
		}
		homeDef = v.LookupPath(cue.ParsePath("#Home"))
	})
	return homeDef
}

// Load reads the home at path: a folder of `package home` .cue files or one
// .cue file. The Config is nil when any diagnostic is an error.
func Load(path string) (*Config, Diagnostics) {
	return loadWith(func(ctx *cue.Context) (cue.Value, []*ast.File, Diagnostics) {
		inst, diags := loadInstance(path)
		if diags != nil {
			return cue.Value{}, nil, diags
		}
		return ctx.BuildInstance(inst), inst.Files, nil
	})
}

// LoadSource checks one file's contents, as if it were the whole home.
func LoadSource(filename string, src []byte) (*Config, Diagnostics) {
	return loadWith(func(ctx *cue.Context) (cue.Value, []*ast.File, Diagnostics) {
		f, err := parser.ParseFile(filename, src, parser.ParseComments)
		if err != nil {
			return cue.Value{}, nil, fromCUE(err, cue.Value{})
		}
		return ctx.BuildFile(f), []*ast.File{f}, nil
	})
}

func loadInstance(path string) (*build.Instance, Diagnostics) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, Diagnostics{{Msg: fmt.Sprintf("%s: %v", path, shortErr(err))}}
	}
	abs, _ := filepath.Abs(path)
	cfg := &load.Config{Dir: abs, Package: "home"}
	args := []string{"."}
	if !st.IsDir() {
		cfg.Dir = filepath.Dir(abs)
		cfg.Package = ""
		args = []string{abs}
	} else if diags := checkFolderPackages(abs); diags != nil {
		return nil, diags
	}
	insts := load.Instances(args, cfg)
	if len(insts) == 0 {
		return nil, Diagnostics{{Msg: fmt.Sprintf("%s: no CUE files of package home", path)}}
	}
	if err := insts[0].Err; err != nil {
		return nil, fromCUE(err, cue.Value{})
	}
	return insts[0], nil
}

// checkFolderPackages refuses a .cue file of the home folder that is not of
// package home: CUE's loader would leave it out without a word, and with it
// whatever it declares (say, a device). Files CUE never loads (names that
// start with "." or "_") are not looked at.
func checkFolderPackages(dir string) Diagnostics {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var diags Diagnostics
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".cue") || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
			continue
		}
		file := filepath.Join(dir, name)
		f, err := parser.ParseFile(file, nil, parser.PackageClauseOnly)
		if err != nil {
			continue // the whole load reports it with its position
		}
		switch pkg := f.PackageName(); {
		case pkg == "":
			diags = append(diags, Diagnostic{Pos: token.Position{Filename: file, Line: 1, Column: 1},
				Msg: fmt.Sprintf("%s has no package clause, so it is not part of the home and everything in it would be ignored: add `package home` as its first line, or move it out of the folder", name)})
		case pkg != "home":
			pos := f.Pos().Position()
			for _, d := range f.Decls {
				if p, ok := d.(*ast.Package); ok {
					pos = p.Pos().Position()
				}
			}
			if !pos.IsValid() {
				pos = token.Position{Filename: file, Line: 1, Column: 1}
			}
			diags = append(diags, Diagnostic{Pos: pos,
				Msg: fmt.Sprintf("package %s: every .cue file of the home folder is part of the home, and %s would be ignored: write `package home`, or move it out of the folder", pkg, name)})
		}
	}
	return diags
}

func shortErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

func loadWith(build func(*cue.Context) (cue.Value, []*ast.File, Diagnostics)) (cfg *Config, diags Diagnostics) {
	loadMu.Lock()
	defer loadMu.Unlock()
	defer func() {
		// CUE is a large evaluator; whatever input it chokes on, vet reports
		// it instead of crashing.
		if r := recover(); r != nil {
			cfg, diags = nil, Diagnostics{{Msg: fmt.Sprintf("internal error evaluating the home (please report it): %v", r)}}
		}
	}()
	def := schemaValue()
	user, files, diags := build(def.Context())
	if diags != nil {
		return nil, diags
	}
	if err := user.Err(); err != nil {
		return nil, fromCUE(err, user)
	}
	if d := checkPackage(user); d != nil {
		return nil, d
	}
	v := def.Unify(user)
	unknown := unknownFields(user)
	if err := validate(v, user); err != nil || len(unknown) > 0 {
		diags = mergeDiags(unknown, fromCUE(err, user))
		diags = append(diags, checkRest(def, files, diags)...)
		diags.sort()
		return nil, diags
	}
	cfg = &Config{}
	if err := v.Decode(cfg); err != nil {
		return nil, fromCUE(err, user)
	}
	cfg.fillDefaults()
	cfg.pos = newPositions(user)
	diags = check(cfg, cfg.pos)
	diags.sort()
	if diags.Errors() > 0 {
		return nil, diags
	}
	return cfg, diags
}

// validate reports every error in v. CUE's Validate stops at the first
// error of a struct, so on failure every field the user wrote is looked up in
// v and validated on its own too.
func validate(v, user cue.Value) error {
	err := v.Validate(cue.Concrete(true), cue.All())
	if err == nil {
		return nil
	}
	seen := map[string]bool{}
	var all cueerrors.Error
	add := func(err error) {
		for _, e := range cueerrors.Errors(err) {
			format, args := e.Msg()
			key := fmt.Sprint(e.Path(), fmt.Sprintf(format, args...))
			if !seen[key] {
				seen[key] = true
				all = cueerrors.Append(all, e)
			}
		}
	}
	add(err)
	var walk func(u cue.Value, sels []cue.Selector)
	walk = func(u cue.Value, sels []cue.Selector) {
		visit := func(child cue.Value, sel cue.Selector) {
			path := append(sels[:len(sels):len(sels)], sel)
			if err := v.LookupPath(cue.MakePath(path...)).Validate(cue.Concrete(true), cue.All()); err != nil {
				add(err)
				walk(child, path)
			}
		}
		switch u.IncompleteKind() {
		case cue.StructKind:
			it, err := u.Fields()
			if err != nil {
				return
			}
			for it.Next() {
				visit(it.Value(), it.Selector())
			}
		case cue.ListKind:
			it, err := u.List()
			if err != nil {
				return
			}
			for i := 0; it.Next(); i++ {
				visit(it.Value(), cue.Index(i))
			}
		}
	}
	walk(user, nil)
	return all
}

// mergeDiags appends to first the diagnostics of rest that are not at or
// below a path first has already reported.
func mergeDiags(first, rest Diagnostics) Diagnostics {
	covered := func(p string) bool {
		for _, d := range first {
			if p == d.Path || strings.HasPrefix(p, d.Path+".") || strings.HasPrefix(p, d.Path+"[") {
				return true
			}
		}
		return false
	}
	out := first
	for _, d := range rest {
		if !covered(d.Path) {
			out = append(out, d)
		}
	}
	return out
}

// checkPackage refuses files of another package, which would otherwise be
// silently ignored or merged.
func checkPackage(user cue.Value) Diagnostics {
	src := user.Source()
	f, ok := src.(*ast.File)
	if !ok || f == nil {
		return nil
	}
	if name := f.PackageName(); name != "" && name != "home" {
		return Diagnostics{{Pos: f.Pos().Position(), Msg: fmt.Sprintf("package %s: home.cue files must say `package home`", name)}}
	}
	return nil
}

// fromCUE turns CUE's errors into diagnostics with messages users can act on.
func fromCUE(err error, user cue.Value) Diagnostics {
	type group struct {
		path    []string
		pos     token.Position
		msgs    []string
		choices []string
	}
	var order []string
	groups := map[string]*group{}
	for _, e := range cueerrors.Errors(err) {
		var path []string
		for i, p := range e.Path() {
			if i == 0 && p == "#Home" {
				continue
			}
			if u, err := strconv.Unquote(p); err == nil {
				p = u
			}
			path = append(path, p)
		}
		key := strings.Join(path, "\x00")
		g := groups[key]
		if g == nil {
			g = &group{path: path}
			groups[key] = g
			order = append(order, key)
		}
		if g.pos.Filename == "" {
			g.pos = userPos(e)
		}
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		if strings.Contains(msg, "empty disjunction") || strings.Contains(msg, "incompatible list lengths") {
			// Said of a default that did not apply; the real cause follows.
			continue
		}
		if a, b, ok := conflictingLiterals(msg); ok {
			lit := userLiteral(user, path)
			switch lit {
			case a:
				g.choices = append(g.choices, b)
				continue
			case b:
				g.choices = append(g.choices, a)
				continue
			}
		}
		g.msgs = append(g.msgs, msg)
	}
	var out Diagnostics
	for _, key := range order {
		g := groups[key]
		d := Diagnostic{Pos: g.pos, Path: formatPath(g.path)}
		bound := -1
		for i, m := range g.msgs {
			if strings.Contains(m, "out of bound") {
				bound = i // a number field with a default: the default is no choice to offer
			}
		}
		switch {
		case len(g.choices) > 0 && len(g.path) > 0 && g.path[len(g.path)-1] == "password":
			d.Msg = fmt.Sprintf("%s is not a password source: passwords are never written in home.cue; leave password out to have one generated, or write password: file: PATH, password: env: NAME or password: \"hash\" (an imported account's kept hash)", userLiteral(user, g.path))
		case bound >= 0:
			d.Msg = explain(g.path, g.msgs[bound])
		case len(g.choices) > 0:
			d.Msg = fmt.Sprintf("%s is not allowed: use one of %s", userLiteral(user, g.path), strings.Join(dedupe(g.choices), ", "))
		case len(g.msgs) > 0:
			d.Msg = explain(g.path, g.msgs[0])
		default:
			continue // only messages about defaults; the cause is reported below it
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		out = Diagnostics{{Msg: err.Error()}}
	}
	return out
}

// userPos picks the first position of an error that lies in the user's files.
func userPos(e cueerrors.Error) token.Position {
	for _, p := range cueerrors.Positions(e) {
		if pos := p.Position(); pos.Filename != "schema/home.cue" {
			return pos
		}
	}
	return token.Position{}
}

func conflictingLiterals(msg string) (string, string, bool) {
	rest, ok := strings.CutPrefix(msg, "conflicting values ")
	if !ok || strings.Contains(msg, "mismatched types") {
		return "", "", false
	}
	a, b, ok := strings.Cut(rest, " and ")
	return a, b, ok
}

// userLiteral is the user's value at path, as CUE prints it.
func userLiteral(user cue.Value, path []string) string {
	if !user.Exists() {
		return ""
	}
	sels := make([]cue.Selector, len(path))
	for i, p := range path {
		if n, err := strconv.Atoi(p); err == nil {
			sels[i] = cue.Index(n)
		} else {
			sels[i] = cue.Str(p)
		}
	}
	v := user.LookupPath(cue.MakePath(sels...))
	if !v.Exists() {
		return ""
	}
	return fmt.Sprint(v)
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// formatPath writes a path as users see it: a.b[0]."odd name".c
func formatPath(path []string) string {
	parts := make([]any, len(path))
	for i, p := range path {
		if n, err := strconv.Atoi(p); err == nil {
			parts[i] = n
		} else {
			parts[i] = p
		}
	}
	return Path(parts...)
}

// explain rewrites one of CUE's messages into a cause and a fix.
func explain(path []string, msg string) string {
	field := ""
	if len(path) > 0 {
		field = path[len(path)-1]
	}
	switch {
	case msg == "field not allowed":
		return unknownField(path)
	case strings.Contains(msg, "field is required but not present"):
		return fmt.Sprintf("required field %s is missing", field)
	case strings.Contains(msg, "incomplete value"):
		return "missing value: " + msg
	case field == "password" && strings.Contains(msg, "mismatched types") && path[0] == "bridges":
		return "passwords are never written in home.cue: write password: file: PATH or password: env: NAME"
	case field == "password" && strings.Contains(msg, "mismatched types"):
		return "passwords are never written in home.cue: leave password out to have one generated, or write password: file: PATH or password: env: NAME (or password: \"hash\" for an imported account's kept hash)"
	case strings.Contains(msg, "mismatched types"):
		// conflicting values "9001" and int (mismatched types string and int)
		if i := strings.Index(msg, "(mismatched types "); i >= 0 {
			types := strings.TrimSuffix(msg[i+len("(mismatched types "):], ")")
			got, want, _ := strings.Cut(types, " and ")
			if strings.HasPrefix(msg, "conflicting values "+strings.Split(want, " ")[0]) {
				got, want = want, got
			}
			return mismatched(field, literalIn(msg), want, got)
		}
	case strings.Contains(msg, "out of bound"):
		// invalid value 70000 (out of bound <=65535)
		if m := boundRE.FindStringSubmatch(msg); m != nil {
			return outOfBound(field, m[1], m[2], m[3])
		}
	case strings.Contains(msg, "does not match"):
		return "invalid value " + strings.TrimPrefix(msg, "invalid value ")
	}
	return msg
}

var (
	boundRE   = regexp.MustCompile(`invalid value (\S+) \(out of bound (<=|<|>=|>)(-?[0-9.]+)\)`)
	literalRE = regexp.MustCompile(`^conflicting values (\S+) and (\S+)`)
)

// literalIn picks the user's value out of "conflicting values 300 and string".
func literalIn(msg string) string {
	m := literalRE.FindStringSubmatch(msg)
	if m == nil {
		return ""
	}
	for _, s := range m[1:] {
		switch s {
		case "string", "int", "float", "number", "bool", "struct", "list", "null":
			continue
		}
		return s
	}
	return ""
}

// units are the string fields that take a number with a unit, and an example
// unit for the fix.
var units = map[string]string{
	"autosave_interval":            "s",
	"max_keepalive":                "s",
	"persistent_client_expiration": "d",
	"max_packet_size":              "KiB",
}

// mismatched says what was written, what the field takes and how to write it.
func mismatched(field, lit, want, got string) string {
	a := func(kind string) string {
		switch kind {
		case "int":
			return "a whole number"
		case "float", "number":
			return "a number"
		case "string":
			return "a string"
		case "bool":
			return "true or false"
		case "struct":
			return "a struct {...}"
		case "list":
			return "a list [...]"
		}
		return kind
	}
	if lit == "" {
		return fmt.Sprintf("want %s, not %s", a(want), a(got))
	}
	switch {
	case want == "string" && units[field] != "" && (got == "int" || got == "float" || got == "number"):
		return fmt.Sprintf("%s has no unit: write it as a string with one, e.g. \"%s%s\"", lit, lit, units[field])
	case want == "string" && (got == "int" || got == "float" || got == "number" || got == "bool"):
		return fmt.Sprintf("%s is %s, the field takes %s: write \"%s\"", lit, a(got), a(want), lit)
	case (want == "int" || want == "number" || want == "float") && got == "string":
		if u, err := strconv.Unquote(lit); err == nil {
			if _, err := strconv.ParseFloat(u, 64); err == nil {
				return fmt.Sprintf("%s is a string, the field takes %s: write %s without quotes", lit, a(want), u)
			}
		}
		return fmt.Sprintf("%s is a string, the field takes %s", lit, a(want))
	case want == "bool" && got == "string":
		return fmt.Sprintf("%s is a string, the field takes true or false (without quotes)", lit)
	}
	return fmt.Sprintf("%s is %s, the field takes %s", lit, a(got), a(want))
}

// outOfBound names the limit a number crossed, and for ports their range.
func outOfBound(field, lit, op, bound string) string {
	if field == "port" {
		return fmt.Sprintf("%s is not a port: ports are 1 to 65535", lit)
	}
	switch op {
	case "<=":
		return fmt.Sprintf("%s is too large: at most %s", lit, bound)
	case "<":
		return fmt.Sprintf("%s is too large: less than %s", lit, bound)
	case ">=":
		return fmt.Sprintf("%s is too small: at least %s", lit, bound)
	}
	return fmt.Sprintf("%s is too small: more than %s", lit, bound)
}

// hints are the fixes for fields that popular guides use but that are wrong
// or do not exist, keyed by field name.
var hints = map[string]string{
	"reconnect_delay":       "not a Mosquitto option (the broker refuses to start with it); bridges reconnect on their own: remove it",
	"reconnect_delay_max":   "not a Mosquitto option (the broker refuses to start with it); bridges reconnect on their own: remove it",
	"port":                  "Mosquitto's port option is deprecated: declare listeners: NAME: port: N",
	"bind_address":          "Mosquitto's bind_address is deprecated: declare listeners: NAME: bind: ADDRESS",
	"message_size_limit":    "deprecated in Mosquitto, where 10M would mean 10 bytes: use limits: max_packet_size: \"10MiB\"",
	"local_suffix":          "bridge topics have no suffix option: use local_prefix",
	"remote_suffix":         "bridge topics have no suffix option: use remote_prefix",
	"allow_anonymous":       "use anonymous: allowed: true|false",
	"per_listener_settings": "mqttgen sets it itself when a listener overrides anonymous access (listeners: NAME: anonymous:)",
	"password_file":         "mqttgen writes the password file from users: remove it",
	"acl_file":              "mqttgen writes the acl file from users, anonymous and patterns: remove it",
}

func unknownField(path []string) string {
	field := path[len(path)-1]
	parent := path[:len(path)-1]
	if len(parent) > 0 && parent[0] == "homeassistant" && (field == "broker" || field == "mqtt" || field == "port" || field == "username" || field == "password") {
		return fmt.Sprintf("unknown field %s: Home Assistant removed broker settings from YAML in 2023.4; set the broker up in HA's UI with the values of `mqttgen secrets bundle homeassistant`", field)
	}
	if len(parent) == 1 && parent[0] == "users" && strings.HasPrefix(field, ReservedUserPrefix) {
		return reservedUser(field)
	}
	if h, ok := hints[field]; ok {
		return fmt.Sprintf("unknown field %s: %s", field, h)
	}
	allowed := fieldsAt(parent)
	if best := closest(field, allowed); best != "" {
		return fmt.Sprintf("unknown field %s: did you mean %s?", field, best)
	}
	if len(allowed) > 0 {
		return fmt.Sprintf("unknown field %s: allowed here: %s", field, strings.Join(allowed, ", "))
	}
	return fmt.Sprintf("unknown field %s", field)
}
