package kube_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/golden (review the diff!)")

// render renders a home as render does for target "kubernetes", with fixed
// stand-ins for what packages secrets and pki resolve.
func render(t *testing.T, name string, src []byte) []generators.File {
	t.Helper()
	if !bytes.Contains(src, []byte("image:")) {
		// One release for every golden case, whatever the default image
		// becomes (2.1 runs too: the reloader copies its files out).
		src = append(bytes.Clone(src), "\nbroker: image: \"eclipse-mosquitto:2.0.20\"\n"...)
	}
	cfg, diags := schema.LoadSource(name, src)
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	in := generators.Inputs{Layout: generators.ContainerLayout, HomeDir: "/srv/home", StateDir: "/srv/home/.mqttgen",
		Passwords: map[string]string{}, Hashes: map[string]string{}, BridgePasswords: map[string]string{}, BridgeCAs: map[string][]byte{}}
	for _, a := range cfg.Accounts() {
		in.Hashes[a.Name] = "$7$1000$HASH-OF-" + a.Name
		in.Passwords[a.Name] = "PASSWORD-OF-" + a.Name
	}
	for name, b := range cfg.Bridges {
		if b.Password != nil {
			in.BridgePasswords[name] = "BRIDGE-PASSWORD-" + name
		}
		if b.CAFile != "" {
			in.BridgeCAs[name] = []byte("BRIDGE-CA-" + name + "\n")
		}
	}
	if cfg.HasTLS() {
		in.Certs = &generators.Certs{ServerCert: []byte("SERVER-CERT\n"), ServerKey: []byte("SERVER-KEY\n"), CA: []byte("CA-CERT\n"), ClientCA: []byte("CA-CERT\n")}
	}
	rendered, err := generators.Render(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	files, err := kube.Manifests(cfg, rendered)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGolden renders each home of testdata/golden/*.txtar and compares
// every manifest, with its mode, to the other sections.
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/golden/*.txtar")
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, file := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			src := ar.Files[0].Data
			got := []txtar.File{ar.Files[0]}
			for _, f := range render(t, "home.cue", src) {
				got = append(got, txtar.File{Name: fmt.Sprintf("%s (%04o)", f.Path, f.Mode), Data: f.Data})
			}
			if *update {
				ar.Files = got
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := txtar.Format(&txtar.Archive{Files: ar.Files}); !bytes.Equal(txtar.Format(&txtar.Archive{Files: got}), want) {
				t.Errorf("manifests differ from %s (go test -update, then read the diff):\n%s", file, txtar.Format(&txtar.Archive{Files: got}))
			}
		})
	}
}

// The same home renders the same bytes, and passwd, acl and keys are only
// in the Secret, written 0600.
func TestSecretsStayInTheSecret(t *testing.T) {
	home := goldenHome(t, "testdata/golden/full.txtar")
	a, b := render(t, "home.cue", home), render(t, "home.cue", home)
	for i := range a {
		if a[i].Path != b[i].Path || !bytes.Equal(a[i].Data, b[i].Data) {
			t.Errorf("%s: two renders differ", a[i].Path)
		}
		secret := strings.HasSuffix(a[i].Path, "/"+kube.SecretFile)
		if secret != (a[i].Mode == 0o600) {
			t.Errorf("%s: mode %04o", a[i].Path, a[i].Mode)
		}
		for _, s := range []string{"HASH-OF-", "SERVER-KEY", "BRIDGE-PASSWORD-"} {
			enc := []byte(s)
			if !secret && bytes.Contains(a[i].Data, enc) {
				t.Errorf("%s holds %s, which belongs in the Secret", a[i].Path, s)
			}
		}
	}
}

func TestDockerTargetHasNoManifests(t *testing.T) {
	cfg, diags := schema.LoadSource("home.cue", []byte("listeners: mqtt: port: 1883\n"))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	if _, err := kube.Manifests(cfg, nil); err == nil {
		t.Error("manifests for target docker")
	}
}

// goldenHome is the home.cue of a golden case.
func goldenHome(t *testing.T, path string) []byte {
	t.Helper()
	ar, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return ar.Files[0].Data
}
