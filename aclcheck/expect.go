package aclcheck

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
)

// Expectation is one thing an account may or may not do: an entry of
// expect:, or one the home's presets and devices bring.
type Expectation struct {
	As       string `json:"as"`
	ClientID string `json:"client_id,omitempty"`
	Write    bool   `json:"write"`
	Topic    string `json:"topic"`
	Allowed  bool   `json:"allowed"`
	// Source is "expect[N]" for the user's, or says which rule of thumb a
	// built-in one follows; Position is where it, or what brought it,
	// stands in home.cue.
	Source   string `json:"source"`
	Position string `json:"position,omitempty"`
	BuiltIn  bool   `json:"built_in"`
}

// Access is "read" or "write".
func (x Expectation) Access() string {
	if x.Write {
		return "write"
	}
	return "read"
}

func (x Expectation) String() string {
	want := "denied"
	if x.Allowed {
		want = "allowed"
	}
	s := fmt.Sprintf("%s %s %s: %s", x.As, x.Access(), x.Topic, want)
	if x.ClientID != "" {
		s = fmt.Sprintf("%s (client id %s) %s %s: %s", x.As, x.ClientID, x.Access(), x.Topic, want)
	}
	return s
}

// Who is the client the expectation is about. Without a client id, an
// account connects with its name.
func (x Expectation) Who() Who {
	id := x.ClientID
	if id == "" && x.As != schema.AnonymousName {
		id = x.As
	}
	return Who{Name: x.As, ClientID: id}
}

// Expectations are the home's own (expect:) followed by the built-in ones.
func (h *Home) Expectations() []Expectation {
	cfg := h.Config
	var out []Expectation
	for i, e := range cfg.Expect {
		topic, write := e.Topic()
		p := schema.Path("expect", i)
		out = append(out, Expectation{As: e.As, ClientID: e.ClientID, Write: write, Topic: topic, Allowed: e.Allowed, Source: p, Position: cfg.Position(p)})
	}
	return append(out, h.BuiltIn()...)
}

// SysProbe is the $SYS topic the built-in expectation about anonymous
// clients names: both engines publish it, retained, as they start.
const SysProbe = "$SYS/broker/version"

// BuiltIn are the expectations a home brings by its presets and devices:
//   - a device writes its own topics and reads its commands (its
//     firmware's layout, for a device kind), and never
//     writes another device's topics (tried on the next device in name
//     order, so that their number grows linearly);
//   - anonymous clients never read $SYS (the broker's clients, versions
//     and load), when a listener admits them;
//   - a homeassistant user reads every entity's state and writes every
//     entity's command topic; a zigbee2mqtt user writes its base topic; a
//     tasmota user reads its commands and writes its state.
func (h *Home) BuiltIn() []Expectation {
	cfg := h.Config
	var out []Expectation
	add := func(as string, write bool, topic string, allowed bool, why, path string) {
		out = append(out, Expectation{As: as, Write: write, Topic: topic, Allowed: allowed, Source: why, Position: cfg.Position(path), BuiltIn: true})
	}
	devices := schema.SortedKeys(cfg.Devices)
	for _, name := range devices {
		path := schema.Path("devices", name)
		pub, sub := generators.FirmwareTopics(cfg, name)
		for _, t := range pub {
			add(name, true, sampleTopic(t), true, "a device writes its own topics", path)
		}
		for _, t := range sub {
			add(name, false, sampleTopic(t), true, "a device reads its own commands", path)
		}
		if len(devices) > 1 {
			// Against the next device in name order only: every device's
			// topics and every device's rules are each tried once, and vet
			// stays linear in the number of devices (all pairs took 100 s
			// for 1,000 devices).
			other := devices[(slices.Index(devices, name)+1)%len(devices)]
			for _, t := range deviceTopics(cfg, other) {
				add(name, true, t, false, "a device never writes another device's topics", path)
			}
		}
	}
	if h.anonymousAllowed() {
		add(schema.AnonymousName, false, SysProbe, false, "anonymous clients never read $SYS", "anonymous")
	}
	for _, user := range schema.SortedKeys(cfg.Users) {
		u := cfg.Users[user]
		path := schema.Path("users", user, "preset")
		switch u.Preset {
		case "homeassistant":
			for _, dev := range devices {
				d := cfg.Devices[dev]
				for _, ent := range schema.SortedKeys(d.Entities) {
					e := d.Entities[ent]
					state, command := generators.DeviceTopic(cfg, dev, e.StateTopic(ent)), ""
					if e.Command != "" {
						command = generators.DeviceTopic(cfg, dev, e.Command)
					}
					if d.Kind == schema.KindShelly {
						// Shelly's layout: a component's status, and RPC requests.
						p := generators.DevicePrefix(cfg, dev)
						state = p + "/status/" + e.Shelly
						if e.Component == "switch" {
							command = p + "/rpc"
						}
					}
					if e.Component != "button" {
						add(user, false, state, true, "Home Assistant reads every entity's state", path)
					}
					if command != "" {
						add(user, true, command, true, "Home Assistant reaches every entity's command topic", path)
					}
				}
			}
			add(user, true, generators.DiscoveryPrefix(cfg)+"/status", true, "Home Assistant announces itself on its discovery prefix", path)
		case "zigbee2mqtt":
			base := "zigbee2mqtt"
			if cfg.Zigbee2MQTT != nil {
				base = cfg.Zigbee2MQTT.BaseTopic
			}
			add(user, true, base+"/bridge/state", true, "Zigbee2MQTT writes its base topic", path)
		case "tasmota":
			add(user, false, "cmnd/"+user+"/POWER", true, "a Tasmota device reads its commands", path)
			add(user, true, "stat/"+user+"/POWER", true, "a Tasmota device writes its state", path)
		}
	}
	return out
}

