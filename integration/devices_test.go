package integration

import (
	"os"
	"path/filepath"
	"testing"

	bundled "github.com/mqttgen/mqttgen/broker"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// devicesHome has one device of each kind.
const devicesHome = `package home

listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #", "read $SYS/#"]
patterns: ["readwrite clients/%c/#"]
devices: {
	node: kind: "esphome"
	plug: {
		kind: "shelly"
		entities: relay: {component: "switch", shelly: "switch:0"}
	}
	bulb: kind: "tasmota"
	lamp: {
		publishes: ["state"]
		subscribes: ["set"]
		availability: true
		entities: lamp: {component: "light", state: "state", command: "set"}
	}
}
`

// firmware is, per device, topics its firmware publishes and receives, and
// topics it must not: its own the other way round, and other devices'.
var firmware = map[string]struct{ pub, noPub, recv, noRecv []string }{
	"node": { // ESPHome, topic_prefix home/node
		pub:    []string{"home/node/sensor/temperature/state", "home/node/climate/heat/mode/state", "home/node/status", "home/node/debug", "homeassistant/sensor/node/temperature/config"},
		noPub:  []string{"home/node/switch/relay/command", "home/node/other", "home/plug/online", "homeassistant/sensor/plug/temperature/config", "homeassistant/status"},
		recv:   []string{"home/node/switch/relay/command", "home/node/climate/heat/mode/command", "homeassistant/status"},
		noRecv: []string{"home/node/sensor/temperature/state", "home/plug/rpc", "home/lamp/set"},
	},
	"plug": { // Shelly Gen2+, topic_prefix home/plug
		pub:    []string{"home/plug/online", "home/plug/events/rpc", "home/plug/status/switch:0", "home/plug/homeassistant/rpc"},
		noPub:  []string{"home/plug/rpc", "home/plug/command", "home/node/status", "home/plug/status/switch:0/x", "homeassistant/switch/plug/relay/config"},
		recv:   []string{"home/plug/rpc", "home/plug/command"},
		noRecv: []string{"home/plug/online", "home/node/switch/relay/command", "home/bulb/cmnd/POWER"},
	},
	"bulb": { // Tasmota, FullTopic home/bulb/%prefix%/
		pub:    []string{"home/bulb/stat/POWER", "home/bulb/tele/LWT", "home/bulb/tele/STATE", "tasmota/discovery/A0B1C2D3E4F5/config"},
		noPub:  []string{"home/bulb/cmnd/POWER", "home/lamp/state", "cmnd/bulb/POWER", "stat/bulb/POWER"},
		recv:   []string{"home/bulb/cmnd/POWER", "home/bulb/cmnd/Backlog"},
		noRecv: []string{"home/bulb/stat/POWER", "home/plug/command", "cmnd/bulb/POWER"},
	},
	"lamp": { // generic
		pub:    []string{"home/lamp/state", "home/lamp/status"},
		noPub:  []string{"home/lamp/set", "home/node/status", "home/lamp/other"},
		recv:   []string{"home/lamp/set"},
		noRecv: []string{"home/lamp/state", "home/node/switch/relay/command"},
	},
}

// TestDeviceKinds: logged in as a device, a client can publish and receive
// exactly its firmware's topics and nothing of another device, on
// Mosquitto 2.0, 2.1 and the bundled broker.
func TestDeviceKinds(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, m mosq) {
		path := filepath.Join(t.TempDir(), "home.cue")
		if err := os.WriteFile(path, []byte(devicesHome), 0o644); err != nil {
			t.Fatal(err)
		}
		hm := openHome(t, m, path)
		hm.render(t)
		if m.name == "bundled" {
			startBundled(t, hm.conf())
		} else {
			startBroker(t, m, "devices", hm.conf(), hm.addr("mqtt"))
		}
		url := "tcp://" + hm.addr("mqtt")
		watch := mustConnect(t, dial{URL: url, User: "admin", Password: hm.password(t, "admin")})
		watch.subscribe(t, "#")
		admin := mustConnect(t, dial{URL: url, User: "admin", Password: hm.password(t, "admin")})

		for _, name := range []string{"node", "plug", "bulb", "lamp"} {
			fw := firmware[name]
			t.Run(name, func(t *testing.T) {
				dev := mustConnect(t, dial{URL: url, User: name, Password: hm.password(t, name), ID: name})
				dev.subscribe(t, "#")
				for _, topic := range fw.pub {
					delivered(t, dev, topic, watch)
				}
				for _, topic := range fw.noPub {
					dropped(t, dev, topic, dev.fenceTopic(), watch)
				}
				for _, topic := range fw.recv {
					delivered(t, admin, topic, dev)
				}
				for _, topic := range fw.noRecv {
					dropped(t, admin, topic, dev.fenceTopic(), dev)
				}
				dev.Disconnect(0)
			})
		}
	}
	forEachMosquitto(t, run)
	t.Run("bundled", func(t *testing.T) { run(t, mosq{name: "bundled"}) })
}

// TestFirmwareTopicsCovered: every filter FirmwareTopics grants is probed
// above (so the probes list the whole grant).
func TestFirmwareTopicsCovered(t *testing.T) {
	hm := openHome(t, mosq{name: "bundled"}, writeHome(t, devicesHome))
	for name, fw := range firmware {
		pub, sub := generators.FirmwareTopics(hm.H.Config, name)
		for _, f := range pub {
			if !anyMatches(f, fw.pub) {
				t.Errorf("%s: publish grant %s is not probed", name, f)
			}
		}
		for _, f := range sub {
			if !anyMatches(f, fw.recv) {
				t.Errorf("%s: read grant %s is not probed", name, f)
			}
		}
	}
}

func anyMatches(filter string, topics []string) bool {
	for _, topic := range topics {
		if matches(filter, topic) {
			return true
		}
	}
	return false
}

func writeHome(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "home.cue")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBundled runs the bundled broker in this process on a rendered
// mosquitto.conf until the test ends.
func startBundled(t *testing.T, path string) {
	t.Helper()
	c, err := conf.Load(path)
	if err != nil {
		t.Fatalf("the bundled broker does not read %s: %v", path, err)
	}
	log := &logBuffer{}
	b, err := bundled.New(c, bundled.Options{Stdout: log, Stderr: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatalf("bundled broker: %v\n%s", err, log.String())
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("bundled broker close: %v", err)
		}
		if t.Failed() {
			t.Logf("log of the bundled broker:\n%s", log.String())
		}
	})
}
