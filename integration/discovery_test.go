package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/discovery"
	"github.com/mqttgen/mqttgen/generators"
)

// pahoRetained is run by Debian's python3-paho-mqtt, the client library Home
// Assistant uses: it logs in, subscribes to <prefix>/#, and prints every
// retained message as JSON once its own fence message comes back.
const pahoRetained = `
import json, sys, threading
import paho.mqtt.client as mqtt
host, port, user, pw, prefix = sys.argv[1:6]
fence = prefix + "/mqttgen-test/fence"
got = {}
def on_connect(c, userdata, flags, rc):
    if rc != 0:
        print(json.dumps({"connack": rc})); sys.exit(2)
    c.subscribe(prefix + "/#", qos=1)
def on_subscribe(c, userdata, mid, granted):
    c.publish(fence, "x", qos=1)
def on_message(c, userdata, m):
    if m.topic == fence:
        c.disconnect(); return
    if m.retain:
        got[m.topic] = m.payload.decode()
c = mqtt.Client(client_id="paho-ha-test", protocol=mqtt.MQTTv311)
c.username_pw_set(user, pw)
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
timer = threading.Timer(10, lambda: (print("timeout", file=sys.stderr), c.disconnect()))
timer.daemon = True
timer.start()
c.connect(host, int(port))
c.loop_forever()
print(json.dumps(got))
sys.exit(0)
`

// requirePaho returns Debian's python3 when it has paho, and fails under CI
// when it has not.
func requirePaho(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import paho.mqtt.client").Run(); err != nil {
		msg := "Debian's python3-paho-mqtt is missing (apt-get install python3-paho-mqtt): " + err.Error()
		if ci := os.Getenv("CI"); ci == "true" || ci == "1" {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	}
	return py
}

// haRequired are the keys Home Assistant's MQTT platforms require, per
// component, beside what every mqttgen entity carries.
var haRequired = map[string][]string{
	"sensor":        {"state_topic"},
	"binary_sensor": {"state_topic"},
	"switch":        {"command_topic"},
	"light":         {"command_topic"},
	"cover":         {},
	"button":        {"command_topic"},
	"number":        {"command_topic"},
}

const discoveryHome = `package home

listeners: mqtt: port: 1883
users: {
	hass: preset: "homeassistant"
	z2m: preset: "zigbee2mqtt"
}
homeassistant: user: "hass"
zigbee2mqtt: user: "z2m"
devices: {
	climate: {
		publishes: ["temperature", "humidity"]
		entities: {
			temperature: {component: "sensor", device_class: "temperature", unit: "°C"}
			humidity: {component: "sensor", device_class: "humidity", unit: "%"}
		}
	}
	porch: {
		availability: true
		publishes: ["motion", "state"]
		subscribes: ["set", "press"]
		entities: {
			motion: {component: "binary_sensor", device_class: "motion"}
			lamp: {component: "light", state: "state", command: "set"}
			bell: {component: "button", command: "press"}
		}
	}
}
`

func TestDiscoveryWithPaho(t *testing.T) {
	forEachMosquitto(t, testDiscoveryWithPaho)
}