// deviceTopics are the topics a device's rules name under its own prefix
// (a firmware's shared topics, such as Tasmota's discovery, belong to no
// one device), one topic for each filter.
func deviceTopics(cfg *schema.Config, name string) []string {
	pub, sub := generators.FirmwareTopics(cfg, name)
	prefix := generators.DevicePrefix(cfg, name) + "/"
	var out []string
	for _, t := range append(pub, sub...) {
		if strings.HasPrefix(t, prefix) {
			out = append(out, sampleTopic(t))
		}
	}
	return out
}

// sampleTopic is a topic name the filter matches: a firmware's layouts
// name whole families of topics (ESPHome's <prefix>/+/+/state).
func sampleTopic(filter string) string {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" || l == "#" {
			levels[i] = "probe"
		}
	}
	return strings.Join(levels, "/")
}

// Result is an expectation and what the acl decides.
type Result struct {
	Expectation
	Holds       bool        `json:"holds"`
	Explanation Explanation `json:"explanation"`
}

// Evaluate decides every expectation on the rendered acl.
func (h *Home) Evaluate(xs []Expectation) []Result {
	out := make([]Result, 0, len(xs))
	for _, x := range xs {
		e, err := h.Explain(x.Who(), x.Topic, x.Write)
		if err != nil {
			// vet has refused such an expectation already; say it plainly.
			e = Explanation{As: x.As, Access: x.Access(), Topic: x.Topic, Why: err.Error()}
			out = append(out, Result{Expectation: x, Holds: false, Explanation: e})
			continue
		}
		out = append(out, Result{Expectation: x, Holds: e.Allowed == x.Allowed, Explanation: e})
	}
	return out
}

// Diagnostics are vet's errors for the expectations that do not hold: at
// the expectation (or what brought it), with the decision and its rule.
func (h *Home) Diagnostics(results []Result) schema.Diagnostics {
	var out schema.Diagnostics
	for _, r := range results {
		if r.Holds {
			continue
		}
		path := r.Source
		if r.BuiltIn {
			path = builtInPath(h.Config, r.Expectation)
		}
		d := h.Config.Errorf(path, "%s", Broken(r))
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b schema.Diagnostic) int {
		return cmp.Or(strings.Compare(a.Pos.Filename, b.Pos.Filename), cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return out
}

// Broken says how a result fails its expectation.
func Broken(r Result) string {
	got := "denied"
	if r.Explanation.Allowed {
		got = "allowed"
	}
	s := fmt.Sprintf("%s %s %s is %s", r.As, r.Access(), r.Topic, got)
	if r.BuiltIn {
		s += fmt.Sprintf(" (built-in: %s)", r.Source)
	} else {
		s += fmt.Sprintf(", expected %s", map[bool]string{true: "allowed", false: "denied"}[r.Allowed])
	}
	e := r.Explanation
	switch {
	case e.Rule != nil:
		s += ": " + e.Rule.String()
	case e.Nearest != nil:
		s += ": no rule matches; nearest " + e.Nearest.String() + ": " + e.NearestWhy
	default:
		s += ": " + e.Why
	}
	return s
}

func builtInPath(cfg *schema.Config, x Expectation) string {
	switch {
	case x.As == schema.AnonymousName:
		return "anonymous"
	case hasKey(cfg.Devices, x.As):
		return schema.Path("devices", x.As)
	}
	return schema.Path("users", x.As, "preset")
}
