package verify

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/aclcheck"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// needMosquitto skips without Debian's Mosquitto, or fails under CI=true.
func needMosquitto(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(MosquittoPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (apt-get install mosquitto): the check against the real broker cannot run", MosquittoPath)
		}
		t.Skipf("%s is not installed", MosquittoPath)
	}
}

// openHome copies a home into a temporary folder, with its own state.
func openHome(t *testing.T, src string) *workspace.Home {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := workspace.Open(dir, filepath.Join(dir, ".mqttgen"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// grid is an expectation for every client, topic and access, each saying
// what explain decides: verify then proves on the real brokers that they
// decide the same. It also returns the home.cue sources of the deciding
// rules and the reasons, to show every kind of rule was exercised.
func grid(t *testing.T, h *aclcheck.Home) (xs []aclcheck.Expectation, sources map[string]bool) {
	sources = map[string]bool{}
	topics := []string{
		"any/thing", "public/news", "public/secret", "home/lamp/set", "home/lamp/state", "home/lamp/status",
		"home/sensor/temperature", "home/sensor/state", "users/viewer/notes", "users/admin/notes",
		"clients/lamp/out", "clients/viewer/out", "cmnd/tasmota1/POWER", "stat/tasmota1/POWER",
		"homeassistant/status", "$SYS/broker/version", "$SYS/broker/uptime",
	}
	names := []string{schema.AnonymousName}
	for _, a := range h.Config.Accounts() {
		names = append(names, a.Name)
	}
	for _, name := range names {
		for _, topic := range topics {
			for _, write := range []bool{false, true} {
				id := name
				if name == schema.AnonymousName {
					id = ""
				}
				e, err := h.Explain(aclcheck.Who{Name: name, ClientID: id}, topic, write)
				if err != nil {
					t.Fatal(err)
				}
				if e.Rule != nil {
					sources[e.Rule.Source] = true
					sources[e.Rule.Line] = true
				} else {
					sources[e.Why] = true
				}
				xs = append(xs, aclcheck.Expectation{As: name, Write: write, Topic: topic, Allowed: e.Allowed, Source: "grid"})
			}
		}
	}
	return xs, sources
}

// TestExplainAgreesWithBrokers proves explain's decisions by real publish
// and subscribe on Mosquitto 2.0.11 and on the bundled broker, for every
// kind of rule: a user's, anonymous, a preset's, a device's, patterns with
// %u and %c, deny, $SYS, '+' and '#'.
func TestExplainAgreesWithBrokers(t *testing.T) {
	needMosquitto(t)
	wh := openHome(t, "testdata/home.cue")
	h := aclcheck.New(wh.Config)
	xs, sources := grid(t, h)
	for _, kind := range []string{
		"users.admin.acl[0]", "users.admin.acl[1]", "anonymous.acl[0]", "anonymous.acl[1]",
		"users.homeassistant.preset", "users.tasmota1.preset", "devices.lamp.publishes[0]", "devices.lamp.subscribes[0]",
		"pattern readwrite users/%u/#", "pattern write clients/%c/out", "topic read home/+/state", "topic deny home/lamp/state",
		"topic readwrite #", "topic read $SYS/#", "no client may publish to $SYS",
	} {
		found := false
		for s := range sources {
			if strings.Contains(s, kind) {
				found = true
			}
		}
		if !found {
			t.Errorf("the grid exercises no %s", kind)
		}
	}
	xs = append(xs, h.Expectations()...)
	pw, err := Passwords(wh)
	if err != nil {
		t.Fatal(err)
	}
	var engines []string
	reports, err := Sandboxes(context.Background(), wh, func(s *Sandbox) Report {
		engines = append(engines, s.Target.Engine)
		return Run(context.Background(), h, pw, s.Target, xs, Options{Settle: 1500 * time.Millisecond})
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(engines, []string{"mosquitto", "mqttgen"}) {
		t.Fatalf("engines %v, want mosquitto and mqttgen", engines)
	}
	for _, r := range reports {
		var pass, skip int
		for _, c := range r.Checks {
			switch c.Result {
			case "pass":
				pass++
			case "skip":
				skip++
				// Only reads nobody may publish to cannot be proved.
				if !strings.HasPrefix(c.What, "read ") {
					t.Errorf("%s: %s %s skipped: %s", r.Engine, c.Account, c.What, c.Detail)
				}
			default:
				t.Errorf("%s: %s %s: %s %s", r.Engine, c.Account, c.What, c.Result, c.Detail)
			}
		}
		t.Logf("%s: %d passed, %d skipped of %d", r.Engine, pass, skip, len(r.Checks))
		if pass < len(xs) {
			t.Errorf("%s: only %d checks passed for %d expectations", r.Engine, pass, len(xs))
		}
	}
}

// TestSandboxReportsWrongExpectations: expectations the acl contradicts
// fail on both engines, each alone, and every other check passes.
func TestSandboxReportsWrongExpectations(t *testing.T) {
	wh := openHome(t, "testdata/home.cue")
	h := aclcheck.New(wh.Config)
	xs := []aclcheck.Expectation{
		{As: "viewer", Write: true, Topic: "home/lamp/set", Allowed: true, Source: "wrong write"},
		{As: "viewer", Topic: "home/lamp/state", Allowed: true, Source: "wrong read"},
		{As: "anonymous", Topic: "public/news", Allowed: false, Source: "wrong anonymous read"},
		{As: "viewer", Topic: "home/sensor/state", Allowed: true, Source: "right"},
	}
	pw, err := Passwords(wh)
	if err != nil {
		t.Fatal(err)
	}
	reports, err := Sandboxes(context.Background(), wh, func(s *Sandbox) Report {
		return Run(context.Background(), h, pw, s.Target, xs, Options{})
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reports {
		var failed []string
		for _, c := range r.Checks {
			if c.Result != "pass" {
				failed = append(failed, c.Source+": "+c.Detail)
			}
		}
		want := []string{
			"wrong write: PUBACK 0x87, received by none of 3 subscriber(s) that may read it; the broker denied it",
			"wrong read: not received; the broker denied it",
			"wrong anonymous read: received; the broker allowed it",
		}
		if !slices.Equal(failed, want) {
			t.Errorf("%s: failed\n%s\nwant\n%s", r.Engine, strings.Join(failed, "\n"), strings.Join(want, "\n"))
		}
		if r.OK() {
			t.Errorf("%s: report OK with failures", r.Engine)
		}
	}
}

// TestSandboxListeners checks every listener of a home with TLS,
// websockets and a per-listener anonymous setting on both engines; a target
// that claims the opposite anonymous setting fails on each listener, and
// one expecting another certificate fails the TLS check.
func TestSandboxListeners(t *testing.T) {
	wh := openHome(t, "testdata/listeners.cue")
	h := aclcheck.New(wh.Config)
	pw, err := Passwords(wh)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Sandboxes(context.Background(), wh, func(s *Sandbox) Report {
		rep := Run(context.Background(), h, pw, s.Target, nil, Options{})
		var got []string
		for _, c := range rep.Checks {
			got = append(got, c.What+" "+c.Result+" "+c.Detail)
		}
		want := []string{
			"anonymous on mqtt pass refused (CONNACK 0x87), as the home says",
			"tls on mqtts pass presents the rendered certificate",
			"anonymous on mqtts pass refused (CONNACK 0x87), as the home says",
			"anonymous on open pass admitted, as the home says",
			"anonymous on ws pass admitted, as the home says",
			"login pass ",
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n%s\nwant\n%s", s.Target.Engine, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		wrong := s.Target
		wrong.Listeners = slices.Clone(wrong.Listeners)
		for i := range wrong.Listeners {
			wrong.Listeners[i].Anonymous = !wrong.Listeners[i].Anonymous
		}
		other, err := os.ReadFile(filepath.Join(wh.Secrets.Dir, "certs", "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		wrong.ServerCert = other // the CA's certificate, not the server's
		var failed int
		for _, c := range Run(context.Background(), h, pw, wrong, nil, Options{}).Checks {
			if c.Result == "FAIL" {
				failed++
			}
		}
		if failed != 5 {
			t.Errorf("%s: %d checks failed against the wrong claims, want 5 (4 listeners, 1 certificate)", s.Target.Engine, failed)
		}
		return rep
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
}
