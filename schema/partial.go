package schema

import (
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
)

// checkRest finds the problems that schema errors would hide: the fields the
// first diagnostics name are taken out of the user's files (a field holding a
// list goes whole), the rest is validated and checked again, and what those
// checks say about other fields is added. A problem that depends on a removed
// field (at, above or below its path) is dropped: it is not independent.
func checkRest(def cue.Value, files []*ast.File, first Diagnostics) Diagnostics {
	if len(files) == 0 {
		return nil
	}
	removed := map[string]bool{}
	add := func(ds Diagnostics) bool {
		for _, d := range ds {
			if d.Path == "" {
				return false
			}
			p, _, _ := strings.Cut(d.Path, "[")
			for removed[p] {
				// A required field that was taken out: its parent goes.
				i := strings.LastIndexByte(p, '.')
				if i < 0 {
					return false
				}
				p = p[:i]
			}
			removed[p] = true
		}
		return true
	}
	if !add(first) {
		return nil
	}
	// A removed required field makes its parent an error, and so on up: a
	// few rounds reach any depth of home.cue.
	for round := 0; round < 4; round++ {
		user := cue.Value{}
		for i, f := range files {
			f.Decls = prune(f.Decls, "", removed)
			v := def.Context().BuildFile(f)
			if i == 0 {
				user = v
			} else {
				user = user.Unify(v)
			}
		}
		if user.Err() != nil {
			return nil
		}
		v := def.Unify(user)
		unknown := unknownFields(user)
		if err := validate(v, user); err != nil || len(unknown) > 0 {
			if !add(mergeDiags(unknown, fromCUE(err, user))) {
				return nil
			}
			continue
		}
		cfg := &Config{}
		if err := v.Decode(cfg); err != nil {
			return nil
		}
		cfg.fillDefaults()
		var out Diagnostics
		for _, d := range check(cfg, newPositions(user)) {
			if !dependsOn(d.Path, removed) {
				out = append(out, d)
			}
		}
		return out
	}
	return nil
}

func dependsOn(path string, removed map[string]bool) bool {
	for r := range removed {
		if path == "" || path == r || under(path, r) || under(r, path) {
			return true
		}
	}
	return false
}

func under(path, parent string) bool {
	return strings.HasPrefix(path, parent+".") || strings.HasPrefix(path, parent+"[")
}

// prune drops the fields whose display path is in removed.
func prune(decls []ast.Decl, path string, removed map[string]bool) []ast.Decl {
	out := decls[:0]
	for _, d := range decls {
		if f, ok := d.(*ast.Field); ok {
			if name, _, err := ast.LabelName(f.Label); err == nil {
				p := join(path, name)
				if removed[p] {
					continue
				}
				if st, ok := f.Value.(*ast.StructLit); ok {
					st.Elts = prune(st.Elts, p, removed)
				}
			}
		}
		out = append(out, d)
	}
	return out
}
