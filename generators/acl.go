package generators

import (
	"fmt"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/schema"
)

// ACL renders the acl file: anonymous rules, patterns, then one section per
// account (presets expanded, then the user's own rules; devices get exactly
// their own topics).
//
// A pattern without %u or %c applies to every client, and Mosquitto warns
// about it; it is written as the same topic rule in the anonymous section and
// in every account's section, which means exactly the same.
//
// The healthcheck's login (schema.ProbeUser, when the inputs hold it) gets
// a section of its own that denies everything, patterns included (a
// client's own deny rules come before patterns): a CONNACK is all the
// probe needs, and a subscription the ACL denies still ends mosquitto_sub
// with status 0 and no log line on Mosquitto 2.0 and 2.1.
func ACL(cfg *schema.Config, in Inputs) (File, error) {
	f := ACLFile(cfg).File
	if in.probe() {
		f.Users = append(f.Users, acl.Section{User: schema.ProbeUser, Rules: []acl.Rule{{Access: acl.Deny, Topic: "#"}, {Access: acl.Deny, Topic: "$SYS/#"}}})
	}
	if err := f.Validate(); err != nil {
		return File{}, fmt.Errorf("acl: %w", err)
	}
	return File{Path: "config/acl", Mode: secretMode, Data: f.Format()}, nil
}

// Origin is where a rendered rule comes from in home.cue: the path of the
// field (users.admin.acl[0], devices.lamp.publishes[1], patterns[0],
// anonymous.acl[2], users.ha.preset) and, for a preset's rule, the preset.
type Origin struct {
	Path   string
	Preset string
}

// SourcedACL is the acl file with the origin of every rule, in the same
// shape as the file: Anonymous[i] is the origin of File.Anonymous[i],
// Patterns[i] of File.Patterns[i], Users[k][j] of File.Users[k].Rules[j].
type SourcedACL struct {
	File      *acl.File
	Anonymous []Origin
	Patterns  []Origin
	Users     [][]Origin
}

// Origin returns the origin of the rule at r.
func (s *SourcedACL) Origin(r acl.Ref) Origin {
	switch {
	case r.Pattern:
		return s.Patterns[r.Index]
	case r.Section < 0:
		return s.Anonymous[r.Index]
	}
	return s.Users[r.Section][r.Index]
}

// ACLFile is what ACL renders, before formatting, with every rule's origin.
func ACLFile(cfg *schema.Config) *SourcedACL {
	var everyone, patterns sourced
	for i, r := range mustRules(cfg.Patterns, true) {
		o := Origin{Path: schema.Path("patterns", i)}
		if strings.Contains(r.Topic, "%u") || strings.Contains(r.Topic, "%c") {
			patterns.add(r, o)
		} else {
			everyone.add(r, o)
		}
	}
	var anon sourced
	for i, r := range mustRules(cfg.Anonymous.ACL, false) {
		anon.add(r, Origin{Path: schema.Path("anonymous", "acl", i)})
	}
	anon.append(everyone)
	s := &SourcedACL{File: &acl.File{Anonymous: anon.rules, Patterns: patterns.rules}, Anonymous: anon.origins, Patterns: patterns.origins}
	for _, a := range cfg.Accounts() {
		own := accountRules(cfg, a.Name)
		own.append(everyone)
		if len(own.rules) > 0 {
			s.File.Users = append(s.File.Users, acl.Section{User: a.Name, Rules: own.rules})
			s.Users = append(s.Users, own.origins)
		}
	}
	return s
}

// sourced is a list of rules and their origins.
type sourced struct {
	rules   []acl.Rule
	origins []Origin
}

func (s *sourced) add(r acl.Rule, o Origin) {
	s.rules = append(s.rules, r)
	s.origins = append(s.origins, o)
}

func (s *sourced) append(o sourced) {
	s.rules = append(s.rules, o.rules...)
	s.origins = append(s.origins, o.origins...)
}

// AccountRules are the rules of one user or device.
func AccountRules(cfg *schema.Config, name string) []acl.Rule {
	return accountRules(cfg, name).rules
}

func accountRules(cfg *schema.Config, name string) sourced {
	var s sourced
	if _, ok := cfg.Devices[name]; ok {
		pub, sub := FirmwareTopics(cfg, name)
		for i, t := range pub {
			s.add(acl.Rule{Access: acl.Write, Topic: t}, deviceOrigin(cfg, name, "publishes", i))
		}
		for i, t := range sub {
			s.add(acl.Rule{Access: acl.Read, Topic: t}, deviceOrigin(cfg, name, "subscribes", i))
		}
		return s
	}
	u := cfg.Users[name]
	for _, r := range PresetRules(cfg, u.Preset, name) {
		s.add(r, Origin{Path: schema.Path("users", name, "preset"), Preset: u.Preset})
	}
	for i, r := range mustRules(u.ACL, false) {
		s.add(r, Origin{Path: schema.Path("users", name, "acl", i)})
	}
	return s
}

