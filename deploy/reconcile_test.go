package deploy

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
)

var updatePlans = flag.Bool("update-plans", false, "rewrite testdata/plans (review the diff!)")

const baseHome = `package home
broker: image: "eclipse-mosquitto:2.0.20"
listeners: {
	mqtt: port: 1883
	mqtts: {port: 8883, tls: true}
}
tls: server_names: ["mqtt.home.arpa"]
users: {
	admin: acl: ["readwrite #"]
	homeassistant: preset: "homeassistant"
}
devices: sensor: publishes: ["temperature"]
logging: destinations: ["stderr"]
deploy: project: "home"
`

// home loads a home from text, applying each edit (old -> new) first.
func home(t *testing.T, edits ...string) *schema.Config {
	t.Helper()
	text := baseHome
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(text, edits[i]) {
			t.Fatalf("edit %q: not in the home", edits[i])
		}
		text = strings.Replace(text, edits[i], edits[i+1], 1)
	}
	p := filepath.Join(t.TempDir(), "home.cue")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, diags := schema.Load(p)
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	return cfg
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "certs", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// desired renders a home with fixed hashes and certificates (cert is "a" or
// "b" of testdata/certs) and builds its desired state.
func desired(t *testing.T, cfg *schema.Config, cert string, bridgePassword ...string) *Desired {
	t.Helper()
	in := generators.Inputs{
		Layout:          generators.ContainerLayout,
		Passwords:       map[string]string{},
		Hashes:          map[string]string{},
		BridgePasswords: map[string]string{},
		BridgeCAs:       map[string][]byte{},
	}
	for _, a := range cfg.Accounts() {
		in.Hashes[a.Name] = "$7$1000$SALT-OF-" + a.Name + "$HASH-OF-" + a.Name
		in.Passwords[a.Name] = "PASSWORD-OF-" + a.Name
	}
	in.ProbePassword, in.ProbeHash = "PASSWORD-OF-PROBE", "$7$1000$SALT-OF-PROBE$HASH-OF-PROBE"
	for name := range cfg.Bridges {
		in.BridgePasswords[name] = "BRIDGE-PASSWORD-" + name + strings.Join(bridgePassword, "")
	}
	if cfg.HasTLS() {
		in.Certs = &generators.Certs{ServerCert: fixture(t, cert+".crt"), ServerKey: fixture(t, cert+".key"), CA: fixture(t, "a.crt"), ClientCA: fixture(t, "a.crt")}
	}
	var build *Build
	if cfg.Broker.Engine == schema.EngineMqttgen || cfg.Monitoring.Prometheus.Enabled {
		build = &Build{Binary: "/usr/local/bin/mqttgen", Digest: testDigest, Arch: "amd64"}
	}
	files, err := generators.Render(cfg, in)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDesired(Input{
		Config:           cfg,
		Files:            files,
		ExporterPassword: "EXPORTER-PASSWORD",
		Probe:            Credentials{Username: "admin", Password: "PASSWORD-OF-admin"},
		WorkingDir:       "/home/me/home",
		Build:            build,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testDigest is the mqttgen binary of the bundled engine's tests.
var testDigest = strings.Repeat("ab", 32)

// withBinary is d built from another mqttgen binary.
func withBinary(d *Desired, digest string) *Desired {
	c := *d
	c.Services = append([]Service(nil), d.Services...)
	for i, s := range c.Services {
		if s.Build != nil {
			b := *s.Build
			b.Digest = digest
			c.Services[i].Build = &b
		}
	}
	return &c
}

// deployed is the observed state after a successful apply of d.
func deployed(d *Desired) *Observed {
	o := &Observed{Project: d.Project, Images: map[string]string{}, ImageBinaries: map[string]string{}}
	o.Networks = []Resource{d.Network}
	o.Volumes = append(o.Volumes, d.Volumes...)
	for _, s := range d.Services {
		sp := s.Spec
		o.Images[sp.Image] = "sha256:" + strings.Repeat("1", 64)
		label := sp.label() // as Observe reads it back
		if s.Build != nil {
			o.ImageBinaries[sp.Image] = s.Build.Digest
		}
		o.Containers = append(o.Containers, Container{
			ID:        "id-" + s.Name,
			Name:      engine.ContainerName(d.Project, s.Name),
			Service:   s.Name,
			Image:     sp.Image,
			ImageID:   "sha256:" + strings.Repeat("1", 64),
			State:     "running",
			SpecHash:  s.Hash,
			Spec:      &label,
			ConfigDir: s.ConfigDir,
			Files:     s.Files,
			Managed:   true,
		})
	}
	return o
}

func checkGolden(t *testing.T, name string, p *Plan) {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "plans", name+".txt")
	if *updatePlans {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./deploy -run TestPlanText -update-plans)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("plan text differs from %s (review, then -update-plans):\n%s", golden, b.String())
	}
	for _, secret := range []string{"HASH-OF-", "PRIVATE KEY", "BRIDGE-PASSWORD", "EXPORTER-PASSWORD", "PASSWORD-OF-"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("plan text shows a secret (%s)", secret)
		}
	}
	var js bytes.Buffer
	if err := p.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"HASH-OF-", "PRIVATE KEY", "BRIDGE-PASSWORD", "EXPORTER-PASSWORD", "PASSWORD-OF-"} {
		if strings.Contains(js.String(), secret) {
			t.Errorf("plan JSON shows a secret (%s)", secret)
		}
	}
}

