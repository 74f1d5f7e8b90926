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
	if d, ok := cfg.Devices[name]; ok {
		var rules []acl.Rule
		for _, t := range d.Publishes {
			rules = append(rules, acl.Rule{Access: acl.Write, Topic: DeviceTopic(cfg, name, t)})
		}
		for _, t := range d.Subscribes {
			rules = append(rules, acl.Rule{Access: acl.Read, Topic: DeviceTopic(cfg, name, t)})
		}
		return rules
	}
	u := cfg.Users[name]
	return append(PresetRules(cfg, u.Preset), mustRules(u.ACL, false)...)
}

// DeviceTopic is <devices_topic>/<device>/<name>.
func DeviceTopic(cfg *schema.Config, device, name string) string {
	return cfg.DevicesTopic + "/" + device + "/" + name
}

// PresetRules are the rules of a preset, derived from the topics the program
// really uses:
//   - homeassistant reads and writes its discovery prefix (discovery configs,
//     its birth and will on <prefix>/status), reads every device topic and
//     writes the devices' command topics, and reads and writes Zigbee2MQTT's
//     base topic (states, <base>/<device>/set, bridge availability);
//   - zigbee2mqtt reads and writes its base topic, and its discovery prefix:
//     it publishes discovery configs there and subscribes to <prefix>/# to
//     clear its own stale ones and to hear <prefix>/status;
//   - nodered reads and writes nodered/#, reads every device topic and
//     writes their command topics, and reads and writes Zigbee2MQTT's.
func PresetRules(cfg *schema.Config, preset string) []acl.Rule {
	var rules []acl.Rule
	add := func(a acl.Access, topic string) { rules = append(rules, acl.Rule{Access: a, Topic: topic}) }
	devices := func() {
		if len(cfg.Devices) == 0 {
			return
		}
		add(acl.Read, cfg.DevicesTopic+"/#")
		for _, name := range schema.SortedKeys(cfg.Devices) {
			for _, t := range cfg.Devices[name].Subscribes {
				add(acl.Write, DeviceTopic(cfg, name, t))
			}
		}
	}
	z2m := func() {
		if cfg.Zigbee2MQTT != nil {
			add(acl.ReadWrite, cfg.Zigbee2MQTT.BaseTopic+"/#")
		}
	}
	switch preset {
	case "homeassistant":
		add(acl.ReadWrite, discoveryPrefix(cfg)+"/#")
		devices()
		z2m()
	case "zigbee2mqtt":
		base := "zigbee2mqtt"
		if cfg.Zigbee2MQTT != nil {
			base = cfg.Zigbee2MQTT.BaseTopic
		}
		add(acl.ReadWrite, base+"/#")
		add(acl.ReadWrite, discoveryPrefix(cfg)+"/#")
	case "nodered":
		add(acl.ReadWrite, "nodered/#")
		devices()
		z2m()
	}
	return rules
}

func discoveryPrefix(cfg *schema.Config) string {
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
