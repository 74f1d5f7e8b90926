package generators

import (
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
func ACL(cfg *schema.Config) File {
	var everyone, patterns []acl.Rule
	for _, r := range mustRules(cfg.Patterns, true) {
		if strings.Contains(r.Topic, "%u") || strings.Contains(r.Topic, "%c") {
			patterns = append(patterns, r)
		} else {
			everyone = append(everyone, r)
		}
	}
	f := &acl.File{
		Anonymous: append(mustRules(cfg.Anonymous.ACL, false), everyone...),
		Patterns:  patterns,
	}
	for _, a := range cfg.Accounts() {
		rules := append(AccountRules(cfg, a.Name), everyone...)
		if len(rules) > 0 {
			f.Users = append(f.Users, acl.Section{User: a.Name, Rules: rules})
		}
	}
	return File{Path: "config/acl", Mode: secretMode, Data: f.Format()}
}

// AccountRules are the rules of one user or device.
func AccountRules(cfg *schema.Config, name string) []acl.Rule {
	if _, ok := cfg.Devices[name]; ok {
		return deviceRules(cfg, name)
	}
	u := cfg.Users[name]
	return append(PresetRules(cfg, u.Preset, name), mustRules(u.ACL, false)...)
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
