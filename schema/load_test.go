package schema

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/token"

	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/vet (review the diff!)")

// TestVet runs every testdata/vet/*.txtar: the home.cue section is checked
// and the diagnostics must equal the want section, line for line.
func TestVet(t *testing.T) {
	files, err := filepath.Glob("testdata/vet/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var src []byte
			wantIdx := -1
			for i, f := range ar.Files {
				switch f.Name {
				case "home.cue":
					src = f.Data
				case "want":
					wantIdx = i
				}
			}
			if src == nil || wantIdx < 0 {
				t.Fatal("a case needs a home.cue and a want section")
			}
			cfg, diags := LoadSource("home.cue", src)
			got := ""
			for _, d := range diags {
				got += d.String() + "\n"
			}
			if diags.Errors() == 0 && cfg == nil {
				t.Error("no errors but no config")
			}
			if diags.Errors() > 0 && cfg != nil {
				t.Error("errors but a config")
			}
			if *update {
				ar.Files[wantIdx].Data = []byte(got)
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := string(ar.Files[wantIdx].Data); got != want {
				t.Errorf("diagnostics differ\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

// TestReference: the reference home vets unchanged, without a diagnostic.
func TestReference(t *testing.T) {
	for _, path := range []string{"../examples/home.cue", "../examples/minimal", "../../shared/reference/home.cue"} {
		if _, err := os.Stat(path); err != nil {
			if path == "../../shared/reference/home.cue" {
				continue // shared/ stands beside the checkout in CI, not always elsewhere
			}
			t.Fatal(err)
		}
		cfg, diags := Load(path)
		if len(diags) > 0 || cfg == nil {
			t.Errorf("%s: want no diagnostics, got:\n%v", path, diags.Error())
		}
	}
	ref, err1 := os.ReadFile("../examples/home.cue")
	shared, err2 := os.ReadFile("../../shared/reference/home.cue")
	if err1 == nil && err2 == nil && string(ref) != string(shared) {
		t.Error("examples/home.cue differs from ../shared/reference/home.cue: keep the example the reference, unchanged")
	}
}

// TestDefaults: a nearly empty home gets the documented defaults.
func TestDefaults(t *testing.T) {
	cfg, diags := LoadSource("home.cue", []byte("package home\nlisteners: mqtt: port: 1883\n"))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	want := Config{
		Broker:       Broker{Engine: "mosquitto", Hostname: "localhost", PasswordIterations: 1000},
		Listeners:    map[string]Listener{"mqtt": {Port: 1883, Protocol: "mqtt"}},
		Anonymous:    Anonymous{ACL: []string{}},
		Users:        map[string]User{},
		Patterns:     []string{},
		DevicesTopic: "home",
		Devices:      map[string]Device{},
		Persistence:  Persistence{Enabled: true, AutosaveInterval: "30m"},
		Logging: Logging{Destinations: []string{"stderr"}, Types: []string{"error", "warning", "notice", "information"},
			ConnectionMessages: true, Timestamps: true},
		Limits:     Limits{MaxConnections: -1, MaxQueuedMessages: 1000, MaxInflightMessages: 20},
		Bridges:    map[string]Bridge{},
		Monitoring: Monitoring{Prometheus: Prometheus{Port: 9234, User: "exporter"}},
		Deploy:     Deploy{Project: "mqttgen", Target: "docker"},
		Expect:     []Expect{},
	}
	cfg.pos = nil
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", *cfg, want)
	}
	if got := cfg.Broker.ImageRef(); got != DefaultMosquittoImage {
		t.Errorf("image = %s", got)
	}
}

// TestFieldsMirrorSchema keeps the Go types and the CUE schema in step: every
// field of the Go types is a field of the schema and the other way round.
func TestFieldsMirrorSchema(t *testing.T) {
	def := schemaValue()
	var walk func(v cueValue, path []string)
	walk = func(v cueValue, path []string) {
		goFields := fieldsAt(path)
		cueFields := v.fields()
		if !reflect.DeepEqual(goFields, cueFields) {
			t.Errorf("%s: Go fields %v, CUE fields %v", formatPath(path), goFields, cueFields)
		}
		for _, f := range cueFields {
			if child, ok := v.child(f); ok {
				walk(child, append(path, f))
			}
		}
	}
	walk(cueValue{def}, nil)
}

// FuzzLoadSource: no input makes vet panic, and every outcome is either a
// config or at least one error.
func FuzzLoadSource(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/vet/*.txtar")
	for _, s := range seeds {
		ar, err := txtar.ParseFile(s)
		if err != nil {
			continue
		}
		for _, file := range ar.Files {
			if file.Name == "home.cue" {
				f.Add(file.Data)
			}
		}
	}
	if ref, err := os.ReadFile("../examples/home.cue"); err == nil {
		f.Add(ref)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := LoadSource("home.cue", src)
		if (cfg == nil) != (diags.Errors() > 0) {
			t.Fatalf("config %v with %d errors", cfg != nil, diags.Errors())
		}
		for _, d := range diags {
			if strings.Contains(d.Msg, "internal error") {
				t.Fatalf("evaluator failure: %v", d)
			}
		}
	})
}

// cueValue walks the schema for TestFieldsMirrorSchema: through pattern
// constraints (maps), list elements, pointers-as-optional and disjunctions
// of structs (the union of their fields, as Go's Secret holds both).
type cueValue struct{ v cue.Value }

func (c cueValue) alternatives() []cue.Value {
	v := c.v
	if d, ok := v.Default(); ok {
		v = d
	}
	if op, args := v.Expr(); op == cue.OrOp {
		return args
	}
	if v.IncompleteKind() == cue.ListKind {
		return []cue.Value{v.LookupPath(cue.MakePath(cue.AnyIndex))}
	}
	if v.IncompleteKind() == cue.StructKind {
		if it, err := v.Fields(cue.Optional(true)); err == nil && !it.Next() {
			// A map: its values are the pattern constraint.
			if p := v.LookupPath(cue.MakePath(cue.AnyString)); p.Exists() {
				return []cue.Value{p}
			}
		}
	}
	return []cue.Value{v}
}

func (c cueValue) fields() []string {
	seen := map[string]bool{}
	var out []string
	for _, alt := range c.alternatives() {
		for _, inner := range (cueValue{alt}).alternatives() {
			if inner.IncompleteKind() != cue.StructKind {
				continue
			}
			it, err := inner.Fields(cue.Optional(true))
			if err != nil {
				continue
			}
			for it.Next() {
				name := it.Selector().Unquoted()
				if !seen[name] {
					seen[name] = true
					out = append(out, name)
				}
			}
		}
	}
	if out == nil {
		return nil
	}
	slices.Sort(out)
	return out
}

func (c cueValue) child(name string) (cueValue, bool) {
	for _, alt := range c.alternatives() {
		for _, inner := range (cueValue{alt}).alternatives() {
			if inner.IncompleteKind() != cue.StructKind {
				continue
			}
			if v := inner.LookupPath(cue.MakePath(cue.Str(name).Optional())); v.Exists() {
				return cueValue{v}, true
			}
			if v := inner.LookupPath(cue.MakePath(cue.Str(name))); v.Exists() {
				return cueValue{v}, true
			}
		}
	}
	return cueValue{}, false
}

func TestReadsLongSalts(t *testing.T) {
	for image, want := range map[string]bool{
		"": true, "eclipse-mosquitto:2.0.20": false, "eclipse-mosquitto:2.0": false,
		"eclipse-mosquitto:2.1.2": true, "eclipse-mosquitto:2.1": true, "eclipse-mosquitto:latest": true,
		"eclipse-mosquitto": true, "eclipse-mosquitto:2": true, "registry:5000/eclipse-mosquitto:2.0.18": false,
		"eclipse-mosquitto:2.1.2-openssl": true, "eclipse-mosquitto:3.0": true,
	} {
		b := Broker{Engine: EngineMosquitto, Image: image}
		if got := b.ReadsLongSalts(); got != want {
			t.Errorf("%q: ReadsLongSalts = %v, want %v", image, got, want)
		}
	}
	if (Broker{Engine: EngineMqttgen}).ReadsLongSalts() {
		t.Error("the bundled broker reads only 12-byte salts")
	}
}

// TestProbeUserReserved: the healthcheck's account cannot come from
// home.cue: the CUE schema's user name grammar refuses it, and vet's own
// check refuses a Config that holds it anyway (the CUE grammar bypassed).
func TestProbeUserReserved(t *testing.T) {
	src := "package home\nlisteners: mqtt: port: 1883\nusers: \"" + ProbeUser + "\": acl: [\"read #\"]\n"
	cfg, diags := LoadSource("home.cue", []byte(src))
	if cfg != nil || diags.Errors() == 0 || !strings.Contains(diags.Error(), "mqttgen's own") {
		t.Fatalf("home.cue declaring %s: got %v", ProbeUser, diags)
	}
	ok, diags := LoadSource("home.cue", []byte("package home\nlisteners: mqtt: port: 1883\nusers: admin: acl: [\"read #\"]\n"))
	if ok == nil {
		t.Fatal(diags)
	}
	ok.Users[ProbeUser] = User{ACL: []string{"read #"}}
	got := check(ok, &positions{at: map[string]token.Position{}})
	if got.Errors() == 0 || !strings.Contains(got.Error(), ProbeUser+"\" is mqttgen's own") {
		t.Errorf("check of a Config with user %s: %v", ProbeUser, got)
	}
}
