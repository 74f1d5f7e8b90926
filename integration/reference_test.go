package integration

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// The reference home's legacy-panel keeps its password in this file.
const legacyPanelFile = "/run/secrets/legacy-panel"

// referenceHome renders examples/home.cue for loopback: free ports on
// 127.0.0.1, no cloud bridge (there is no network), legacy-panel's password
// served from the test.
func referenceHome(t *testing.T, m mosq) (*home, string) {
	t.Helper()
	legacy := payload("legacy-panel-secret")
	hm := openHome(t, m, "../examples/home.cue")
	delete(hm.H.Config.Bridges, "cloud")
	hm.H.Secrets.ReadFile = fileSecrets(map[string]string{legacyPanelFile: legacy + "\n"})
	hm.render(t)
	return hm, legacy
}

func TestReferenceHome(t *testing.T) {
	t.Parallel()
	forEachMosquitto(t, testReferenceHome)
}

func testReferenceHome(t *testing.T, m mosq) {
	hm, legacy := referenceHome(t, m)
	b := startBroker(t, m, "reference", hm.conf(), hm.addr("mqtt"), hm.addr("mqtts"), hm.addr("websockets"))
	mqttURL := "tcp://" + hm.addr("mqtt")
	as := func(user string) dial { return dial{URL: mqttURL, User: user, Password: hm.password(t, user)} }

	t.Run("startup", func(t *testing.T) {
		log := b.log.String()
		if !b.lineBuffered {
			t.Skip("no stdbuf: the log is read at exit only")
		}
		if !strings.Contains(log, " running") {
			t.Errorf("log does not say the broker runs:\n%s", log)
		}
		for _, name := range []string{"mqtt", "mqtts", "websockets"} {
			if want := fmt.Sprintf("listen socket on port %d", hm.Ports[name]); !strings.Contains(log, want) {
				t.Errorf("log lacks %q for listener %s:\n%s", want, name, log)
			}
		}
		b.checkLog(t)
		if os.Geteuid() == 0 {
			// Started as root, the broker must have dropped to user mosquitto
			// and still read passwd, acl and the key (mode 0600, chowned).
			u, err := user.Lookup(workspace.LocalBrokerUser)
			if err != nil {
				t.Fatal(err)
			}
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(status), "\n") {
				if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] != u.Uid {
					t.Errorf("broker runs as uid %s, want %s (%s)", f[1], u.Uid, u.Username)
				}
			}
		}
	})

	t.Run("determinism", func(t *testing.T) {
		// Same home, same state directory, loaded anew: byte-identical
		// files, also after the broker has run on them.
		h2, err := workspace.Open("../examples/home.cue", hm.H.Secrets.Dir)
		if err != nil {
			t.Fatal(err)
		}
		h2.Config.Listeners = hm.H.Config.Listeners
		delete(h2.Config.Bridges, "cloud")
		h2.Secrets.ReadFile = hm.H.Secrets.ReadFile
		again, err := h2.Render(workspace.RenderOptions{Local: true, Out: hm.Out, Now: time.Now(), Mosquitto: m.bin})
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(hm.Files) {
			t.Fatalf("second render gave %d files, first %d", len(again), len(hm.Files))
		}
		for i, f := range again {
			first := hm.Files[i]
			if f.Path != first.Path || f.Mode != first.Mode || !bytes.Equal(f.Data, first.Data) {
				t.Errorf("%s differs between two renders", f.Path)
			}
			disk, err := os.ReadFile(filepath.Join(hm.Out, filepath.FromSlash(f.Path)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(disk, f.Data) {
				t.Errorf("%s on disk differs from a new render", f.Path)
			}
		}
	})

	t.Run("authentication", func(t *testing.T) {
		accounts := hm.H.Config.Accounts()
		var names []string
		for _, a := range accounts {
			names = append(names, a.Name)
		}
		want := []string{"admin", "exporter", "hall-light", "homeassistant", "legacy-panel", "livingroom-climate", "nodered", "zigbee2mqtt"}
		if !slices.Equal(names, want) {
			t.Errorf("accounts %v, want %v", names, want)
		}
		for _, a := range accounts {
			t.Run("account/"+a.Name, func(t *testing.T) {
				mustConnect(t, as(a.Name))
			})
		}
		t.Run("legacy-panel-password-from-file", func(t *testing.T) {
			if pw := hm.password(t, "legacy-panel"); pw != legacy {
				t.Fatalf("legacy-panel's password is %q, want the file's %q", pw, legacy)
			}
			mustConnect(t, dial{URL: mqttURL, User: "legacy-panel", Password: legacy})
			refusedNotAuthorised(t, dial{URL: mqttURL, User: "legacy-panel", Password: legacy + "x"})
		})
		t.Run("wrong-password", func(t *testing.T) {
			refusedNotAuthorised(t, dial{URL: mqttURL, User: "admin", Password: "wrong"})
			refusedNotAuthorised(t, dial{URL: mqttURL, User: "hall-light", Password: hm.password(t, "admin")})
			refusedNotAuthorised(t, dial{URL: mqttURL, User: "admin", Password: ""})
		})
		t.Run("unknown-user", func(t *testing.T) {
			refusedNotAuthorised(t, dial{URL: mqttURL, User: "nobody", Password: hm.password(t, "admin")})
		})
		t.Run("anonymous", func(t *testing.T) {
			refusedNotAuthorised(t, dial{URL: mqttURL})
			refusedNotAuthorised(t, dial{URL: "ws://" + hm.addr("websockets")})
			refusedNotAuthorised(t, dial{URL: "tls://" + hm.addr("mqtts"), TLS: hm.tlsConfig(t, "mqtt.home.arpa")})
		})
		t.Run("mqtt5", func(t *testing.T) {
			if _, _, err := connect5(t, hm.addr("mqtt"), "admin", hm.password(t, "admin"), "admin-v5"); err != nil {
				t.Fatalf("admin over MQTT 5: %v", err)
			}
			for _, c := range []struct{ user, pw string }{{"admin", "wrong"}, {"nobody", "x"}, {"", ""}} {
				_, ca, err := connect5(t, hm.addr("mqtt"), c.user, c.pw, "refused-v5")
				if err == nil || ca == nil {
					t.Errorf("MQTT 5 as %q: %v, want a CONNACK refusing", c.user, err)
					continue
				}
				if ca.ReasonCode != 0x87 {
					t.Errorf("MQTT 5 as %q: CONNACK reason %#x, want 0x87 not authorized", c.user, ca.ReasonCode)
				}
			}
		})
	})

	t.Run("acl", func(t *testing.T) {
		f := hm.aclFile(t)
		writer := mustConnect(t, as("admin"))
		reader := mustConnect(t, as("admin"))
		reader.subscribe(t, "#", "$SYS/#")
		if !may(f, "admin", writer.id, "any/topic", write) {
			t.Fatal("the checks need admin to write every topic (readwrite #)")
		}

		t.Run("rendered-lines", func(t *testing.T) {
			// Every line of every section of the rendered acl, plus probes
			// outside it, behaves as the file declares.
			for _, s := range f.Users {
				t.Run(s.User, func(t *testing.T) {
					u := mustConnect(t, as(s.User))
					u.subscribe(t, "#")
					var topics []string
					for _, r := range s.Rules {
						topics = append(topics, concrete(r.Topic, u.id, s.User))
					}
					for _, p := range f.Patterns {
						topics = append(topics, concrete(p.Topic, u.id, s.User), concrete(p.Topic, "someone-else", "someone-else"))
					}
					topics = append(topics, "outside/"+s.User+"/x", "$SYS/broker/version", "$SYS/broker/uptime", "$SYS/mqttgen/test")
					if s.User == schema.ProbeUser {
						checkNothing(t, f, u, topics, writer, reader)
						return
					}
					for _, topic := range topics {
						checkAccess(t, f, u, topic, writer, reader)
					}
				})
			}
		})

		t.Run("device-least-privilege", func(t *testing.T) {
			ha := mustConnect(t, as("homeassistant"))
			ha.subscribe(t, "home/#")
			climate := mustConnect(t, as("livingroom-climate"))
			climate.subscribe(t, "home/#", climate.fenceTopic())
			light := mustConnect(t, as("hall-light"))
			light.subscribe(t, "home/#", light.fenceTopic())

			delivered(t, climate, "home/livingroom-climate/temperature", ha)
			delivered(t, climate, "home/livingroom-climate/humidity", ha)
			delivered(t, light, "home/hall-light/state", ha)
			delivered(t, ha, "home/hall-light/set", light)
			// Not another device's topics, not its own undeclared ones.
			dropped(t, climate, "home/hall-light/state", climate.fenceTopic(), reader)
			dropped(t, climate, "home/livingroom-climate/set", climate.fenceTopic(), reader)
			dropped(t, light, "home/hall-light/set", light.fenceTopic(), reader)
			dropped(t, light, "home/livingroom-climate/temperature", light.fenceTopic(), reader)
			// Devices read only what they subscribe to.
			dropped(t, writer, "home/livingroom-climate/temperature", light.fenceTopic(), light)
			dropped(t, writer, "home/hall-light/state", light.fenceTopic(), light)
			dropped(t, writer, "home/livingroom-climate/temperature", climate.fenceTopic(), climate)
		})

		t.Run("client-id-pattern", func(t *testing.T) {
			nodered := mustConnect(t, dial{URL: mqttURL, User: "nodered", Password: hm.password(t, "nodered"), ID: "panel-1"})
			other := mustConnect(t, dial{URL: mqttURL, User: "nodered", Password: hm.password(t, "nodered"), ID: "panel-2"})
			nodered.subscribe(t, "clients/#")
			other.subscribe(t, "clients/#")
			delivered(t, nodered, "clients/panel-1/status", nodered)
			delivered(t, nodered, "clients/panel-1/status", reader)
			delivered(t, writer, "clients/panel-1/cmd", nodered)
			// panel-1 may not write or read panel-2's topics.
			dropped(t, nodered, "clients/panel-2/cmd", "clients/panel-1/fence", reader)
			dropped(t, writer, "clients/panel-2/cmd", "clients/panel-1/fence", nodered)
			delivered(t, writer, "clients/panel-2/cmd", other)
		})

		t.Run("sys", func(t *testing.T) {
			// "#" never delivers $SYS topics, though admin may read them:
			// not even the retained ones a SUBSCRIBE delivers at once.
			admin := mustConnect(t, as("admin"))
			admin.subscribe(t, "#")
			fence := payload("fence")
			writer.publish(t, admin.fenceTopic(), fence, false)
			admin.expectFence(t, fence, func(m msg) bool { return strings.HasPrefix(m.Topic, "$") })
			admin.subscribe(t, "$SYS/broker/uptime")
			admin.expectTopic(t, "$SYS/broker/uptime")
			exporter := mustConnect(t, as("exporter"))
			exporter.subscribe(t, "$SYS/broker/version", "$SYS/broker/uptime")
			exporter.expectTopic(t, "$SYS/broker/version")
			exporter.expectTopic(t, "$SYS/broker/uptime")
			// The pattern "read $SYS/broker/uptime" reaches every account,
			// and nothing else of $SYS does.
			for _, a := range hm.H.Config.Accounts() {
				c := mustConnect(t, as(a.Name))
				c.subscribe(t, "$SYS/broker/uptime")
				c.expectTopic(t, "$SYS/broker/uptime")
				if a.Name == "admin" || a.Name == "exporter" {
					continue
				}
				c.subscribe(t, "$SYS/broker/version", "$SYS/broker/clients/connected", c.fenceTopic())
				f := payload("fence")
				writer.publish(t, c.fenceTopic(), f, false)
				c.expectFence(t, f, func(m msg) bool { return m.Topic != "$SYS/broker/uptime" && strings.HasPrefix(m.Topic, "$SYS") })
			}
			// Publishing to $SYS is refused: dropped over 3.1.1, reason 135
			// over MQTT 5.
			dropped(t, writer, "$SYS/broker/uptime", writer.fenceTopic(), reader)
			dropped(t, writer, "$SYS/mqttgen/test", writer.fenceTopic(), reader)
			v5, _, err := connect5(t, hm.addr("mqtt"), "admin", hm.password(t, "admin"), "admin-sys-v5")
			if err != nil {
				t.Fatal(err)
			}
			if rc := v5.publish5(t, "$SYS/mqttgen/test", "x"); rc != 0x87 {
				t.Errorf("MQTT 5 publish to $SYS: PUBACK reason %#x, want 0x87 not authorized", rc)
			}
		})

		t.Run("mqtt5-denied-publish", func(t *testing.T) {
			v5, _, err := connect5(t, hm.addr("mqtt"), "livingroom-climate", hm.password(t, "livingroom-climate"), "climate-v5")
			if err != nil {
				t.Fatal(err)
			}
			if rc := v5.publish5(t, "home/hall-light/state", "on"); rc != 0x87 {
				t.Errorf("denied MQTT 5 publish: PUBACK reason %#x, want 0x87 not authorized", rc)
			}
			if rc := v5.publish5(t, "home/livingroom-climate/temperature", "21.5"); rc >= 0x80 {
				t.Errorf("allowed MQTT 5 publish: PUBACK reason %#x, want success", rc)
			}
		})
	})

	t.Run("tls", func(t *testing.T) {
		tlsURL := "tls://" + hm.addr("mqtts")
		sub := mustConnect(t, as("admin"))
		sub.subscribe(t, "nodered/#")
		for _, name := range []string{"mqtt.home.arpa", "192.168.1.10"} {
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				cfg := hm.tlsConfig(t, name)
				cfg.MinVersion, cfg.MaxVersion = v, v
				c := mustConnect(t, dial{URL: tlsURL, User: "nodered", Password: hm.password(t, "nodered"), TLS: cfg})
				delivered(t, c, "nodered/tls", sub)
			}
		}
		t.Run("untrusted-ca", func(t *testing.T) {
			_, err := connect(t, dial{URL: tlsURL, User: "nodered", Password: hm.password(t, "nodered"), TLS: &tls.Config{ServerName: "mqtt.home.arpa"}})
			var ua x509.UnknownAuthorityError
			if !errors.As(err, &ua) {
				t.Fatalf("client without the CA: %v, want an unknown authority handshake error", err)
			}
		})
		t.Run("wrong-name", func(t *testing.T) {
			_, err := connect(t, dial{URL: tlsURL, User: "nodered", Password: hm.password(t, "nodered"), TLS: hm.tlsConfig(t, "other.home.arpa")})
			var he x509.HostnameError
			if !errors.As(err, &he) {
				t.Fatalf("client expecting another name: %v, want a hostname error", err)
			}
		})
		t.Run("wrong-password", func(t *testing.T) {
			refusedNotAuthorised(t, dial{URL: tlsURL, User: "nodered", Password: "wrong", TLS: hm.tlsConfig(t, "mqtt.home.arpa")})
		})
		t.Run("plain-mqtt-refused", func(t *testing.T) {
			if c, err := connect(t, dial{URL: "tcp://" + hm.addr("mqtts"), User: "nodered", Password: hm.password(t, "nodered")}); err == nil {
				c.Disconnect(0)
				t.Fatal("plain MQTT connected to the TLS listener")
			}
		})
	})

	t.Run("websockets", func(t *testing.T) {
		wsURL := "ws://" + hm.addr("websockets")
		ws := mustConnect(t, dial{URL: wsURL, User: "nodered", Password: hm.password(t, "nodered")})
		ws.subscribe(t, "nodered/#")
		tcp := mustConnect(t, as("nodered"))
		tcp.subscribe(t, "nodered/#")
		delivered(t, ws, "nodered/ws/out", tcp)
		delivered(t, tcp, "nodered/ws/in", ws)
		// The acl holds over websockets too.
		dropped(t, ws, "home/hall-light/set", ws.fenceTopic(), observer(t, hm, mqttURL))
		refusedNotAuthorised(t, dial{URL: wsURL, User: "nodered", Password: "wrong"})
	})

	// Last: it restarts the broker.
	t.Run("persistence", func(t *testing.T) {
		pw := hm.password(t, "nodered")
		retained := payload("retained")
		queued := payload("queued")
		durable := dial{URL: mqttURL, User: "nodered", Password: pw, ID: "nodered-durable", Durable: true}
		c := mustConnect(t, durable)
		c.subscribe(t, "nodered/queued/#")
		c.Disconnect(100)
		pub := mustConnect(t, as("nodered"))
		pub.publish(t, "nodered/retained", retained, true)
		pub.publish(t, "nodered/queued/1", queued, false)
		pub.Disconnect(100)

		b.restart(t)
		sub := mustConnect(t, as("nodered"))
		sub.subscribe(t, "nodered/retained")
		if m := sub.expect(t, "nodered/retained", retained); !m.Retained {
			t.Errorf("nodered/retained after restart: not flagged retained")
		}
		// The durable session and its queued QoS 1 message survive too.
		mustConnect(t, durable).expect(t, "nodered/queued/1", queued)
	})
}

