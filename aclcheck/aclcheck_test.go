package aclcheck

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/schema"
)

func load(t *testing.T, src string) *Home {
	t.Helper()
	cfg, diags := schema.LoadSource("home.cue", []byte(src))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	return New(cfg)
}

func testHome(t *testing.T) *Home {
	src, err := os.ReadFile("testdata/home.cue")
	if err != nil {
		t.Fatal(err)
	}
	return load(t, string(src))
}

// TestExplain covers every kind of rule: a user's, anonymous, a preset's, a
// device's, patterns with %u and %c, deny, $SYS, '+' and '#'. Each names
// the rule, its line in the rendered acl (testdata/home.cue renders the
// acl whose lines are cited) and its place in home.cue.
func TestExplain(t *testing.T) {
	h := testHome(t)
	tests := []struct {
		who      Who
		topic    string
		write    bool
		allowed  bool
		rule     string
		aclLine  int
		source   string
		position string
		preset   string
	}{
		{Who{Name: "admin", ClientID: "admin"}, "any/thing", true, true, "topic readwrite #", 13, "users.admin.acl[0]", "home.cue:9:15", ""},
		{Who{Name: "admin", ClientID: "admin"}, "$SYS/broker/load", false, true, "topic read $SYS/#", 14, "users.admin.acl[1]", "home.cue:9:30", ""},
		{Who{Name: "anonymous"}, "public/news", false, true, "topic read public/#", 4, "anonymous.acl[0]", "home.cue:7:18", ""},
		{Who{Name: "anonymous"}, "public/secret", false, false, "topic deny public/secret", 5, "anonymous.acl[1]", "home.cue:7:35", ""},
		{Who{Name: "homeassistant", ClientID: "ha"}, "home/lamp/set", true, true, "topic readwrite home/#", 19, "users.homeassistant.preset", "home.cue:10:17", "homeassistant"},
		{Who{Name: "tasmota1", ClientID: "t"}, "stat/tasmota1/POWER", true, true, "topic write stat/tasmota1/#", 38, "users.tasmota1.preset", "home.cue:12:12", "tasmota"},
		{Who{Name: "lamp", ClientID: "lamp"}, "home/lamp/status", true, true, "topic write home/lamp/status", 28, "devices.lamp.availability", "home.cue:19:3", ""},
		{Who{Name: "viewer", ClientID: "v"}, "home/sensor/state", false, true, "topic read home/+/state", 44, "users.viewer.acl[0]", "home.cue:11:16", ""},
		{Who{Name: "viewer", ClientID: "v"}, "home/lamp/state", false, false, "topic deny home/lamp/state", 45, "users.viewer.acl[1]", "home.cue:11:37", ""},
		{Who{Name: "viewer", ClientID: "v"}, "users/viewer/notes", true, true, "pattern readwrite users/%u/#", 9, "patterns[0]", "home.cue:14:12", ""},
		{Who{Name: "lamp", ClientID: "lamp"}, "clients/lamp/out", true, true, "pattern write clients/%c/out", 10, "patterns[1]", "home.cue:14:36", ""},
		{Who{Name: "viewer", ClientID: "v"}, "$SYS/broker/uptime", false, true, "topic read $SYS/broker/uptime", 46, "patterns[2]", "home.cue:14:60", ""},
	}
	for _, tt := range tests {
		e, err := h.Explain(tt.who, tt.topic, tt.write)
		if err != nil {
			t.Fatal(err)
		}
		if e.Allowed != tt.allowed || e.Rule == nil {
			t.Errorf("%s %s: allowed %v rule %v (%s), want %v by %s", tt.who.Name, tt.topic, e.Allowed, e.Rule, e.Why, tt.allowed, tt.rule)
			continue
		}
		r := *e.Rule
		if r.Line != tt.rule || r.ACLLine != tt.aclLine || r.Source != tt.source || r.Position != tt.position || r.Preset != tt.preset {
			t.Errorf("%s %s: rule %+v\nwant %q line %d from %s at %s (preset %q)", tt.who.Name, tt.topic, r, tt.rule, tt.aclLine, tt.source, tt.position, tt.preset)
		}
	}
}

