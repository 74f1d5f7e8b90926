package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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

	// A config of another program, retained under the same prefix: never touched.
	z2m := connectAs(t, hm, "z2m")
	z2mTopic := prefix + "/sensor/0x00158d0001/temperature/config"
	z2m.publish(t, z2mTopic, `{"unique_id":"0x00158d0001_temperature_zigbee2mqtt","state_topic":"zigbee2mqtt/x"}`, true)

	rep, err := discovery.Publish(opts, prefix, generators.DiscoveryMessages(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Published) != 5 || len(rep.Cleared) != 0 {
		t.Fatalf("published %v, cleared %v", rep.Published, rep.Cleared)
	}

	got := retainedByPaho(t, py, hm, prefix)
	for _, m := range generators.DiscoveryMessages(cfg) {
		payload, ok := got[m.Topic]
		if !ok {
			t.Errorf("paho did not receive %s retained", m.Topic)
			continue
		}
		if payload != string(m.Payload) {
			t.Errorf("%s: paho got %s, want %s", m.Topic, payload, m.Payload)
		}
		checkHAKeys(t, m.Topic, payload)
	}
	if _, ok := got[z2mTopic]; !ok {
		t.Error("the other program's retained config is gone")
	}

	// Remove a device from the home and publish again: its configs are
	// cleared, the others' stay.
	delete(cfg.Devices, "porch")
	rep, err = discovery.Publish(opts, prefix, generators.DiscoveryMessages(cfg))
	if err != nil {
		t.Fatal(err)
	}
	wantCleared := []string{prefix + "/binary_sensor/porch/motion/config", prefix + "/button/porch/bell/config", prefix + "/light/porch/lamp/config"}
	if strings.Join(rep.Cleared, " ") != strings.Join(wantCleared, " ") {
		t.Errorf("cleared %v, want %v", rep.Cleared, wantCleared)
	}
	got = retainedByPaho(t, py, hm, prefix)
	for topic := range got {
		if strings.Contains(topic, "/porch/") {
			t.Errorf("%s is still retained after the device was removed", topic)
		}
	}
	if _, ok := got[z2mTopic]; !ok {
		t.Error("the other program's retained config was cleared")
	}
	if len(got) != 3 {
		t.Errorf("retained after removal: %v, want climate's two and the other program's", keys(got))
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

func checkHAKeys(t *testing.T, topic, payload string) {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		t.Errorf("%s: not JSON: %v", topic, err)
		return
	}
	component := strings.Split(topic, "/")[1]
	required, known := haRequired[component]
	if !known {
		t.Errorf("%s: unknown component %s", topic, component)
	}
	for _, k := range append([]string{"unique_id", "name", "device"}, required...) {
		if _, ok := c[k]; !ok {
			t.Errorf("%s: HA requires %s", topic, k)
		}
	}
	if dev, _ := c["device"].(map[string]any); dev == nil || dev["identifiers"] == nil {
		t.Errorf("%s: the device block needs identifiers", topic)
	}
	if _, ok := c["availability_topic"]; ok && (c["payload_available"] == nil || c["payload_not_available"] == nil) {
		t.Errorf("%s: availability without its payloads", topic)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