// deviceOrigin is where the i-th topic a device publishes or subscribes to
// comes from: its publishes, availability and subscribes for a generic
// device, its kind for a firmware's layout.
func deviceOrigin(cfg *schema.Config, device, field string, i int) Origin {
	d := cfg.Devices[device]
	if d.Kind != "" && d.Kind != schema.KindGeneric {
		return Origin{Path: schema.Path("devices", device, "kind")}
	}
	if field == "publishes" && i >= len(d.Publishes) {
		return Origin{Path: schema.Path("devices", device, "availability")}
	}
	return Origin{Path: schema.Path("devices", device, field, i)}
}

// DeviceTopic is <prefix>/<name>: <devices_topic>/<device>/<name> unless
// the device has a topic_prefix.
func DeviceTopic(cfg *schema.Config, device, name string) string {
	return DevicePrefix(cfg, device) + "/" + name
}

// AvailabilityTopic is where a device with availability says online or
// offline: <devices_topic>/<device>/status, ESPHome's convention.
func AvailabilityTopic(cfg *schema.Config, device string) string {
	return DeviceTopic(cfg, device, "status")
}

// PresetRules are the rules of a preset for the user name, derived from the
// topics the program really uses:
//   - homeassistant reads and writes its discovery prefix (discovery configs,
//     its birth and will on <prefix>/status) and the device topics (states
//     in, commands out: one rule, so adding a device changes no other
//     account's rules), Zigbee2MQTT's base topic when configured, and
//     Tasmota's cmnd/stat/tele and tasmota/discovery when a tasmota user exists;
//   - zigbee2mqtt reads and writes its base topic, and its discovery prefix:
//     it publishes discovery configs there and subscribes to <prefix>/# to
//     clear its own stale ones and to hear <prefix>/status;
//   - nodered reads and writes nodered/# and, as Home Assistant, the device
//     topics, Zigbee2MQTT's and Tasmota's;
//   - tasmota is one Tasmota device whose topic is the user name: it reads
//     cmnd/<name>/#, writes stat/<name>/# and tele/<name>/#, and writes its
//     own discovery under tasmota/discovery/.
func PresetRules(cfg *schema.Config, preset, user string) []acl.Rule {
	var rules []acl.Rule
	add := func(a acl.Access, topic string) { rules = append(rules, acl.Rule{Access: a, Topic: topic}) }
	hub := func() {
		if len(cfg.Devices) > 0 {
			add(acl.ReadWrite, cfg.DevicesTopic+"/#")
		}
		for _, d := range schema.SortedKeys(cfg.Devices) {
			// A topic_prefix outside devices_topic needs a rule of its own.
			if p := DevicePrefix(cfg, d); !strings.HasPrefix(p, cfg.DevicesTopic+"/") {
				add(acl.ReadWrite, p+"/#")
			}
		}
		if cfg.Zigbee2MQTT != nil {
			add(acl.ReadWrite, cfg.Zigbee2MQTT.BaseTopic+"/#")
		}
		if hasTasmotaDevice(cfg) && !hasPreset(cfg, "tasmota") {
			add(acl.Read, "tasmota/discovery/#")
		}
		if hasPreset(cfg, "tasmota") {
			add(acl.Write, "cmnd/#")
			add(acl.Read, "stat/#")
			add(acl.Read, "tele/#")
			add(acl.Read, "tasmota/discovery/#")
		}
	}
	switch preset {
	case "homeassistant":
		add(acl.ReadWrite, DiscoveryPrefix(cfg)+"/#")
		hub()
	case "zigbee2mqtt":
		base := "zigbee2mqtt"
		if cfg.Zigbee2MQTT != nil {
			base = cfg.Zigbee2MQTT.BaseTopic
		}
		add(acl.ReadWrite, base+"/#")
		add(acl.ReadWrite, DiscoveryPrefix(cfg)+"/#")
	case "nodered":
		add(acl.ReadWrite, "nodered/#")
		hub()
	case "tasmota":
		add(acl.Read, "cmnd/"+user+"/#")
		add(acl.Write, "stat/"+user+"/#")
		add(acl.Write, "tele/"+user+"/#")
		add(acl.Write, "tasmota/discovery/#")
	}
	return rules
}

func hasTasmotaDevice(cfg *schema.Config) bool {
	for _, d := range cfg.Devices {
		if d.Kind == schema.KindTasmota {
			return true
		}
	}
	return false
}

func hasPreset(cfg *schema.Config, preset string) bool {
	for _, u := range cfg.Users {
		if u.Preset == preset {
			return true
		}
	}
	return false
}

// DiscoveryPrefix is Home Assistant's discovery prefix.
func DiscoveryPrefix(cfg *schema.Config) string {
	if cfg.HomeAssistant != nil {
		return cfg.HomeAssistant.DiscoveryPrefix
	}
	return "homeassistant"
}

// mustRules parses rules the schema has already checked.
func mustRules(list []string, pattern bool) []acl.Rule {
	out := make([]acl.Rule, 0, len(list))
	for _, s := range list {
		r, err := acl.ParseRule(s, pattern)
		if err != nil {
			panic("generators: unchecked ACL rule " + s + ": " + err.Error())
		}
		out = append(out, r)
	}
	return out
}
