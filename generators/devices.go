package generators

import (
	"encoding/json"
	"strings"

	"github.com/mqttgen/mqttgen/schema"
)

// DevicePrefix is the root of a device's topics: its topic_prefix, else
// <devices_topic>/<device>. ESPHome's topic_prefix, Shelly's topic_prefix
// and Tasmota's FullTopic (<prefix>/%prefix%/) are set to it.
func DevicePrefix(cfg *schema.Config, device string) string {
	if p := cfg.Devices[device].TopicPrefix; p != "" {
		return p
	}
	return cfg.DevicesTopic + "/" + device
}

// DeviceAvailability is where the device says whether it is online, and
// the two payloads; "" when it does not.
func DeviceAvailability(cfg *schema.Config, device string) (topic, online, offline string) {
	d := cfg.Devices[device]
	p := DevicePrefix(cfg, device)
	switch d.Kind {
	case schema.KindESPHome:
		return p + "/status", "online", "offline"
	case schema.KindShelly:
		return p + "/online", "true", "false"
	case schema.KindTasmota:
		return p + "/tele/LWT", "Online", "Offline"
	}
	if d.Availability {
		return AvailabilityTopic(cfg, device), "online", "offline"
	}
	return "", "", ""
}

// FirmwareTopics are the topic filters the device's firmware publishes
// and subscribes to, from its real topic layout; the device's login may
// use exactly these. They are also what an expectation of the device's
// access (acl explain) starts from.
//   - generic: <prefix>/<name> of publishes (and status with
//     availability) and subscribes;
//   - esphome: states <prefix>/<component>/<object_id>/state (and one
//     level deeper: climate modes, cover positions), status (birth and
//     will), debug (logs); commands <prefix>/<component>/<object_id>/command;
//     its own discovery under <discovery_prefix>/+/<device>/+/config, and
//     <discovery_prefix>/status, which makes it publish discovery again;
//   - shelly (Gen2+): online (its will), events/rpc (notifications),
//     status/<component>:<id> (status_ntf), replies to callers whose src
//     is <prefix>/<caller> (<prefix>/<caller>/rpc); requests on rpc and
//     command;
//   - tasmota (FullTopic <prefix>/%prefix%/): stat/# and tele/# (LWT on
//     tele/LWT), commands on cmnd/#, its own discovery under
//     tasmota/discovery/ (keyed by MAC, which home.cue does not know).
func FirmwareTopics(cfg *schema.Config, device string) (publish, subscribe []string) {
	d := cfg.Devices[device]
	p := DevicePrefix(cfg, device)
	dp := DiscoveryPrefix(cfg)
	switch d.Kind {
	case schema.KindESPHome:
		return []string{p + "/+/+/state", p + "/+/+/+/state", p + "/status", p + "/debug", dp + "/+/" + device + "/+/config"},
			[]string{p + "/+/+/command", p + "/+/+/+/command", dp + "/status"}
	case schema.KindShelly:
		return []string{p + "/online", p + "/+/rpc", p + "/status/+"},
			[]string{p + "/rpc", p + "/command"}
	case schema.KindTasmota:
		return []string{p + "/stat/#", p + "/tele/#", "tasmota/discovery/#"},
			[]string{p + "/cmnd/#"}
	}
	for _, t := range d.Publishes {
		publish = append(publish, DeviceTopic(cfg, device, t))
	}
	if d.Availability {
		publish = append(publish, AvailabilityTopic(cfg, device))
	}
	for _, t := range d.Subscribes {
		subscribe = append(subscribe, DeviceTopic(cfg, device, t))
	}
	return publish, subscribe
}

// shellyComponent is a Shelly entity as HA reads it: the state from the
// component's status notification (<prefix>/status/<component>:<id>), a
// switch's command as an RPC request on <prefix>/rpc (Switch.Set), whose
// reply goes to <prefix>/homeassistant/rpc.
func shellyComponent(cfg *schema.Config, device, name string) map[string]any {
	d := cfg.Devices[device]
	e := d.Entities[name]
	p := DevicePrefix(cfg, device)
	c := map[string]any{
		"unique_id":   UniqueID(device, name),
		"name":        e.Name,
		"state_topic": p + "/status/" + e.Shelly,
	}
	if e.Name == "" {
		c["name"] = strings.ReplaceAll(name, "_", " ")
	}
	if e.DeviceClass != "" {
		c["device_class"] = e.DeviceClass
	}
	if e.Unit != "" {
		c["unit_of_measurement"] = e.Unit
	}
	_, id, _ := strings.Cut(e.Shelly, ":")
	switch e.Component {
	case "switch":
		c["value_template"] = "{{ 'ON' if value_json.output else 'OFF' }}"
		c["state_on"], c["state_off"] = "ON", "OFF"
		c["command_topic"] = p + "/rpc"
		set := func(on bool) string {
			b, _ := json.Marshal(map[string]any{"id": 1, "src": p + "/homeassistant", "method": "Switch.Set",
				"params": map[string]any{"id": json.RawMessage(id), "on": on}})
			return string(b)
		}
		c["payload_on"], c["payload_off"] = set(true), set(false)
	case "binary_sensor":
		c["value_template"] = "{{ 'ON' if value_json.state else 'OFF' }}"
	case "sensor":
		c["value_template"] = "{{ value_json." + schema.ShellySensorFields[e.DeviceClass] + " }}"
		if e.Unit != "" {
			c["state_class"] = "measurement"
		}
	}
	return c
}