func TestExplainDenials(t *testing.T) {
	h := testHome(t)
	tests := []struct {
		who     Who
		topic   string
		write   bool
		why     string
		nearest string
		misses  string
	}{
		// '#' does not cover $SYS, and no client publishes there.
		{Who{Name: "admin", ClientID: "admin"}, "$SYS/broker/x", true, "no client may publish to $SYS", "", ""},
		// A pattern with %c for another client id.
		{Who{Name: "lamp", ClientID: "lamp"}, "clients/other/out", true, "no rule matches", "pattern write clients/%c/out", "shares 1 leading level"},
		// The rule matches but grants the other access.
		{Who{Name: "lamp", ClientID: "lamp"}, "home/lamp/set", true, "no rule matches", "topic read home/lamp/set", "grants read, not write"},
		// Another device's topic.
		{Who{Name: "sensor", ClientID: "sensor"}, "home/lamp/set", true, "no rule matches", "topic write home/sensor/temperature", "shares 1 leading level"},
		// A deny of the user's own wins over the pattern that grants.
		{Who{Name: "viewer", ClientID: "v"}, "home/lamp/state", false, "deny home/lamp/state matches", "", ""},
	}
	for _, tt := range tests {
		e, err := h.Explain(tt.who, tt.topic, tt.write)
		if err != nil {
			t.Fatal(err)
		}
		if e.Allowed || !strings.Contains(e.Why, tt.why) {
			t.Errorf("%s %s: allowed %v, why %q; want denied, %q", tt.who.Name, tt.topic, e.Allowed, e.Why, tt.why)
		}
		switch {
		case tt.nearest == "" && e.Nearest != nil:
			t.Errorf("%s %s: nearest %v, want none", tt.who.Name, tt.topic, e.Nearest)
		case tt.nearest != "" && (e.Nearest == nil || e.Nearest.Line != tt.nearest || !strings.Contains(e.NearestWhy, tt.misses)):
			t.Errorf("%s %s: nearest %v (%s), want %s (%s)", tt.who.Name, tt.topic, e.Nearest, e.NearestWhy, tt.nearest, tt.misses)
		}
	}
	if _, err := h.Explain(Who{Name: "nobody"}, "a", false); err == nil {
		t.Error("an unknown account was explained")
	}
	if _, err := h.Explain(Who{Name: "admin"}, "a/+", false); err == nil {
		t.Error("a filter was explained as a topic")
	}
	h = load(t, "package home\nlisteners: mqtt: port: 1883\nusers: admin: acl: [\"readwrite #\"]\n")
	e, _ := h.Explain(Who{Name: "admin"}, "$SYS/broker/version", false)
	if e.Allowed || e.Nearest == nil || !strings.Contains(e.NearestWhy, "never matches a '$' topic") {
		t.Errorf("# and $SYS: %+v", e)
	}
}

func TestWho(t *testing.T) {
	h := testHome(t)
	list, err := h.Who("home/lamp/set", true, "")
	if err != nil {
		t.Fatal(err)
	}
	var allowed []string
	for _, a := range list {
		if a.Allowed {
			allowed = append(allowed, a.As+" "+a.Rule.Source)
		}
	}
	if got := strings.Join(allowed, ", "); got != "admin users.admin.acl[0], homeassistant users.homeassistant.preset" {
		t.Errorf("who may write home/lamp/set: %s", got)
	}
	list, _ = h.Who("public/news", false, "")
	last := list[len(list)-1]
	if list[0].As != "admin" || !list[0].Allowed || !(list[1].As == "anonymous" && list[1].Allowed) || last.Allowed {
		t.Errorf("who may read public/news: %+v", list)
	}
}

