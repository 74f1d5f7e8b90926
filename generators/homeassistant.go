package generators

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mqttgen/mqttgen/schema"
)

// Discovery is one Home Assistant MQTT discovery message: a device config
// on <prefix>/device/<device>/config, or (DiscoveryMessages, what mqttgen
// published before device discovery) one entity's on
// <prefix>/<component>/<device>/<entity>/config.
type Discovery struct {
	Topic string
	// Payload is the JSON config HA reads.
	Payload []byte
	// Device names it in home.cue; Entity too for a per-component config.
	Device, Entity string
	// UniqueIDs of the device config's components.
	UniqueIDs []string
}

// discoveryOrigin names mqttgen in every discovery config, as HA requires of device
// discovery.
var discoveryOrigin = map[string]any{"name": "mqttgen", "support_url": "https://github.com/mqttgen/mqttgen"}

// uniqueIDPrefix marks the entities mqttgen declared, so that discovery
// publish can tell its own retained configs from others' when clearing.
const uniqueIDPrefix = "mqttgen_"

// UniqueID is the entity's id in Home Assistant.
func UniqueID(device, entity string) string { return uniqueIDPrefix + device + "_" + entity }

// IsOwnUniqueID reports whether id was made by UniqueID.
func IsOwnUniqueID(id string) bool { return strings.HasPrefix(id, uniqueIDPrefix) }

// DeviceID is the device's identifier in HA's device registry, and its
// discovery object id.
func DeviceID(device string) string { return uniqueIDPrefix + device }

// IsOwnDeviceID reports whether id was made by DeviceID.
func IsOwnDeviceID(id string) bool { return strings.HasPrefix(id, uniqueIDPrefix) }

// entityConfig is the config of one entity as HA's MQTT platforms read it,
// shared by discovery payloads and mqtt.yaml.
func entityConfig(cfg *schema.Config, device, name string) map[string]any {
	d := cfg.Devices[device]
	e := d.Entities[name]
	c := map[string]any{
		"unique_id": UniqueID(device, name),
		"name":      e.Name,
	}
	if e.Name == "" {
		c["name"] = strings.ReplaceAll(name, "_", " ")
	}
	if e.Component != "button" {
		c["state_topic"] = DeviceTopic(cfg, device, e.StateTopic(name))
	}
	if e.Command != "" {
		c["command_topic"] = DeviceTopic(cfg, device, e.Command)
	}
	if e.DeviceClass != "" {
		c["device_class"] = e.DeviceClass
	}
	if e.Unit != "" {
		c["unit_of_measurement"] = e.Unit
	}
	if e.Component == "sensor" && e.Unit != "" {
		// Numbers with a unit: HA keeps long-term statistics of them.
		c["state_class"] = "measurement"
	}
	if d.Availability {
		c["availability_topic"] = AvailabilityTopic(cfg, device)
		c["payload_available"] = "online"
		c["payload_not_available"] = "offline"
	}
	c["device"] = deviceBlock(cfg, device)
	return c
}

func deviceBlock(cfg *schema.Config, device string) map[string]any {
	d := cfg.Devices[device]
	dev := map[string]any{
		"identifiers": []string{DeviceID(device)},
		"name":        device,
	}
	if d.Manufacturer != "" {
		dev["manufacturer"] = d.Manufacturer
	}
	if d.Model != "" {
		dev["model"] = d.Model
	}
	return dev
}

// componentConfig is one entry of a device config's cmps: the entity's
// config without what the device config holds once for all of them
// (device, origin, availability), with its platform and, from entity_id,
// default_entity_id.
func componentConfig(cfg *schema.Config, device, name string) map[string]any {
	d := cfg.Devices[device]
	e := d.Entities[name]
	var c map[string]any
	if d.Kind == schema.KindShelly {
		c = shellyComponent(cfg, device, name)
	} else {
		c = entityConfig(cfg, device, name)
	}
	for _, k := range []string{"device", "availability_topic", "payload_available", "payload_not_available"} {
		delete(c, k)
	}
	c["platform"] = e.Component
	if id := e.DefaultEntityID(); id != "" {
		c["default_entity_id"] = id
	}
	return c
}

// PublishesDiscovery reports whether mqttgen publishes the device's
// discovery: ESPHome and Tasmota publish their own.
func PublishesDiscovery(cfg *schema.Config, device string) bool {
	d := cfg.Devices[device]
	return len(d.Entities) > 0 && (d.Kind == schema.KindGeneric || d.Kind == schema.KindShelly)
}

// DeviceDiscoveryMessages are the device configs of every device whose
// discovery mqttgen publishes, sorted by topic: one retained
// <prefix>/device/<device>/config each, with origin, the device block,
// the shared availability and a cmps entry per entity.
func DeviceDiscoveryMessages(cfg *schema.Config) []Discovery {
	var out []Discovery
	for _, device := range schema.SortedKeys(cfg.Devices) {
		if !PublishesDiscovery(cfg, device) {
			continue
		}
		d := cfg.Devices[device]
		cmps := map[string]any{}
		var ids []string
		for _, name := range schema.SortedKeys(d.Entities) {
			cmps[name] = componentConfig(cfg, device, name)
			ids = append(ids, UniqueID(device, name))
		}
		c := map[string]any{"device": deviceBlock(cfg, device), "origin": discoveryOrigin, "cmps": cmps}
		if topic, on, off := DeviceAvailability(cfg, device); topic != "" {
			c["availability_topic"] = topic
			c["payload_available"] = on
			c["payload_not_available"] = off
		}
		payload, err := json.Marshal(c)
		if err != nil {
			panic(err) // maps of strings cannot fail to marshal
		}
		out = append(out, Discovery{
			Topic:     DiscoveryPrefix(cfg) + "/device/" + device + "/config",
			Payload:   payload,
			Device:    device,
			UniqueIDs: ids,
		})
	}
	return out
}