// observer connects admin subscribed to every topic.
func observer(t *testing.T, hm *home, url string) *client {
	t.Helper()
	c := mustConnect(t, dial{URL: url, User: "admin", Password: hm.password(t, "admin")})
	c.subscribe(t, "#")
	return c
}

// sysRetained are $SYS topics Mosquitto publishes retained from its start.
var sysRetained = map[string]bool{"$SYS/broker/version": true, "$SYS/broker/uptime": true}

// checkAccess checks that client u may read and write topic exactly as the
// acl file says. writer (admin) publishes what u should read; reader (admin,
// subscribed to # and $SYS/#) observes what u publishes. u is subscribed to
// "#" (and, for $ topics, subscribes to the topic here).
func checkAccess(t *testing.T, f *aclFile, u *client, topic string, writer, reader *client) {
	t.Helper()
	canRead := may(f, u.user, u.id, topic, read)
	canWrite := may(f, u.user, u.id, topic, write)
	t.Logf("%s on %s: read %v, write %v", u.user, topic, canRead, canWrite)

	// Read.
	switch {
	case strings.HasPrefix(topic, "$") && !sysRetained[topic]:
		// Nobody can publish there: nothing to read.
	case strings.HasPrefix(topic, "$"):
		// The broker's own retained $SYS messages.
		u.subscribe(t, topic)
		fence := payload("fence")
		writer.publish(t, u.fenceTopic(), fence, false)
		if canRead {
			u.expectTopic(t, topic)
		} else {
			u.expectFence(t, fence, topicIs(topic))
		}
	default:
		p, fence := payload("read"), payload("fence")
		writer.publish(t, topic, p, false)
		writer.publish(t, u.fenceTopic(), fence, false)
		if canRead {
			u.expect(t, topic, p)
		} else {
			u.expectFence(t, fence, payloadIs(p))
		}
	}

	// Write.
	p, fence := payload("write"), payload("fence")
	u.publish(t, topic, p, false)
	u.publish(t, u.fenceTopic(), fence, false)
	if canWrite {
		reader.expect(t, topic, p)
	} else {
		reader.expectFence(t, fence, payloadIs(p))
	}
}