func TestExpectations(t *testing.T) {
	h := testHome(t)
	results := h.Evaluate(h.Expectations())
	if d := h.Diagnostics(results); len(d) > 0 {
		t.Fatal(d)
	}
	var builtin []string
	for _, r := range results {
		if r.BuiltIn {
			builtin = append(builtin, r.String())
		}
	}
	for _, want := range []string{
		"sensor write home/lamp/set: denied",
		"lamp write home/sensor/temperature: denied",
		"anonymous read $SYS/broker/version: denied",
		"homeassistant write home/lamp/set: allowed",
		"homeassistant read home/sensor/temperature: allowed",
		"lamp read home/lamp/set: allowed",
	} {
		if !strings.Contains(strings.Join(builtin, "\n"), want) {
			t.Errorf("no built-in expectation %q in\n%s", want, strings.Join(builtin, "\n"))
		}
	}
}

// A wrong expectation fails vet at its position with the deciding rule; a
// device given another device's topic breaks a built-in one.
func TestBrokenExpectations(t *testing.T) {
	h := load(t, `package home

listeners: mqtt: port: 1883
users: viewer: acl: ["read home/#"]
devices: {
	lamp: {publishes: ["state"], entities: state: {component: "sensor"}}
	sensor: {publishes: ["state"], entities: state: {component: "sensor"}}
}
patterns: ["write home/+/state"]
expect: [
	{as: "viewer", write: "home/lamp/set", allowed: true},
	{as: "viewer", read: "home/lamp/state", allowed: false},
]
`)
	got := h.Diagnostics(h.Evaluate(h.Expectations())).Error()
	want := `home.cue:6:2: devices.lamp: lamp write home/sensor/state is allowed (built-in: a device never writes another device's topics): acl line 8 "topic write home/+/state", from patterns[0] at home.cue:9:12
home.cue:7:2: devices.sensor: sensor write home/lamp/state is allowed (built-in: a device never writes another device's topics): acl line 12 "topic write home/+/state", from patterns[0] at home.cue:9:12
home.cue:11:2: expect[0]: viewer write home/lamp/set is denied, expected allowed: no rule matches; nearest acl line 15 "topic read home/#", from users.viewer.acl[0] at home.cue:4:22: it matches the topic but grants read, not write
home.cue:12:2: expect[1]: viewer read home/lamp/state is allowed, expected denied: acl line 15 "topic read home/#", from users.viewer.acl[0] at home.cue:4:22`
	if got != want {
		t.Errorf("diagnostics:\n%s\nwant\n%s", got, want)
	}
}

func TestMatrix(t *testing.T) {
	h := testHome(t)
	m := h.Matrix()
	cell := func(as, root string) string {
		for _, r := range m.Rows {
			for i, c := range r.Cells {
				if r.As == as && m.Roots[i] == root {
					return c.Short()
				}
			}
		}
		t.Fatalf("no cell %s %s in %v", as, root, m.Roots)
		return ""
	}
	for _, tt := range []struct{ as, root, want string }{
		{"admin", "home/lamp", "RW"},
		{"admin", "$SYS", "R-"},
		{"lamp", "home/lamp", "rw"},
		{"lamp", "home/sensor", "--"},
		{"sensor", "home/sensor", "-W"},
		{"viewer", "home/lamp", "--"},
		{"viewer", "home/sensor", "--"},
		{"homeassistant", "home/lamp", "RW"},
		{"anonymous", "public", "r-"}, {"tasmota1", "tasmota", "-W"},
		{"tasmota1", "cmnd", "r-"},
	} {
		if got := cell(tt.as, tt.root); got != tt.want {
			t.Errorf("%s under %s: %s, want %s", tt.as, tt.root, got, tt.want)
		}
	}
	var b bytes.Buffer
	if err := m.WriteHTML(&b, "t"); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, "<script") || strings.Contains(s, "http") || !strings.Contains(s, `data-as="lamp" data-root="home/lamp" data-access="read (some) write (some)"`) {
		t.Errorf("page:\n%s", s)
	}
}