// DiscoveryMessages are the per-component discovery configs mqttgen
// published before device discovery, sorted by topic: discovery publish
// migrates them, and tests publish them to prove it.
func DiscoveryMessages(cfg *schema.Config) []Discovery {
	var out []Discovery
	for _, device := range schema.SortedKeys(cfg.Devices) {
		if cfg.Devices[device].Kind != schema.KindGeneric {
			continue
		}
		for _, name := range schema.SortedKeys(cfg.Devices[device].Entities) {
			c := entityConfig(cfg, device, name)
			c["origin"] = discoveryOrigin
			payload, err := json.Marshal(c)
			if err != nil {
				panic(err) // maps of strings cannot fail to marshal
			}
			component := cfg.Devices[device].Entities[name].Component
			out = append(out, Discovery{
				Topic:   DiscoveryPrefix(cfg) + "/" + component + "/" + device + "/" + name + "/config",
				Payload: payload,
				Device:  device,
				Entity:  name,
			})
		}
	}
	return out
}

// HomeAssistantFiles are the device discovery payloads as files
// (homeassistant/discovery/device/<device>.json) and
// homeassistant/mqtt.yaml for users who declare entities in YAML.
func HomeAssistantFiles(cfg *schema.Config, _ Inputs) ([]File, error) {
	msgs := DeviceDiscoveryMessages(cfg)
	if len(msgs) == 0 {
		return nil, nil
	}
	for _, device := range schema.SortedKeys(cfg.Devices) {
		for _, name := range schema.SortedKeys(cfg.Devices[device].Entities) {
			if err := CheckYAML(entityConfig(cfg, device, name)); err != nil {
				return nil, fmt.Errorf("Home Assistant entity %s of %s: %w", name, device, err)
			}
		}
	}
	var out []File
	for _, m := range msgs {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, m.Payload, "", "  ")
		pretty.WriteByte('\n')
		out = append(out, File{
			Path: "homeassistant/discovery/device/" + m.Device + ".json",
			Mode: publicMode,
			Data: pretty.Bytes(),
		})
	}
	return append(out, File{Path: "homeassistant/mqtt.yaml", Mode: publicMode, Data: mqttYAML(cfg)}), nil
}

// mqttYAML is HA's `mqtt:` key in its current list form: one `- sensor:`
// item per entity. Never the `mqtt: broker:` keys HA removed in 2023.4.
func mqttYAML(cfg *schema.Config) []byte {
	var items []map[string]any
	for _, device := range schema.SortedKeys(cfg.Devices) {
		if !PublishesDiscovery(cfg, device) {
			continue
		}
		for _, name := range schema.SortedKeys(cfg.Devices[device].Entities) {
			component := cfg.Devices[device].Entities[name].Component
			c := entityConfig(cfg, device, name)
			if cfg.Devices[device].Kind == schema.KindShelly {
				c = shellyComponent(cfg, device, name)
				c["device"] = deviceBlock(cfg, device)
				topic, on, off := DeviceAvailability(cfg, device)
				c["availability_topic"], c["payload_available"], c["payload_not_available"] = topic, on, off
			}
			items = append(items, map[string]any{component: c})
		}
	}
	var b bytes.Buffer
	b.WriteString("# Generated by mqttgen: Home Assistant entities in YAML, for configuration.yaml\n")
	b.WriteString("# (or `mqtt: !include mqtt.yaml` without the top key). Use this or MQTT discovery\n")
	b.WriteString("# (`mqttgen discovery publish`), not both: the unique_ids would clash.\n")
	b.WriteString("# The broker itself is set up in HA's UI: `mqttgen secrets bundle homeassistant`.\n")
	writeMQTTList(&b, items)
	return b.Bytes()
}

// writeMQTTList writes items as the YAML `mqtt:` list, byte for byte what
// encoding {mqtt: items} writes. Each entity is encoded on its own and
// indented: yaml.v3's emitter keeps every event of a document until its
// end, and for 1,000 devices copying that queue as it grew was a quarter
// of `plan`'s time.
func writeMQTTList(b *bytes.Buffer, items []map[string]any) {
	if len(items) == 0 {
		b.WriteString("mqtt: []\n")
		return
	}
	b.WriteString("mqtt:\n")
	var item bytes.Buffer
	for _, it := range items {
		item.Reset()
		enc := yaml.NewEncoder(&item)
		enc.SetIndent(2)
		if err := enc.Encode([]any{it}); err != nil {
			panic(err)
		}
		for line := range bytes.Lines(item.Bytes()) {
			if len(line) > 1 {
				b.WriteString("  ")
			}
			b.Write(line)
		}
	}
}
