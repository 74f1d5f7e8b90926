package workspace

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/pki"
)

const baseHome = `package home

listeners: mqtt: port: 1883
users: {
	admin: acl: ["readwrite #"]
	homeassistant: preset: "homeassistant"
}
homeassistant: {}
devices: "hall-light": {
	publishes: ["state"]
	subscribes: ["set"]
	entities: light: {component: "switch", state: "state", command: "set"}
}
`

const newDevice = `devices: "porch-sensor": {
	publishes: ["motion"]
	entities: motion: {component: "binary_sensor", device_class: "motion"}
}
`

func render(t *testing.T, dir, state string) map[string][]byte {
	t.Helper()
	h, err := Open(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	files, err := h.Render(RenderOptions{Out: filepath.Join(dir, "out"), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		out[f.Path] = f.Data
	}
	return out
}

// addedLines returns the non-empty lines of after that before lacks, and fails when
// any line of before is gone: adding a device only adds.
func addedLines(t *testing.T, name string, before, after []byte) []string {
	t.Helper()
	b := strings.Split(string(before), "\n")
	a := strings.Split(string(after), "\n")
	var added []string
	i := 0
	for _, line := range a {
		if i < len(b) && line == b[i] {
			i++
			continue
		}
		if line != "" {
			added = append(added, line)
		}
	}
	if i != len(b) {
		t.Errorf("%s: line %q of before is gone or moved", name, b[i])
	}
	return added
}

// TestAddDevice: adding a device to a rendered home changes exactly its
// passwd line, its acl section, its discovery file and its mqtt.yaml entry;
// every other file and every other hash stays byte for byte.
func TestAddDevice(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, ".mqttgen")
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(baseHome), 0o644); err != nil {
		t.Fatal(err)
	}
	before := render(t, dir, state)
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(baseHome+newDevice), 0o644); err != nil {
		t.Fatal(err)
	}
	after := render(t, dir, state)

	var changed []string
	for p, data := range after {
		if !bytes.Equal(before[p], data) {
			changed = append(changed, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s disappeared", p)
		}
	}
	slices.Sort(changed)
	want := []string{
		"config/acl",
		"config/passwd",
		"homeassistant/discovery/device/porch-sensor.json",
		"homeassistant/mqtt.yaml",
	}
	if !slices.Equal(changed, want) {
		t.Fatalf("changed files %v, want %v", changed, want)
	}

	passwd := addedLines(t, "passwd", before["config/passwd"], after["config/passwd"])
	if len(passwd) != 1 || !strings.HasPrefix(passwd[0], "porch-sensor:$7$") {
		t.Errorf("passwd gained %q, want the one line of porch-sensor", passwd)
	}
	acl := addedLines(t, "acl", before["config/acl"], after["config/acl"])
	wantACL := []string{"user porch-sensor", "topic write home/porch-sensor/motion"}
	if !slices.Equal(acl, wantACL) {
		t.Errorf("acl gained %q, want %q", acl, wantACL)
	}
	yaml := addedLines(t, "mqtt.yaml", before["homeassistant/mqtt.yaml"], after["homeassistant/mqtt.yaml"])
	if len(yaml) == 0 || !strings.Contains(strings.Join(yaml, "\n"), "unique_id: mqttgen_porch-sensor_motion") {
		t.Errorf("mqtt.yaml gained %q", yaml)
	}
}

// TestRenderDeterministic: same home and state, byte-identical files.
func TestRenderDeterministic(t *testing.T) {
	dir := t.TempDir()
	home := baseHome + "listeners: mqtts: {port: 8883, tls: true}\ntls: server_names: [\"mqtt.lan\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, ".mqttgen")
	a, b := render(t, dir, state), render(t, dir, state)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d files then %d", len(a), len(b))
	}
	for p := range a {
		if !bytes.Equal(a[p], b[p]) {
			t.Errorf("%s differs between two renders", p)
		}
	}
	if _, ok := a["config/certs/server.crt"]; !ok {
		t.Error("no server certificate rendered")
	}
}

// TestNothingWrittenOnMissingSecret: a secret that cannot be read stops
// rendering before the state directory is touched.
func TestNothingWrittenOnMissingSecret(t *testing.T) {
	dir := t.TempDir()
	home := baseHome + "users: panel: password: env: \"MQTTGEN_TEST_UNSET\"\n"
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, ".mqttgen")
	h, err := Open(dir, state)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Render(RenderOptions{Out: filepath.Join(dir, "out"), Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), "users.panel.password: environment variable MQTTGEN_TEST_UNSET is not set") {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), "home.cue:") && !strings.Contains(err.Error(), "home.cue:") {
		t.Errorf("no position in %v", err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state directory was created: %v", err)
	}
}

