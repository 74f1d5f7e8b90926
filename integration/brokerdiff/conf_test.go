package brokerdiff

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/workspace"
)

// renderConf writes home (a home.cue body) to a temp folder and renders it
// with the real pipeline, as `mqttgen render --local` does.
func renderConf(t *testing.T, home string, env map[string]string) string {
	t.Helper()
	// Not t.TempDir (0700): run as root, rendering checks that the broker's
	// user can enter the folder.
	dir, err := os.MkdirTemp("", "mqttgen-conf-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	for k, v := range env {
		t.Setenv(k, v)
	}
	path := filepath.Join(dir, "home.cue")
	if err := os.WriteFile(path, []byte("package home\n\n"+home), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := workspace.Open(path, filepath.Join(dir, "state"))
	if err != nil {
		t.Fatalf("open home: %v", err)
	}
	out := filepath.Join(dir, "out")
	files, err := h.Render(workspace.RenderOptions{Local: true, Out: out, Now: time.Now()})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if err := workspace.Write(out, files, true); err != nil {
		t.Fatalf("write: %v", err)
	}
	return filepath.Join(out, "config", "mosquitto.conf")
}

// Every kind of home mqttgen renders gives a file the broker reads.
func TestRenderedHomesParse(t *testing.T) {
	homes := map[string]string{
		"minimal": `listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]`,
		"per-listener": `listeners: {
	mqtt: port: 1883
	local: {port: 1884, bind: "127.0.0.1", anonymous: true}
	ws: {port: 9001, protocol: "websockets"}
}
anonymous: acl: ["read public/#"]
users: admin: acl: ["readwrite #"]`,
		"tls-and-limits": `listeners: {
	mqtt: port: 1883
	mqtts: {port: 8883, tls: true}
	wss: {port: 9443, protocol: "websockets", tls: true}
}
tls: {min_version: "tlsv1.3", require_client_certificate: true}
users: admin: acl: ["readwrite #"]
persistence: {enabled: true, autosave_interval: "5m"}
logging: {destinations: ["stdout", "file", "syslog", "topic"], types: ["all"], connection_messages: false, timestamps: false}
limits: {
	max_connections: 10
	max_packet_size: "64KiB"
	max_queued_messages: 5000
	max_inflight_messages: 0
	persistent_client_expiration: "2w"
	max_keepalive: "10m"
}`,
		"bridges": `listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
persistence: enabled: false
bridges: {
	cloud: {
		address: "cloud.example.com:8883"
		tls: true
		protocol: "mqttv50"
		username: "house"
		password: env: "BRIDGE_PW"
		clean_session: true
		topics: [
			{pattern: "a/#", direction: "out", qos: 1},
			{pattern: "b/#", direction: "in", qos: 2, local_prefix: "cloud/"},
			{pattern: "c/#", direction: "both", remote_prefix: "house/"},
		]
	}
	plain: {address: "10.0.0.2:1883", topics: [{pattern: "#"}]}
}`,
	}
	for name, home := range homes {
		t.Run(name, func(t *testing.T) {
			path := renderConf(t, home, map[string]string{"BRIDGE_PW": "secret pw"})
			c, err := conf.Load(path)
			if err != nil {
				data, _ := os.ReadFile(path)
				t.Fatalf("%v\n--- %s\n%s", err, path, data)
			}
			if len(c.Listeners) == 0 {
				t.Fatal("no listeners")
			}
		})
	}
}

func TestRenderedValues(t *testing.T) {
	path := renderConf(t, `listeners: {
	mqtt: {port: 1883, bind: "127.0.0.1"}
	mqtts: {port: 8883, tls: true, anonymous: true}
	ws: {port: 9001, protocol: "websockets"}
}
tls: {min_version: "tlsv1.3", require_client_certificate: true}
anonymous: acl: ["read public/#"]
users: admin: acl: ["readwrite #"]
logging: {destinations: ["stdout", "file"], types: ["error", "subscribe"], connection_messages: false}
limits: {max_connections: 7, max_packet_size: "1KiB", max_queued_messages: 10, max_inflight_messages: 3, persistent_client_expiration: "1y", max_keepalive: "2m"}
bridges: cloud: {address: "cloud.example.com:8883", tls: true, username: "u", password: env: "BRIDGE_PW", topics: [{pattern: "x/#", direction: "in", qos: 1, local_prefix: "cloud/"}]}
`, map[string]string{"BRIDGE_PW": "p w"})
	c, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !c.PerListenerSettings || c.User == "" && os.Geteuid() == 0 {
		t.Errorf("per_listener_settings %v user %q", c.PerListenerSettings, c.User)
	}
	if !c.Persistence || c.PersistenceLocation == "" || c.AutosaveInterval != 30*time.Minute {
		t.Errorf("persistence %v %q %v", c.Persistence, c.PersistenceLocation, c.AutosaveInterval)
	}
	if len(c.LogDest) != 2 || c.LogDest[0].Kind != "stdout" || c.LogDest[1].Kind != "file" || !strings.HasSuffix(c.LogDest[1].Path, "mosquitto.log") {
		t.Errorf("log_dest %+v", c.LogDest)
	}
	if !c.LogTypes.Has("subscribe") || c.LogTypes.Has("information") || c.ConnectionMessages {
		t.Errorf("log types %v, connection messages %v", c.LogTypes, c.ConnectionMessages)
	}
	if c.MaxPacketSize != 1024 || c.MaxQueuedMessages != 10 || c.MaxInflightMessages != 3 || c.MaxKeepalive != 120 || c.PersistentClientExpiration != 365*24*time.Hour {
		t.Errorf("limits %d %d %d %d %v", c.MaxPacketSize, c.MaxQueuedMessages, c.MaxInflightMessages, c.MaxKeepalive, c.PersistentClientExpiration)
	}
	if len(c.Listeners) != 3 {
		t.Fatalf("listeners %d", len(c.Listeners))
	}
	mqtt, mqtts, ws := c.Listeners[0], c.Listeners[1], c.Listeners[2]
	if mqtt.Address() != "127.0.0.1:1883" || mqtt.MaxConnections != 7 || mqtt.TLS() || c.SecurityFor(mqtt).Anonymous() {
		t.Errorf("mqtt %+v", mqtt)
	}
	if !mqtts.TLS() || mqtts.TLSVersion != "tlsv1.3" || !mqtts.RequireCertificate || mqtts.CAFile == "" || !c.SecurityFor(mqtts).Anonymous() {
		t.Errorf("mqtts %+v", mqtts)
	}
	if ws.Protocol != "websockets" || ws.Address() != ":9001" {
		t.Errorf("ws %+v", ws)
	}
	for _, l := range c.Listeners {
		s := c.SecurityFor(l)
		if s.PasswordFile == "" || s.ACLFile == "" {
			t.Errorf("listener %s security %+v", l.ID(), s)
		}
	}
	if len(c.Bridges) != 1 {
		t.Fatalf("bridges %d", len(c.Bridges))
	}
	b := c.Bridges[0]
	if b.Name != "cloud" || b.Addresses[0] != "cloud.example.com:8883" || b.RemotePassword != "p w" || !b.TLS() || b.RemoteUsername != "u" {
		t.Errorf("bridge %+v", b)
	}
	if len(b.Topics) != 1 || b.Topics[0] != (conf.BridgeTopic{Pattern: "x/#", Direction: "in", QoS: 1, LocalPrefix: "cloud/"}) {
		t.Errorf("bridge topics %+v", b.Topics)
	}
}
