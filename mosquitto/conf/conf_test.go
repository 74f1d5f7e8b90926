package conf_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

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