// TestStateModes: the state directory is 0700, its files 0600.
func TestStateModes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(baseHome), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, ".mqttgen")
	render(t, dir, state)
	err := filepath.Walk(state, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if info.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", p, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriteRemovesStale: files an earlier render wrote and the home no
// longer produces are removed; others' files are left alone.
func TestWriteRemovesStale(t *testing.T) {
	out := t.TempDir()
	mine := []generators.File{{Path: "config/a", Mode: 0o644, Data: []byte("a")}, {Path: "config/b", Mode: 0o600, Data: []byte("b")}}
	if err := Write(out, mine, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "config", "user-notes"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(out, mine[:1], false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "config", "b")); !os.IsNotExist(err) {
		t.Error("config/b should be gone")
	}
	if _, err := os.Stat(filepath.Join(out, "config", "user-notes")); err != nil {
		t.Error("a file mqttgen did not write was removed")
	}
	if st, err := os.Stat(filepath.Join(out, "config", "a")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("config/a: %v %v", st, err)
	}
}

// TestLocalChownsOnlyBrokerFiles: render --local as root into the home's
// own folder (-o .) hands the broker's user its config files and the data
// and log folders, never the state directory (CA key, passwords) nor a file
// mqttgen did not write. (It chowned the whole output folder before.)
func TestLocalChownsOnlyBrokerFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown happens only when render runs as root")
	}
	if LocalRunAs() == "" {
		t.Fatalf("no user %s: install Debian's mosquitto", LocalBrokerUser)
	}
	// The broker's user must reach the folder: open up t.TempDir's two
	// private levels.
	parent := t.TempDir()
	for _, p := range []string{filepath.Dir(parent), parent} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(parent, "home")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	home := baseHome + "listeners: mqtts: {port: 8883, tls: true}\ntls: server_names: [\"mqtt.lan\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"notes.txt", "config/user-notes"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h, err := Open(dir, filepath.Join(dir, DefaultStateDir))
	if err != nil {
		t.Fatal(err)
	}
	files, err := h.Render(RenderOptions{Local: true, Out: dir, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, files, true); err != nil {
		t.Fatal(err)
	}
	broker := map[string]bool{"data": true, "log": true}
	for _, f := range files {
		if strings.HasPrefix(f.Path, "config/") {
			broker[f.Path] = true
		}
	}
	if !broker["config/certs/server.key"] || !broker["config/passwd"] {
		t.Fatalf("rendered %v: no key or passwd to hand over", broker)
	}
	owned := 0
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		uid := info.Sys().(*syscall.Stat_t).Uid
		switch {
		case broker[rel] && uid == 0:
			t.Errorf("%s: still root's, the broker cannot read it", rel)
		case !broker[rel] && uid != 0:
			t.Errorf("%s: handed to uid %d, but mqttgen did not write it for the broker", rel, uid)
		case broker[rel]:
			owned++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if owned != len(broker) {
		t.Errorf("%d of %d broker files owned by %s", owned, len(broker), LocalBrokerUser)
	}
}

// TestServerCertificateName: the server certificate's common name is
// broker.hostname, not the first of its names in sorted order (an IP address
// sorts before a DNS name); a certificate of another common name is made anew.
func TestServerCertificateName(t *testing.T) {
	dir := t.TempDir()
	home := `package home

broker: hostname: "mqtt.home.arpa"
listeners: mqtts: {port: 8883, tls: true}
tls: server_names: ["192.168.1.10", "10.0.0.2", "broker.lan"]
users: admin: acl: ["readwrite #"]
`
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	files := render(t, dir, "")
	crt := findSuffix(files, "certs/server.crt")
	cert, err := pki.ParseCert(crt)
	if err != nil {
		t.Fatalf("server.crt: %v (files %v)", err, slices.Sorted(maps.Keys(files)))
	}
	if cert.Subject.CommonName != "mqtt.home.arpa" {
		t.Errorf("common name %q, want broker.hostname mqtt.home.arpa", cert.Subject.CommonName)
	}
	if !slices.Equal(cert.DNSNames, []string{"broker.lan", "mqtt.home.arpa"}) || len(cert.IPAddresses) != 2 {
		t.Errorf("names %v %v", cert.DNSNames, cert.IPAddresses)
	}
	if again := render(t, dir, ""); !bytes.Equal(findSuffix(again, "certs/server.crt"), crt) {
		t.Error("a valid certificate was made anew")
	}
}

func findSuffix(files map[string][]byte, suffix string) []byte {
	for p, data := range files {
		if strings.HasSuffix(p, suffix) {
			return data
		}
	}
	return nil
}
