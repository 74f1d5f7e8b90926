package integration

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// anonymousHome admits anonymous clients with rules of their own, on every
// listener but "locked". "everything" may read and write every topic, which
// never covers $SYS; "plain" has no rules and gets only the patterns.
const anonymousHome = `package home

broker: hostname: "mqtt.test.arpa"

listeners: {
	mqtt: port: 1883
	locked: {port: 1884, anonymous: false}
	mqtts: {port: 8883, tls: true}
}

tls: {
	server_names: ["mqtt.test.arpa"]
	min_version:  "tlsv1.3"
}

anonymous: {
	allowed: true
	acl: ["read public/#", "write inbox/#", "readwrite shared/#", "deny shared/private/#"]
}

users: {
	everything: acl: ["readwrite #"]
	plain: {}
}

patterns: ["readwrite clients/%c/#", "readwrite users/%u/#"]
`

func TestAnonymousHome(t *testing.T) {
	t.Parallel()
	forEachMosquitto(t, testAnonymousHome)
}

func testAnonymousHome(t *testing.T, m mosq) {
	path := filepath.Join(t.TempDir(), "home.cue")
	if err := os.WriteFile(path, []byte(anonymousHome), 0o644); err != nil {
		t.Fatal(err)
	}
	hm := openHome(t, m, path)
	hm.render(t)
	startBroker(t, m, "anonymous", hm.conf(), hm.addr("mqtt"), hm.addr("locked"), hm.addr("mqtts"))
	f := hm.aclFile(t)
	url := "tcp://" + hm.addr("mqtt")

	everything := mustConnect(t, dial{URL: url, User: "everything", Password: hm.password(t, "everything")})
	everything.subscribe(t, "#")
	watch := mustConnect(t, dial{URL: url, User: "everything", Password: hm.password(t, "everything")})
	watch.subscribe(t, "#", "$SYS/#")

	t.Run("anonymous-rules", func(t *testing.T) {
		anon := mustConnect(t, dial{URL: url, ID: "anon-1"})
		anon.subscribe(t, "#")
		// The rendered anonymous section is exactly anonymous.acl.
		want := []rule{{read, "public/#"}, {write, "inbox/#"}, {readwrite, "shared/#"}, {deny, "shared/private/#"}}
		if len(f.Anonymous) != len(want) {
			t.Fatalf("anonymous section %v, want %v", f.Anonymous, want)
		}
		for i := range want {
			if f.Anonymous[i] != want[i] {
				t.Errorf("anonymous rule %d: %v, want %v", i, f.Anonymous[i], want[i])
			}
		}
		cases := []struct {
			topic             string
			canRead, canWrite bool
		}{
			{"public/news", true, false},
			{"inbox/anon", false, true},
			{"shared/notes", true, true},
			{"shared/private/x", false, false}, // deny wins over readwrite shared/#
			{"clients/anon-1/x", true, true},   // %c patterns apply to anonymous clients
			{"clients/anon-2/x", false, false},
			{"users/anon-1/x", false, false}, // %u patterns never do
			{"users/x", false, false},
			{"private/x", false, false},
		}
		for _, c := range cases {
			if r, w := may(f, "", anon.id, c.topic, read), may(f, "", anon.id, c.topic, write); r != c.canRead || w != c.canWrite {
				t.Errorf("the rendered acl gives anonymous read %v write %v on %s, want read %v write %v", r, w, c.topic, c.canRead, c.canWrite)
			}
			checkAccess(t, f, anon, c.topic, everything, watch)
		}
		// Nothing of $SYS, though a user has it nowhere either.
		checkAccess(t, f, anon, "$SYS/broker/version", everything, watch)
	})

	t.Run("users-do-not-get-anonymous-rules", func(t *testing.T) {
		plain := mustConnect(t, dial{URL: url, User: "plain", Password: hm.password(t, "plain")})
		plain.subscribe(t, "#")
		for _, topic := range []string{"public/news", "inbox/x", "shared/notes", "users/plain/x", "users/other/x", "clients/" + plain.id + "/x", "clients/other/x"} {
			checkAccess(t, f, plain, topic, everything, watch)
		}
		if !may(f, "plain", plain.id, "users/plain/x", write) || may(f, "plain", plain.id, "public/news", read) {
			t.Errorf("rendered acl: plain should have users/plain/# by pattern and no anonymous rule")
		}
	})

	t.Run("readwrite-hash-never-covers-sys", func(t *testing.T) {
		u := mustConnect(t, dial{URL: url, User: "everything", Password: hm.password(t, "everything")})
		// Asked for by name, $SYS is still not delivered: "#" in the acl
		// does not match $ topics.
		u.subscribe(t, "$SYS/#", "$SYS/broker/version", "$SYS/broker/uptime", u.fenceTopic())
		fence := payload("fence")
		everything.publish(t, u.fenceTopic(), fence, false)
		u.expectFence(t, fence, func(m msg) bool { return strings.HasPrefix(m.Topic, "$") })
	})

	t.Run("listener-override", func(t *testing.T) {
		conf, err := os.ReadFile(hm.conf())
		if err != nil {
			t.Fatal(err)
		}
		want := "per_listener_settings true" // 2.0
		if m.name == "2.1" {
			want = "listener_allow_anonymous false" // 2.1: per_listener_settings is deprecated
		}
		if !strings.Contains(string(conf), want) {
			t.Errorf("a listener overrides anonymous access but mosquitto.conf lacks %s", want)
		}
		if m.name == "2.1" && strings.Contains(string(conf), "per_listener_settings") {
			t.Error("the 2.1 dialect holds the deprecated per_listener_settings")
		}
		refusedNotAuthorised(t, dial{URL: "tcp://" + hm.addr("locked")})
		c := mustConnect(t, dial{URL: "tcp://" + hm.addr("locked"), User: "everything", Password: hm.password(t, "everything")})
		// The acl holds on that listener too.
		c.subscribe(t, "#")
		delivered(t, c, "private/x", watch)
		refusedNotAuthorised(t, dial{URL: "tcp://" + hm.addr("locked"), User: "everything", Password: "wrong"})
	})

	t.Run("tls-min-version", func(t *testing.T) {
		tlsURL := "tls://" + hm.addr("mqtts")
		cfg := hm.tlsConfig(t, "mqtt.test.arpa")
		cfg.MinVersion = tls.VersionTLS13
		anon := mustConnect(t, dial{URL: tlsURL, TLS: cfg})
		delivered(t, anon, "shared/tls", watch)
		// min_version tlsv1.3: a client capped at TLS 1.2 fails the handshake.
		cfg = hm.tlsConfig(t, "mqtt.test.arpa")
		cfg.MaxVersion = tls.VersionTLS12
		if c, err := connect(t, dial{URL: tlsURL, TLS: cfg}); err == nil {
			c.Disconnect(0)
			t.Fatal("a TLS 1.2 client connected to a listener with min_version tlsv1.3")
		} else if !strings.Contains(err.Error(), "protocol version") {
			t.Fatalf("TLS 1.2 client: %v, want a handshake error (protocol version)", err)
		} else {
			t.Logf("TLS 1.2 client refused: %v", err)
		}
	})
}