func summary(p *Plan) [3]int {
	a, c, d := p.Summary()
	return [3]int{a, c, d}
}

func TestPlanText(t *testing.T) {
	base := desired(t, home(t), "a")
	tests := []struct {
		name     string
		observed func() *Observed
		want     *Desired
		actions  []Action
		summary  [3]int
	}{{
		name:     "fresh",
		observed: func() *Observed { return &Observed{Project: "home"} },
		want:     base,
		actions:  []Action{Create, Create, Create, Create},
		summary:  [3]int{4, 0, 0},
	}, {
		name:     "no-changes",
		observed: func() *Observed { return deployed(base) },
		want:     base,
		summary:  [3]int{0, 0, 0},
	}, {
		name:     "add-device",
		observed: func() *Observed { return deployed(base) },
		want: desired(t, home(t, `devices: sensor: publishes: ["temperature"]`,
			`devices: {sensor: publishes: ["temperature"], lamp: subscribes: ["set"]}`), "a"),
		actions: []Action{Update},
		summary: [3]int{0, 1, 0},
	}, {
		name:     "listener-port",
		observed: func() *Observed { return deployed(base) },
		want:     desired(t, home(t, "mqtt: port: 1883", "mqtt: port: 1884"), "a"),
		actions:  []Action{Replace},
		summary:  [3]int{1, 0, 1},
	}, {
		name:     "certificate-renewed",
		observed: func() *Observed { return deployed(base) },
		want:     desired(t, home(t), "b"),
		actions:  []Action{Update},
		summary:  [3]int{0, 1, 0},
	}, {
		name:     "log-types",
		observed: func() *Observed { return deployed(base) },
		want:     desired(t, home(t, `logging: destinations: ["stderr"]`, `logging: {destinations: ["stderr"], types: ["error", "warning"]}`), "a"),
		actions:  []Action{Update},
		summary:  [3]int{0, 1, 0},
	}, {
		name:     "image",
		observed: func() *Observed { return deployed(base) },
		want:     desired(t, home(t, "eclipse-mosquitto:2.0.20", "eclipse-mosquitto:2.0.21"), "a"),
		actions:  []Action{Replace},
		summary:  [3]int{1, 0, 1},
	}, {
		name: "image-rebuilt",
		observed: func() *Observed {
			o := deployed(base)
			o.Images["eclipse-mosquitto:2.0.20"] = "sha256:" + strings.Repeat("2", 64)
			return o
		},
		want:    base,
		actions: []Action{Replace},
		summary: [3]int{1, 0, 1},
	}, {
		name: "exited",
		observed: func() *Observed {
			o := deployed(base)
			o.Containers[0].State = "exited"
			return o
		},
		want:    base,
		actions: []Action{Replace},
		summary: [3]int{1, 0, 1},
	}, {
		name: "made-by-compose",
		observed: func() *Observed {
			o := deployed(base)
			o.Containers[0].Managed, o.Containers[0].SpecHash, o.Containers[0].Spec = false, "", nil
			return o
		},
		want:    base,
		actions: []Action{Replace},
		summary: [3]int{1, 0, 1},
	}, {
		name:     "exporter-added",
		observed: func() *Observed { return deployed(base) },
		want:     desired(t, home(t, `deploy: project`, "monitoring: prometheus: {enabled: true, user: \"admin\"}\ndeploy: project"), "a"),
		actions:  []Action{Create},
		summary:  [3]int{1, 0, 0},
	}, {
		name: "exporter-removed",
		observed: func() *Observed {
			return deployed(desired(t, home(t, `deploy: project`, "monitoring: prometheus: {enabled: true, user: \"admin\"}\ndeploy: project"), "a"))
		},
		want:    base,
		actions: []Action{Delete},
		summary: [3]int{0, 0, 1},
	}, {
		name: "bridge-password",
		observed: func() *Observed {
			return deployed(desired(t, home(t, `deploy: project`, "bridges: cloud: {address: \"cloud.example.com:8883\", username: \"house\", password: env: \"P\", topics: [{pattern: \"a/#\"}]}\ndeploy: project"), "a"))
		},
		want:    desired(t, home(t, `deploy: project`, "bridges: cloud: {address: \"cloud.example.com:8883\", username: \"house\", password: env: \"P\", topics: [{pattern: \"a/#\"}]}\ndeploy: project"), "a", "-rotated"),
		actions: []Action{Replace},
		summary: [3]int{1, 0, 1},
	}, {
		// Mosquitto 2.1 reloads bridges on SIGHUP (bridge_reload_type
		// immediate): a rotated bridge password is a ~, not a -/+.
		name: "mosquitto-2.1-bridge-password",
		observed: func() *Observed {
			return deployed(desired(t, home(t, "2.0.20", "2.1.2", `deploy: project`, "bridges: cloud: {address: \"cloud.example.com:8883\", username: \"house\", password: env: \"P\", topics: [{pattern: \"a/#\"}]}\ndeploy: project"), "a"))
		},
		want:    desired(t, home(t, "2.0.20", "2.1.2", `deploy: project`, "bridges: cloud: {address: \"cloud.example.com:8883\", username: \"house\", password: env: \"P\", topics: [{pattern: \"a/#\"}]}\ndeploy: project"), "a", "-rotated"),
		actions: []Action{Update},
		summary: [3]int{0, 1, 0},
	}, {
		// 2.0 to 2.1: a new container, and the packet limit falls to 2.1's
		// default, which plan shows.
		name:     "mosquitto-2.1-upgrade",
		observed: func() *Observed { return deployed(base) },
		want:     desired(t, home(t, "2.0.20", "2.1.2"), "a"),
		actions:  []Action{Replace},
		summary:  [3]int{1, 0, 1},
	}, {
		name:     "mosquitto-2.1-listener",
		observed: func() *Observed { return deployed(desired(t, home(t, "2.0.20", "2.1.2"), "a")) },
		want:     desired(t, home(t, "2.0.20", "2.1.2", "mqtt: port: 1883", "mqtt: {port: 1883, protocols: [\"5\"]}"), "a"),
		actions:  []Action{Replace},
		summary:  [3]int{1, 0, 1},
	}}
	bundled := func(edits ...string) *Desired {
		edits = append([]string{`broker: image: "eclipse-mosquitto:2.0.20"`, `broker: engine: "mqttgen"`}, edits...)
		return desired(t, home(t, edits...), "a")
	}
	bundledBase := bundled()
	tests = append(tests, []struct {
		name     string
		observed func() *Observed
		want     *Desired
		actions  []Action
		summary  [3]int
	}{{
		name:     "bundled-fresh",
		observed: func() *Observed { return &Observed{Project: "home"} },
		want:     bundledBase,
		actions:  []Action{Create, Create, Create, Create},
		summary:  [3]int{4, 0, 0},
	}, {
		name:     "bundled-no-changes",
		observed: func() *Observed { return deployed(bundledBase) },
		want:     bundledBase,
		summary:  [3]int{0, 0, 0},
	}, {
		name:     "bundled-binary-changed",
		observed: func() *Observed { return deployed(bundledBase) },
		want:     withBinary(bundledBase, strings.Repeat("cd", 32)),
		actions:  []Action{Replace},
		summary:  [3]int{1, 0, 1},
	}, {
		name: "bundled-image-not-built",
		observed: func() *Observed {
			o := deployed(bundledBase)
			delete(o.ImageBinaries, "mqttgen/broker:latest")
			return o
		},
		want:    bundledBase,
		actions: []Action{Replace},
		summary: [3]int{1, 0, 1},
	}, {
		name:     "bundled-add-device",
		observed: func() *Observed { return deployed(bundledBase) },
		want: bundled(`devices: sensor: publishes: ["temperature"]`,
			`devices: {sensor: publishes: ["temperature"], lamp: subscribes: ["set"]}`),
		actions: []Action{Update},
		summary: [3]int{0, 1, 0},
	}, {
		// Mosquitto reloads limits on SIGHUP; the bundled broker does not.
		name:     "bundled-limits",
		observed: func() *Observed { return deployed(bundledBase) },
		want:     bundled(`deploy: project`, "limits: max_queued_messages: 500\ndeploy: project"),
		actions:  []Action{Replace},
		summary:  [3]int{1, 0, 1},
	}, {
		name:     "engine-switch",
		observed: func() *Observed { return deployed(base) },
		want:     bundledBase,
		actions:  []Action{Replace},
		summary:  [3]int{1, 0, 1},
	}, {
		name:     "bundled-metrics",
		observed: func() *Observed { return deployed(bundledBase) },
		want:     bundled(`deploy: project`, "monitoring: prometheus: {enabled: true, user: \"admin\"}\ndeploy: project"),
		actions:  []Action{Replace},
		summary:  [3]int{1, 0, 1},
	}}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Reconcile(tc.want, tc.observed())
			var actions []Action
			for _, op := range p.Ops {
				actions = append(actions, op.Action)
			}
			if strings.Join(strs2(actions), " ") != strings.Join(strs2(tc.actions), " ") {
				t.Errorf("actions %v, want %v", actions, tc.actions)
			}
			if summary(p) != tc.summary {
				t.Errorf("summary %v, want %v", summary(p), tc.summary)
			}
			checkGolden(t, tc.name, p)
		})
	}
}

