package deploy

import (
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/internal/secretaudit"
	"github.com/mqttgen/mqttgen/workspace"
)

const savedPlanHome = `package home
broker: hostname: "mqtt.home.arpa"
listeners: {
	mqtt: port: 1883
	mqtts: {port: 8883, tls: true}
}
tls: server_names: ["mqtt.home.arpa"]
users: {
	admin: acl: ["readwrite #"]
	exporter: acl: ["read $SYS/#"]
}
devices: sensor: publishes: ["temperature"]
bridges: cloud: {address: "cloud.example.com:8883", username: "house", password: env: "MQTTGEN_TEST_PLAN_BRIDGE", topics: [{pattern: "a/#", direction: "out"}]}
monitoring: prometheus: {enabled: true, user: "exporter"}
deploy: project: "saved-plan"
`

// TestSavedPlanHoldsNoSecret: a saved plan held the server's private key,
// the passwd hashes, the bridge's and the exporter's passwords. Now it
// holds none of them, old or new, and is refused as stale once a password
// changes (the home is rendered again at apply).
func TestSavedPlanHoldsNoSecret(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home.cue")
	state := filepath.Join(dir, ".mqttgen")
	if err := os.WriteFile(home, []byte(savedPlanHome), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MQTTGEN_TEST_PLAN_BRIDGE", "bridge-password-before")
	fakeStaticBinary(t)
	render := func() *Desired {
		t.Helper()
		h, err := workspace.Open(home, state)
		if err != nil {
			t.Fatal(err)
		}
		d, err := FromHome(h, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	before := render()
	if again := render(); again.Digest() != before.Digest() {
		t.Fatal("the same home renders to another digest")
	}
	secrets, err := secretaudit.FromState(state)
	if err != nil {
		t.Fatal(err)
	}
	secrets.Add("the bridge password", "bridge-password-before")

	// A password and the bridge password change: plan shows both diffs.
	h, err := workspace.Open(home, state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Secrets.Rotate("admin"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MQTTGEN_TEST_PLAN_BRIDGE", "bridge-password-after")
	after := render()
	more, err := secretaudit.FromState(state)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, more...)
	secrets.Add("the new bridge password", "bridge-password-after")
	p := Reconcile(after, deployed(before))
	if p.Empty() {
		t.Fatal("no plan")
	}
	file := filepath.Join(dir, "home.plan")
	if err := Save(file, p, after, home, state, time.Now()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "passwd") || !strings.Contains(string(data), "hash redacted") {
		t.Fatalf("the saved plan does not show the passwd change:\n%s", data)
	}
	for _, hit := range secrets.Find("the saved plan", data) {
		t.Error(hit)
	}
	// What a saved plan held before: the audit finds the secrets there.
	whole, _ := json.Marshal(after)
	if hits := secrets.Find("the desired state", whole); len(hits) < 5 {
		t.Fatalf("the audit finds only %v in the desired state, which holds every secret", hits)
	}

	sp, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Check(render()); err != nil {
		t.Fatalf("the unchanged home: %v", err)
	}
	if _, err := h.Secrets.Rotate("sensor"); err != nil {
		t.Fatal(err)
	}
	var stale *ErrStale
	if err := sp.Check(render()); !errors.As(err, &stale) || !stale.Home || !strings.Contains(err.Error(), "a password, a key or a certificate") {
		t.Fatalf("a plan of a home whose password changed: %v", err)
	}
	t.Setenv("MQTTGEN_TEST_PLAN_BRIDGE", "bridge-password-third")
	if err := sp.Check(render()); !errors.As(err, &stale) {
		t.Fatalf("a plan of a home whose bridge password changed: %v", err)
	}

	// A plan file of the format that held secrets is refused, and says so.
	old := filepath.Join(dir, "old.plan")
	os.WriteFile(old, []byte(`{"mqttgen_plan": "1", "plan": {}, "desired": {}}`), 0o600)
	if _, err := Load(old); err == nil || !strings.Contains(err.Error(), "held the home's keys and password hashes: delete it") {
		t.Errorf("an old plan: %v", err)
	}
}

// FuzzLoadPlan: the saved-plan loader never panics; what it accepts has a
// plan, absolute references and a SHA-256, and saves and loads back the
// same.
func FuzzLoadPlan(f *testing.F) {
	good, _ := json.Marshal(SavedPlan{Magic: savedPlanMagic, Plan: &Plan{Project: "p", Fingerprint: "x", Ops: []Op{{Action: Update, Kind: KindContainer, Name: "c"}}}, Home: "/h/home.cue", StateDir: "/h/.mqttgen", DesiredSHA256: strings.Repeat("ab", 32)})
	f.Add(good)
	f.Add([]byte(`{"mqttgen_plan": "1"}`))
	f.Add([]byte(`{"mqttgen_plan": "2", "plan": null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sp, err := parsePlan("f", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a refusal on more than one line: %q", err)
			}
			return
		}
		if sp.Plan == nil || !filepath.IsAbs(sp.Home) || !filepath.IsAbs(sp.StateDir) || len(sp.DesiredSHA256) != 64 {
			t.Fatalf("accepted %+v", sp)
		}
		again, err := json.Marshal(sp)
		if err != nil {
			t.Fatal(err)
		}
		sp2, err := parsePlan("f", again)
		if err != nil || sp2.DesiredSHA256 != sp.DesiredSHA256 || sp2.Home != sp.Home || sp2.Plan.Fingerprint != sp.Plan.Fingerprint {
			t.Fatalf("saved again: %+v, %v", sp2, err)
		}
	})
}

// TestRollbackKeepsFolders: a restore whose copy failed on a file where
// the previous config has a folder (config/certs beside config/certs/...)
// emptied that file again on write-back, which failed the same way and
// left the broker stopped. The write-back restores the previous tree.
func TestRollbackKeepsFolders(t *testing.T) {
	previous := []generators.File{{Path: "mosquitto.conf"}, {Path: "certs/ca.crt"}, {Path: "certs/server.crt"}}
	restored := []generators.File{{Path: "mosquitto.conf"}, {Path: "certs"}, {Path: "extra.conf"}}
	got := notFolders(missing(restored, previous), previous)
	if !slices.Equal(got, []string{"extra.conf"}) {
		t.Errorf("emptied on write-back: %v, want [extra.conf]", got)
	}
}

// fakeStaticBinary makes BrokerBinary a static x86-64 ELF header, enough
// for plan (InspectBinary), which a home with the exporter or the bundled
// broker needs; nothing runs it.
func fakeStaticBinary(t *testing.T) {
	t.Helper()
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], uint16(elf.ET_EXEC))
	binary.LittleEndian.PutUint16(h[18:], uint16(elf.EM_X86_64))
	binary.LittleEndian.PutUint32(h[20:], 1)
	binary.LittleEndian.PutUint16(h[52:], 64) // header size
	p := filepath.Join(t.TempDir(), "mqttgen")
	if err := os.WriteFile(p, h, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := InspectBinary(p); err != nil {
		t.Fatal(err)
	}
	prev := BrokerBinary
	BrokerBinary = func() (string, error) { return p, nil }
	t.Cleanup(func() { BrokerBinary = prev })
}