// checkNothing: the healthcheck's login (schema.ProbeUser) may read and
// write nothing, as the rendered acl declares; it cannot be fenced through
// its own session (it reads no fence topic), so the reader, subscribed to
// everything, is the fence: a message the reader received was routed to
// every subscriber in the same pass, and u must not have it 200 ms later.
func checkNothing(t *testing.T, f *aclFile, u *client, topics []string, writer, reader *client) {
	t.Helper()
	for _, topic := range topics {
		if may(f, u.user, u.id, topic, read) || may(f, u.user, u.id, topic, write) {
			t.Errorf("the acl lets %s read or write %s", u.user, topic)
		}
		if strings.HasPrefix(topic, "$") {
			continue // no one publishes there; $SYS reads are the broker's
		}
		p := payload("read")
		writer.publish(t, topic, p, false)
		reader.expect(t, topic, p)
		time.Sleep(200 * time.Millisecond)
	drain:
		for {
			select {
			case m := <-u.msgs:
				t.Errorf("%s received %q on %s", u.user, m.Payload, m.Topic)
			default:
				break drain
			}
		}
		p, fence := payload("write"), payload("fence")
		u.publish(t, topic, p, false) // acked, then dropped
		writer.publish(t, reader.fenceTopic(), fence, false)
		reader.expectFence(t, fence, payloadIs(p))
	}
}
