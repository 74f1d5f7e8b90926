package conf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/workspace"
)

// render writes home (a home.cue body) to a temp folder and renders it
// with the real pipeline, as `mqttgen render --local` does.
func render(t *testing.T, home string, env map[string]string) string {
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
			path := render(t, home, map[string]string{"BRIDGE_PW": "secret pw"})
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
	path := render(t, `listeners: {
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

func TestErrors(t *testing.T) {
	cases := []struct{ name, conf, want string }{
		{"unknown", "listener 1883\nreconnect_delay 5\n", "x.conf:2: option reconnect_delay is not supported"},
		{"unknown plain", "listener 1883\nfoo bar\n", `x.conf:2: unknown option "foo"`},
		{"indented comment", "listener 1883\n  # comment\n", `x.conf:2: unknown option "#"`},
		{"deprecated port", "port 1883\n", "x.conf:1: option port is not supported: deprecated"},
		{"bool", "listener 1883\npersistence yes\n", `x.conf:2: persistence takes true or false, not "yes"`},
		{"packet size", "listener 1883\nmax_packet_size 19\n", "x.conf:2: max_packet_size 19 is below 20"},
		{"expiration seconds", "listener 1883\npersistent_client_expiration 3600s\n", "x.conf:2: persistent_client_expiration: \"3600s\": seconds are refused"},
		{"per listener late", "allow_anonymous false\nper_listener_settings true\nlistener 1883\n", "x.conf:2: per_listener_settings must come before"},
		{"listener option first", "protocol mqtt\nlistener 1883\n", "x.conf:1: protocol is a listener option"},
		{"bridge option alone", "listener 1883\naddress a:1\n", "x.conf:2: address is a bridge option"},
		{"no listener", "allow_anonymous false\n", "x.conf:1: no listener"},
		{"bad protocol", "listener 1883\nprotocol http\n", `x.conf:2: protocol "http" is not mqtt or websockets`},
		{"tls alone", "listener 8883\ncertfile a\n", "x.conf:1: listener 8883: certfile and keyfile go together"},
		{"require cert", "listener 8883\ncertfile a\nkeyfile b\nrequire_certificate true\n", "x.conf:1: listener 8883: require_certificate needs cafile"},
		{"twice", "listener 1883\nmax_queued_messages 1\nmax_queued_messages 2\n", "x.conf:3: max_queued_messages is already set at line 2"},
		{"bridge topic", "listener 1883\nconnection c\naddress h:1\ntopic a/# sideways 1\n", `x.conf:4: topic: direction "sideways" is not in, out or both`},
		{"bridge no topic", "listener 1883\nconnection c\naddress h:1\n", "x.conf:2: bridge c has no topic line"},
		{"port range", "listener 70000\n", `x.conf:1: listener port "70000" is not a number from 1 to 65535`},
		{"security before listener", "per_listener_settings true\nallow_anonymous true\nlistener 1883\n", "x.conf:2: allow_anonymous before any listener"},
		{"persistence no location", "listener 1883\npersistence true\n", "x.conf:1: persistence true needs persistence_location"},
		{"strftime", "listener 1883\nlog_timestamp_format %Q\n", "x.conf:2: log_timestamp_format: \"%Q\": %Q is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := conf.Parse("x.conf", strings.NewReader(c.conf))
			if err == nil {
				t.Fatalf("accepted; want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestPerListenerSecurity(t *testing.T) {
	c, err := conf.Parse("x.conf", strings.NewReader(`per_listener_settings true
listener 1883
allow_anonymous false
password_file /a
listener 1884 127.0.0.1
allow_anonymous true
acl_file /b
`))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.SecurityFor(c.Listeners[0]), c.SecurityFor(c.Listeners[1])
	if a.Anonymous() || a.PasswordFile != "/a" || a.ACLFile != "" {
		t.Errorf("first %+v", a)
	}
	if !b.Anonymous() || b.PasswordFile != "" || b.ACLFile != "/b" {
		t.Errorf("second %+v", b)
	}
}

func TestGlobalSecurityAfterListener(t *testing.T) {
	// Without per_listener_settings, security options anywhere are global.
	c, err := conf.Parse("x.conf", strings.NewReader("listener 1883\nallow_anonymous true\nlistener 1884\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Listeners {
		if !c.SecurityFor(l).Anonymous() {
			t.Errorf("listener %s: anonymous refused", l.ID())
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := conf.Parse("x.conf", strings.NewReader("listener 1883\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Persistence || c.MaxQueuedMessages != 1000 || c.MaxInflightMessages != 20 || c.MaxKeepalive != 65535 ||
		!c.ConnectionMessages || !c.LogTimestamp || c.SecurityFor(c.Listeners[0]).Anonymous() ||
		!c.LogTypes.Has("error") || c.LogTypes.Has("debug") || c.LogDest[0].Kind != "stderr" {
		t.Errorf("defaults %+v", c)
	}
}

func TestStrftime(t *testing.T) {
	tm := time.Date(2024, 3, 5, 7, 8, 9, 0, time.UTC)
	if got := conf.Strftime(tm, "%Y-%m-%dT%H:%M:%S"); got != "2024-03-05T07:08:09" {
		t.Errorf("got %q", got)
	}
	if got := conf.Strftime(tm, "%s %% %j %e"); got != "1709622489 % 065  5" {
		t.Errorf("got %q", got)
	}
}
