package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/schema"
)

// TestBridge runs two brokers: "cloud" from examples/minimal/home.cue, and
// the reference home whose bridge "cloud" points at it, as admin, without
// TLS. The reference declares homeassistant/# out and commands/# in with
// local_prefix "cloud/".
func TestBridge(t *testing.T) {
	t.Parallel()
	forEachMosquitto(t, testBridge)
}

func testBridge(t *testing.T, m mosq) {

	remote := openHome(t, m, "../examples/minimal/home.cue")
	remote.render(t)
	startBroker(t, m, "cloud", remote.conf(), remote.addr("mqtt"))
	remotePW := remote.password(t, "admin")

	local := openHome(t, m, "../examples/home.cue")
	br, ok := local.H.Config.Bridges["cloud"]
	if !ok {
		t.Fatal("the reference home has no bridge cloud")
	}
	br.Address, br.TLS, br.Username = remote.addr("mqtt"), false, "admin"
	br.Password = &schema.Secret{Env: "CLOUD_MQTT_PASSWORD"}
	local.H.Config.Bridges["cloud"] = br
	local.H.Secrets.Getenv = func(name string) string {
		if name == "CLOUD_MQTT_PASSWORD" {
			return remotePW
		}
		return os.Getenv(name)
	}
	local.H.Secrets.ReadFile = fileSecrets(map[string]string{legacyPanelFile: payload("legacy") + "\n"})
	local.render(t)

	conf, err := os.ReadFile(local.conf())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connection cloud\n", "address " + remote.addr("mqtt") + "\n", "topic homeassistant/# out 1\n", "topic commands/# in 1 cloud/ \"\"\n"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("mosquitto.conf lacks %q", strings.TrimSpace(want))
		}
	}
	startBroker(t, m, "home", local.conf(), local.addr("mqtt"), local.addr("mqtts"), local.addr("websockets"))

	cloud := mustConnect(t, dial{URL: "tcp://" + remote.addr("mqtt"), User: "admin", Password: remotePW})
	cloud.subscribe(t, "#")
	home := mustConnect(t, dial{URL: "tcp://" + local.addr("mqtt"), User: "admin", Password: local.password(t, "admin")})
	home.subscribe(t, "#")

	// The bridge connects on its own: probe until a message crosses.
	waitBridge(t, cloud, "commands/probe", home, "cloud/commands/probe")

	t.Run("in-with-local-prefix", func(t *testing.T) {
		p := payload("in")
		cloud.publish(t, "commands/lights/on", p, false)
		home.expect(t, "cloud/commands/lights/on", p) // and not on commands/lights/on
	})
	t.Run("out", func(t *testing.T) {
		ha := mustConnect(t, dial{URL: "tcp://" + local.addr("mqtt"), User: "homeassistant", Password: local.password(t, "homeassistant")})
		p := payload("out")
		ha.publish(t, "homeassistant/sensor/x/config", p, false)
		cloud.expect(t, "homeassistant/sensor/x/config", p)
	})
	t.Run("not-out", func(t *testing.T) {
		// commands/# is in only, other topics are not bridged: neither
		// reaches the cloud, though the out fence does.
		d1, d2, fence := payload("local-only"), payload("local-only"), payload("fence")
		home.publish(t, "commands/local", d1, false)
		home.publish(t, "nodered/local", d2, false)
		home.publish(t, "homeassistant/fence", fence, false)
		cloud.expectFence(t, fence, func(m msg) bool { return m.Payload == d1 || m.Payload == d2 })
	})
	t.Run("not-in", func(t *testing.T) {
		// homeassistant/# is out only: the cloud's messages there stay in
		// the cloud, though the in fence crosses.
		d, fence := payload("cloud-only"), payload("fence")
		cloud.publish(t, "homeassistant/cloud", d, false)
		cloud.publish(t, "commands/fence", fence, false)
		home.expectFence(t, fence, payloadIs(d))
	})
}

// waitBridge publishes probes on from until one arrives on to (bounded).
func waitBridge(t *testing.T, from *client, topic string, to *client, wantTopic string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	sent := map[string]bool{}
	for time.Now().Before(deadline) {
		p := payload("probe")
		sent[p] = true
		from.publish(t, topic, p, false)
		wait := time.After(200 * time.Millisecond)
	drain:
		for {
			select {
			case m := <-to.msgs:
				if sent[m.Payload] {
					if m.Topic != wantTopic {
						t.Fatalf("bridged probe arrived on %s, want %s", m.Topic, wantTopic)
					}
					return
				}
			case <-wait:
				break drain
			}
		}
	}
	t.Fatalf("the bridge carried no message from %s to %s within %s", topic, wantTopic, startTimeout)
}

// TestBridgeTLS bridges over TLS, as the reference declares (tls: true):
// the cloud broker serves the certificate of its own mqttgen CA, and the
// bridge trusts that CA through ca_file.
func TestBridgeTLS(t *testing.T) {
	t.Parallel()
	forEachMosquitto(t, testBridgeTLS)
}

func testBridgeTLS(t *testing.T, m mosq) {

	remote := openHome(t, m, "../examples/minimal/home.cue")
	port := freePorts(t, 1)[0]
	remote.H.Config.Listeners["mqtts"] = schema.Listener{Port: port, Bind: "127.0.0.1", Protocol: "mqtt", TLS: true}
	remote.Ports["mqtts"] = port
	remote.H.Config.TLS = &schema.TLS{ServerNames: []string{"127.0.0.1"}, MinVersion: "tlsv1.2"}
	remote.render(t)
	startBroker(t, m, "cloud-tls", remote.conf(), remote.addr("mqtt"), remote.addr("mqtts"))
	remotePW := remote.password(t, "admin")

	local := openHome(t, m, "../examples/home.cue")
	br := local.H.Config.Bridges["cloud"]
	br.Address, br.Username = remote.addr("mqtts"), "admin"
	br.CAFile = filepath.Join(remote.Out, "config", "certs", "ca.crt")
	local.H.Config.Bridges["cloud"] = br
	if !br.TLS {
		t.Fatal("the reference bridge no longer uses TLS")
	}
	local.H.Secrets.Getenv = func(name string) string {
		if name == "CLOUD_MQTT_PASSWORD" {
			return remotePW
		}
		return os.Getenv(name)
	}
	local.H.Secrets.ReadFile = fileSecrets(map[string]string{legacyPanelFile: payload("legacy") + "\n"})
	local.render(t)
	conf, err := os.ReadFile(local.conf())
	if err != nil {
		t.Fatal(err)
	}
	if want := "bridge_cafile " + filepath.Join(local.Out, "config", "certs", "bridge-cloud-ca.crt") + "\n"; !strings.Contains(string(conf), want) {
		t.Errorf("mosquitto.conf lacks %q", strings.TrimSpace(want))
	}
	startBroker(t, m, "home-tls", local.conf(), local.addr("mqtt"), local.addr("mqtts"), local.addr("websockets"))

	cloud := mustConnect(t, dial{URL: "tcp://" + remote.addr("mqtt"), User: "admin", Password: remotePW})
	cloud.subscribe(t, "#")
	home := mustConnect(t, dial{URL: "tcp://" + local.addr("mqtt"), User: "admin", Password: local.password(t, "admin")})
	home.subscribe(t, "#")
	waitBridge(t, cloud, "commands/probe", home, "cloud/commands/probe")
	p := payload("out")
	home.publish(t, "homeassistant/tls", p, false)
	cloud.expect(t, "homeassistant/tls", p)
}
