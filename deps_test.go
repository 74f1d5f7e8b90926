// Package mqttgen_test holds the import rules of the module's packages, as
// Go's own go/build/deps_test.go does for the standard library.
package mqttgen_test

import (
	"go/build"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/mqttgen/mqttgen"

// rules say which of our packages each package may import. Data flows one
// way: schema -> generators -> files -> deploy; the broker knows only
// rendered files; format packages and the engine owner know no other
// package of ours.
//
// A rule names a package (a path in the module) or a family ("mosquitto/*"
// is every package under mosquitto/). imports are what its code may
// import, tests what its _test.go files may import besides (nil: the same
// as its code). "*" is any package but cmd/*: nothing imports a command.
//
// Adding a package: add a line here with the least it needs, and keep the
// arrows pointing down the pipeline. A new format (a file format of
// Mosquitto, say mosquitto/dynsec) goes under mosquitto/ and imports
// nothing; a package that reads a foreign setup into home.cue (an importer)
// may import schema and mosquitto/*; a verifier of acl files mosquitto/*;
// one that deploys somewhere else (kube) what deploy may, but never broker.
// A new arrow fails TestImportRules: change the table on purpose, in the
// same commit as the import, and say why in its message.
type rule struct {
	pkg            string
	imports, tests []string
}

var rules = []rule{
	// Formats and the engine owner: nothing of ours.
	{"mosquitto/*", nil, []string{"mosquitto/*"}},
	{"internal/*", nil, nil},
	{"engine", nil, nil},

	// The pipeline.
	{"schema", []string{"mosquitto/*"}, nil},
	{"generators", []string{"schema", "mosquitto/*"}, nil},
	{"pki", []string{"internal/*"}, nil},
	{"secrets", []string{"schema", "mosquitto/*", "internal/*"}, nil},
	{"workspace", []string{"schema", "generators", "secrets", "pki", "engine", "mosquitto/*", "internal/*"}, nil},
	{"discovery", []string{"generators", "schema"}, nil},

	// The bundled broker reads only rendered files: its tests too (those
	// that need a rendered home are in integration/brokerdiff).
	{"broker", []string{"mosquitto/*", "internal/*"}, []string{"mosquitto/*", "internal/*"}},
	{"exporter", []string{"internal/*"}, nil},

	// Deploying, backing up, reporting: never the broker.
	{"backup", []string{"engine", "generators", "mosquitto/*", "workspace"}, []string{"backup/backuptest"}},
	{"backup/backuptest", nil, nil},
	{"deploy", []string{"backup", "engine", "generators", "schema", "workspace", "pki", "mosquitto/*", "internal/*"}, []string{"deploy/deploytest", "backup/backuptest", "secrets"}},
	// mosquitto/version: the stand-in image's tag names the release it holds.
	{"deploy/deploytest", []string{"engine", "mosquitto/*"}, nil},
	{"status", []string{"backup", "deploy", "engine", "generators", "workspace", "pki", "mosquitto/*", "internal/*"}, nil},
	// Kubernetes manifests from the rendered files; kubetest starts a real
	// API server for the tests and knows nothing of ours. kube uses
	// deploy's plan types, redaction, reload table and file checks (one
	// owner: the cluster's plan reads as the engine's, the reloader checks
	// what apply checks before SIGHUP).
	{"kube", []string{"deploy", "schema", "generators", "mosquitto/*"}, []string{"kube/kubetest"}},
	{"kube/kubetest", nil, nil},

	// mqttgen import: reads a foreign setup (mosquitto/*) into a home
	// (schema) and proves it by rendering it through the real pipeline
	// (workspace); the presets' rules are generators' (one owner), the
	// kept hashes go into the state directory through secrets.
	{"importer", []string{"schema", "generators", "secrets", "workspace", "mosquitto/*", "internal/*"}, nil},

	// ACLs a household can test: aclcheck decides expectations on the acl
	// the generators render (with each rule's origin in home.cue); verify
	// proves them on a real broker, so it may run the bundled one in a
	// sandbox (broker) beside Mosquitto, from the files workspace renders.
	{"aclcheck", []string{"schema", "generators", "mosquitto/*"}, nil},
	{"verify", []string{"aclcheck", "broker", "schema", "generators", "workspace", "mosquitto/*", "internal/*"}, nil},

	// Benchmarks, commands and the tests across packages.
	{"bench", []string{"workspace", "generators", "schema", "mosquitto/*"}, nil},
	{"cmd/*", []string{"*"}, []string{"*"}},
	{"integration", nil, []string{"*"}},
	{"integration/*", nil, []string{"*"}},
	// Scratch modules that build the tests' tools (the Makefile's kube-bin).
	{"tools/*", nil, nil},
	// The broker's MQTT engine, kept by mqttgen (its own go.mod): it imports
	// nothing of mqttgen's.
	{"third_party/mochi", nil, nil},
	{"third_party/mochi/*", nil, nil},
	{"", nil, nil}, // this file's package
}

// forbidden are arrows no rule may allow, whatever the table says.
var forbidden = []struct{ from, to string }{
	{"deploy", "broker"},
	{"*", "cmd/*"},
}

func match(pattern, pkg string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "/*"):
		return strings.HasPrefix(pkg, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == pkg
}

// ourImports are the packages of the module p imports, relative to the
// module; with tests, those of its _test.go files too.
func ourImports(t *testing.T, dir string) (code, tests []string) {
	p, err := build.ImportDir(dir, build.ImportComment)
	if err != nil {
		if _, ok := err.(*build.NoGoError); ok {
			return nil, nil
		}
		t.Fatalf("%s: %v", dir, err)
	}
	ours := func(list []string) []string {
		var out []string
		for _, i := range list {
			if rel, ok := strings.CutPrefix(i, module+"/"); ok {
				out = append(out, rel)
			}
		}
		return out
	}
	return ours(p.Imports), ours(append(slices.Clone(p.TestImports), p.XTestImports...))
}

func TestImportRules(t *testing.T) {
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); p != "." && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "bin") {
			return filepath.SkipDir
		}
		pkg := filepath.ToSlash(p)
		if pkg == "." {
			pkg = ""
		}
		code, tests := ourImports(t, p)
		if code == nil && tests == nil {
			if ents, _ := os.ReadDir(p); !slices.ContainsFunc(ents, func(e fs.DirEntry) bool { return path.Ext(e.Name()) == ".go" }) {
				return nil
			}
		}
		i := slices.IndexFunc(rules, func(r rule) bool { return r.pkg == pkg })
		if i < 0 {
			i = slices.IndexFunc(rules, func(r rule) bool { return r.pkg != "" && match(r.pkg, pkg) })
		}
		if i < 0 {
			t.Errorf("package %s has no import rule: add it to rules in deps_test.go", pkg)
			return nil
		}
		r := rules[i]
		allowed := func(imp string, list []string) bool {
			return imp == pkg || slices.ContainsFunc(list, func(a string) bool { return match(a, imp) && !(a == "*" && match("cmd/*", imp)) })
		}
		check := func(imp, what string, ok bool) {
			for _, f := range forbidden {
				if match(f.from, pkg) && match(f.to, imp) {
					t.Errorf("%s: %s %s: this arrow is forbidden", pkg, what, imp)
					return
				}
			}
			if !ok {
				t.Errorf("%s: %s %s, which its rule (%s) does not allow: import less, or change rules in deps_test.go on purpose", pkg, what, imp, r.pkg)
			}
		}
		for _, imp := range code {
			check(imp, "imports", allowed(imp, r.imports))
		}
		extra := r.tests
		if extra == nil {
			extra = r.imports
		}
		for _, imp := range tests {
			check(imp, "its tests import", allowed(imp, r.imports) || allowed(imp, extra))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The rules hold what the issue asks, so that a change of the table that
// breaks them shows here too.
func TestImportRulesTable(t *testing.T) {
	for _, r := range rules {
		for _, imp := range append(slices.Clone(r.imports), r.tests...) {
			if match(imp, "cmd/mqttgen") && imp != "*" {
				t.Errorf("%s may import %s: nothing imports a command", r.pkg, imp)
			}
		}
		switch r.pkg {
		case "mosquitto/*", "internal/*", "engine":
			if len(r.imports) > 0 {
				t.Errorf("%s is a format or the engine owner and imports %v", r.pkg, r.imports)
			}
		case "broker":
			for _, imp := range append(slices.Clone(r.imports), r.tests...) {
				if imp != "mosquitto/*" && imp != "internal/*" {
					t.Errorf("broker may import %s", imp)
				}
			}
		case "deploy":
			if slices.ContainsFunc(append(slices.Clone(r.imports), r.tests...), func(a string) bool { return match(a, "broker") }) {
				t.Error("deploy may import broker")
			}
		}
	}
}