func strs2(a []Action) []string {
	out := make([]string, len(a))
	for i, x := range a {
		out[i] = string(x)
	}
	return out
}

func TestReconcileIsPure(t *testing.T) {
	d := desired(t, home(t), "a")
	o := &Observed{Project: "home"}
	var a, b bytes.Buffer
	Reconcile(d, o).WriteText(&a)
	Reconcile(d, o).WriteText(&b)
	if a.String() != b.String() {
		t.Fatal("two reconciles of the same states differ")
	}
}

func TestValidateFiles(t *testing.T) {
	good := map[string][]byte{
		"acl":    []byte("user admin\ntopic readwrite #\n"),
		"passwd": []byte("admin:$7$101$AAAAAAAAAAAAAAAA$" + strings.Repeat("A", 86) + "==\n"),
	}
	if err := validateFiles(good); err != nil {
		t.Fatalf("good files: %v", err)
	}
	for name, files := range map[string]map[string][]byte{
		"acl":    {"acl": []byte("user admin\ntopic readwrite a/#/b\n")},
		"passwd": {"passwd": []byte("admin:$7$101$short$short\n")},
		"cert":   {"certs/server.crt": fixture(t, "a.crt"), "certs/server.key": fixture(t, "b.key")},
	} {
		if err := validateFiles(files); err == nil {
			t.Errorf("bad %s accepted", name)
		}
	}
}