func testDiscoveryWithPaho(t *testing.T, m mosq) {
	py := requirePaho(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(discoveryHome), 0o644); err != nil {
		t.Fatal(err)
	}
	hm := openHome(t, m, dir)
	hm.render(t)
	startBroker(t, m, "discovery", hm.conf(), hm.addr("mqtt"))
	cfg := hm.H.Config
	prefix := cfg.HomeAssistant.DiscoveryPrefix
	opts := discovery.Options{Broker: "tcp://" + hm.addr("mqtt"), Username: "hass", Password: hm.password(t, "hass"), Timeout: opTimeout}
	climate, porch := prefix+"/device/climate/config", prefix+"/device/porch/config"

	// A config of another program, retained under the same prefix: never touched.
	z2m := connectAs(t, hm, "z2m")
	z2mTopic := prefix + "/sensor/0x00158d0001/temperature/config"
	z2m.publish(t, z2mTopic, `{"unique_id":"0x00158d0001_temperature_zigbee2mqtt","state_topic":"zigbee2mqtt/x"}`, true)

	// What an earlier mqttgen published: one config per component.
	hass := connectAs(t, hm, "hass")
	var old []string
	for _, msg := range generators.DiscoveryMessages(cfg) {
		hass.publish(t, msg.Topic, string(msg.Payload), true)
		old = append(old, msg.Topic)
	}
	slices.Sort(old)

	rep, err := discovery.Publish(opts, prefix, generators.DeviceDiscoveryMessages(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Published, " ") != climate+" "+porch || len(rep.Cleared) != 0 || strings.Join(rep.Migrated, " ") != strings.Join(old, " ") {
		t.Fatalf("published %v, migrated %v, cleared %v; want both devices published and %v migrated", rep.Published, rep.Migrated, rep.Cleared, old)
	}

	got := retainedByPaho(t, py, hm, prefix)
	for _, msg := range generators.DeviceDiscoveryMessages(cfg) {
		payload, ok := got[msg.Topic]
		if !ok {
			t.Errorf("paho did not receive %s retained", msg.Topic)
			continue
		}
		if payload != string(msg.Payload) {
			t.Errorf("%s: paho got %s, want %s", msg.Topic, payload, msg.Payload)
		}
		checkDeviceConfig(t, msg.Topic, payload)
	}
	// Migration kept every unique_id (HA's entity ids follow them) and left
	// no per-component config of mqttgen retained.
	cmps := deviceCmps(t, got[porch])
	for _, id := range []string{"motion", "lamp", "bell"} {
		if cmps[id]["unique_id"] != "mqttgen_porch_"+id {
			t.Errorf("porch %s: unique_id %v, want the per-component config's mqttgen_porch_%s", id, cmps[id]["unique_id"], id)
		}
	}
	if len(got) != 3 || got[z2mTopic] == "" {
		t.Errorf("retained after migration: %v, want the two device configs and the other program's", keys(got))
	}

	// Remove an entity: its cmps entry is reduced to its platform.
	porchDev := cfg.Devices["porch"]
	delete(porchDev.Entities, "bell")
	cfg.Devices["porch"] = porchDev
	rep, err = discovery.Publish(opts, prefix, generators.DeviceDiscoveryMessages(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Removed, ",") != porch+" bell" || len(rep.Cleared) != 0 || len(rep.Migrated) != 0 {
		t.Errorf("removed %v, cleared %v, migrated %v; want only porch's bell removed", rep.Removed, rep.Cleared, rep.Migrated)
	}
	got = retainedByPaho(t, py, hm, prefix)
	cmps = deviceCmps(t, got[porch])
	if len(cmps["bell"]) != 1 || cmps["bell"]["platform"] != "button" {
		t.Errorf("porch's bell: %v, want only {platform: button}", cmps["bell"])
	}
	if cmps["lamp"]["unique_id"] != "mqttgen_porch_lamp" || cmps["motion"]["unique_id"] != "mqttgen_porch_motion" {
		t.Errorf("porch's other entities changed: %v", cmps)
	}

	// Remove a device: its config is emptied, the others' stay.
	delete(cfg.Devices, "climate")
	rep, err = discovery.Publish(opts, prefix, generators.DeviceDiscoveryMessages(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Cleared, " ") != climate || len(rep.Removed) != 0 {
		t.Errorf("cleared %v, removed %v, want %s alone", rep.Cleared, rep.Removed, climate)
	}
	got = retainedByPaho(t, py, hm, prefix)
	if _, ok := got[climate]; ok {
		t.Errorf("%s is still retained after the device was removed", climate)
	}
	if got[z2mTopic] == "" || got[porch] == "" || len(got) != 2 {
		t.Errorf("retained after removal: %v, want porch's and the other program's", keys(got))
	}
}

// deviceCmps reads a device config's cmps.
func deviceCmps(t *testing.T, payload string) map[string]map[string]any {
	t.Helper()
	var c struct {
		Cmps map[string]map[string]any `json:"cmps"`
	}
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		t.Fatalf("device config %q: %v", payload, err)
	}
	return c.Cmps
}

// checkDeviceConfig checks what HA requires of a device config: a device
// with identifiers, an origin with a name, and components each with a
// platform, a unique_id and what its platform needs.
func checkDeviceConfig(t *testing.T, topic, payload string) {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		t.Errorf("%s: not JSON: %v", topic, err)
		return
	}
	if dev, _ := c["device"].(map[string]any); dev == nil || dev["identifiers"] == nil {
		t.Errorf("%s: the device block needs identifiers", topic)
	}
	if o, _ := c["origin"].(map[string]any); o == nil || o["name"] != "mqttgen" {
		t.Errorf("%s: origin with a name is required, got %v", topic, c["origin"])
	}
	if _, ok := c["availability_topic"]; ok && (c["payload_available"] == nil || c["payload_not_available"] == nil) {
		t.Errorf("%s: availability without its payloads", topic)
	}
	cmps, _ := c["cmps"].(map[string]any)
	if len(cmps) == 0 {
		t.Errorf("%s: no cmps", topic)
	}
	for id, raw := range cmps {
		cmp, _ := raw.(map[string]any)
		platform, _ := cmp["platform"].(string)
		required, known := haRequired[platform]
		if !known {
			t.Errorf("%s: cmps.%s: unknown platform %q", topic, id, platform)
		}
		for _, k := range append([]string{"unique_id", "name"}, required...) {
			if _, ok := cmp[k]; !ok {
				t.Errorf("%s: cmps.%s: HA requires %s", topic, id, k)
			}
		}
	}
}

func connectAs(t *testing.T, hm *home, user string) *client {
	t.Helper()
	return mustConnect(t, dial{URL: "tcp://" + hm.addr("mqtt"), User: user, Password: hm.password(t, user)})
}

func retainedByPaho(t *testing.T, py string, hm *home, prefix string) map[string]string {
	t.Helper()
	cmd := exec.Command(py, "-c", pahoRetained, "127.0.0.1", strconv.Itoa(hm.Ports["mqtt"]), "hass", hm.password(t, "hass"), prefix)
	cmd.WaitDelay = 15 * time.Second
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("paho: %v\n%s%s", err, out, stderr)
	}
	got := map[string]string{}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("paho printed %q: %v", out, err)
	}
	return got
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