func TestUnifiedDiff(t *testing.T) {
	old := []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n")
	want := []byte("a\nb\nc\nd\nE\nf\ng\nh\ni\nj\nk\n")
	got := unifiedDiff("x", old, want)
	const expect = `--- x (deployed)
+++ x (home.cue)
@@ -2,9 +2,10 @@
 b
 c
 d
-e
+E
 f
 g
 h
 i
 j
+k
`
	if got != expect {
		t.Errorf("diff:\n%s\nwant:\n%s", got, expect)
	}
	if unifiedDiff("x", old, old) != "" {
		t.Error("a diff of equal files")
	}
}

// TestCheckCertificates: a TLS listener that presents another certificate
// than the deployed one fails the check.
func TestCheckCertificates(t *testing.T) {
	pair, err := tls.X509KeyPair(fixture(t, "a.crt"), fixture(t, "a.key"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	targets := []ProbeTarget{{Listener: "mqtts", Port: l.Addr().(*net.TCPAddr).Port, TLS: true}}
	if err := checkCertificates("127.0.0.1", targets, fixture(t, "a.crt")); err != nil {
		t.Errorf("the served certificate: %v", err)
	}
	if err := checkCertificates("127.0.0.1", targets, fixture(t, "b.crt")); err == nil || !strings.Contains(err.Error(), "previous certificate") {
		t.Errorf("another certificate: %v", err)
	}
}

func TestProbeTargets(t *testing.T) {
	conf := []byte("persistence true\n\n# Listener mqtt\nlistener 1883\nprotocol mqtt\n\n# Listener ws\nlistener 9001\nprotocol websockets\ncertfile /x\nrequire_certificate true\n\nlistener 7000\n")
	sp := &Spec{Ports: []Port{{HostIP: "0.0.0.0", Published: 1884, Target: 1883, Protocol: "tcp"}, {Published: 9001, Target: 9001, Protocol: "tcp"}}}
	got := ProbeTargets([]generators.File{{Path: "mosquitto.conf", Data: conf}}, sp)
	want := []ProbeTarget{
		{Listener: "1884", HostIP: "0.0.0.0", Port: 1884},
		{Listener: "9001", Port: 9001, TLS: true, Websockets: true, ClientCert: true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("targets %+v, want %+v (an unpublished listener is not probed)", got, want)
	}
}

// TestBundledEngineNeedsBinary: without a mqttgen binary there is no
// image for engine mqttgen.
func TestBundledEngineNeedsBinary(t *testing.T) {
	cfg := home(t, `broker: image: "eclipse-mosquitto:2.0.20"`, `broker: engine: "mqttgen"`)
	if _, err := NewDesired(Input{Config: cfg}); err == nil || !strings.Contains(err.Error(), "no mqttgen binary") {
		t.Fatalf("engine mqttgen without a binary: %v", err)
	}
}

// TestInspectBinary: the image is FROM scratch, so a dynamically linked
// mqttgen (a PT_INTERP header) is refused with what to do, and so is a file
// that is not a Linux executable.
func TestInspectBinary(t *testing.T) {
	for _, dyn := range []string{"/bin/sh", "/usr/bin/env"} {
		if _, err := os.Stat(dyn); err != nil {
			continue
		}
		_, err := InspectBinary(dyn)
		if err == nil || !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "CGO_ENABLED=0, as `make build` does") {
			t.Errorf("%s: %v, want a refusal naming CGO_ENABLED=0", dyn, err)
		}
		break
	}
	text := filepath.Join(t.TempDir(), "mqttgen")
	os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755)
	if _, err := InspectBinary(text); err == nil || !strings.Contains(err.Error(), "not a Linux executable") {
		t.Errorf("a script: %v", err)
	}
	if _, err := InspectBinary(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("a missing binary is accepted")
	}
}

// TestBundledReload: the options the bundled broker reloads on SIGHUP.
func TestBundledReload(t *testing.T) {
	base := []byte("persistence true\nmax_queued_messages 1000\nlog_type error\nallow_anonymous false\n\nlistener 1883\n")
	for _, tc := range []struct {
		conf          string
		mosquitto, mq bool // restart
	}{
		{"persistence true\nmax_queued_messages 1000\nlog_type error\nlog_type warning\nallow_anonymous false\n\nlistener 1883\n", false, false},
		{"persistence true\nmax_queued_messages 1000\nlog_type error\nallow_anonymous true\n\nlistener 1883\n", false, false},
		{"persistence true\nmax_queued_messages 500\nlog_type error\nallow_anonymous false\n\nlistener 1883\n", false, true},
		{"persistence false\nmax_queued_messages 1000\nlog_type error\nallow_anonymous false\n\nlistener 1883\n", false, true},
	} {
		if got := fileForcesRestart("mosquitto", "mosquitto.conf", base, []byte(tc.conf)) != ""; got != tc.mosquitto {
			t.Errorf("mosquitto, %q: restart %v", tc.conf, got)
		}
		if got := fileForcesRestart("mqttgen", "mosquitto.conf", base, []byte(tc.conf)) != ""; got != tc.mq {
			t.Errorf("mqttgen, %q: restart %v", tc.conf, got)
		}
	}
}

// TestLabelsHoldNoSecret: the labels apply gives each container (the spec
// label shows what changed) hold no password, hash or key: the exporter's
// password was in clear in io.mqttgen.spec. A changed password still
// replaces the exporter, and plan shows it by digest.
func TestLabelsHoldNoSecret(t *testing.T) {
	cfg := home(t, `deploy: project`, "monitoring: prometheus: {enabled: true, user: \"admin\"}\nbridges: cloud: {address: \"cloud.example.com:8883\", username: \"house\", password: env: \"P\", topics: [{pattern: \"a/#\"}]}\ndeploy: project")
	d := desired(t, cfg, "a")
	if len(d.Services) < 2 {
		t.Fatalf("services %v: no exporter", d.Services)
	}
	for _, s := range d.Services {
		name := engine.ContainerName(d.Project, s.Name)
		for k, v := range containerLabels(d, &s, name) {
			for _, secret := range []string{"EXPORTER-PASSWORD", "PASSWORD-OF-", "BRIDGE-PASSWORD", "PRIVATE KEY", "HASH-OF-"} {
				if strings.Contains(v, secret) {
					t.Errorf("container %s: label %s holds %s: %s", name, k, secret, v)
				}
			}
		}
	}
	o := deployed(d)
	rotated := *d
	rotated.Services = append([]Service(nil), d.Services...)
	for i, s := range rotated.Services {
		if s.Name == generators.ExporterService {
			// The exporter's password is a file of its container, not
			// its environment (nor, so, a label).
			if len(s.Spec.Env) != 0 || len(s.Files) != 1 || s.Files[0].Path != generators.ExporterSecret || string(s.Files[0].Data) != "EXPORTER-PASSWORD\n" {
				t.Fatalf("exporter env %v files %+v", s.Spec.Env, s.Files)
			}
			s.Files = []generators.File{{Path: generators.ExporterSecret, Mode: 0o600, Data: []byte("ROTATED\n")}}
			rotated.Services[i] = s
		}
	}
	if p := Reconcile(d, o); !p.Empty() {
		t.Fatalf("the same home against its redacted labels: %+v", p.Ops)
	}
	p := Reconcile(&rotated, o)
	var text strings.Builder
	p.WriteText(&text)
	if got := summary(p); got != [3]int{1, 0, 1} || !strings.Contains(text.String(), "(password redacted, sha256 ") || strings.Contains(text.String(), "ROTATED") {
		t.Errorf("a rotated exporter password: %v\n%s", got, text.String())
	}
}

// TestPlanRedactsProbeLogin: a new password of the healthcheck's login shows
// in a plan as a changed digest, never the password.
func TestPlanRedactsProbeLogin(t *testing.T) {
	old := []byte("-u mqttgen.healthcheck\n-P OLD-PROBE-PASSWORD\n")
	want := []byte("-u mqttgen.healthcheck\n-P NEW-PROBE-PASSWORD\n")
	d := unifiedDiff("healthcheck/mosquitto_sub", old, want)
	if strings.Contains(d, "PROBE-PASSWORD") || !strings.Contains(d, "-P (redacted, sha256 ") || !strings.Contains(d, "-u mqttgen.healthcheck") {
		t.Errorf("diff of the probe login:\n%s", d)
	}
}
