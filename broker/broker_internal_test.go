package broker

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

// testBroker runs a broker in this process on a hand-written configuration.
type testBroker struct {
	t    *testing.T
	dir  string
	conf string
	b    *Broker
	out  *bytes.Buffer
	addr string
}

func freeAddr(t *testing.T) (string, int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hash(t *testing.T, pw string) string {
	h, err := passwd.Hash(pw, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// newTestBroker starts a broker with users alice and bob (passwords
// alice-pw and bob-pw); extra is appended to mosquitto.conf; opts, if
// any, change the broker's options.
func newTestBroker(t *testing.T, acl, extra string, opts ...func(*Options)) *testBroker {
	t.Helper()
	tb := &testBroker{t: t, dir: t.TempDir(), out: &bytes.Buffer{}}
	addr, port := freeAddr(t)
	tb.addr = addr
	writeFile(t, filepath.Join(tb.dir, "passwd"), "alice:"+hash(t, "alice-pw")+"\nbob:"+hash(t, "bob-pw")+"\n")
	writeFile(t, filepath.Join(tb.dir, "acl"), acl)
	tb.conf = filepath.Join(tb.dir, "mosquitto.conf")
	writeFile(t, tb.conf, "allow_anonymous false\npassword_file "+filepath.Join(tb.dir, "passwd")+
		"\nacl_file "+filepath.Join(tb.dir, "acl")+"\nlistener "+strconv.Itoa(port)+" 127.0.0.1\n"+extra)
	c, err := conf.Load(tb.conf)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Stdout: syncWriter{tb.out}, Stderr: syncWriter{tb.out}, Version: "test"}
	for _, f := range opts {
		f(&o)
	}
	b, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	tb.b = b
	// Bounded: a test that found Close hanging must still end.
	t.Cleanup(func() { finishes(10*time.Second, func() { b.Close() }) })
	return tb
}

// publishAs logs in as alice (client id pub), publishes one QoS 1 message and
// disconnects.
func (tb *testBroker) publishAs(topic, payload string, retained bool) {
	tb.t.Helper()
	c, err := tb.client("alice", "alice-pw", "pub")
	if err != nil {
		tb.t.Fatal(err)
	}
	defer c.Disconnect(0)
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		tb.t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// closeWithin closes the broker and fails the test when that takes longer
// than limit, or hangs (given up after a minute); when is what was going on.
func (tb *testBroker) closeWithin(limit time.Duration, when string) {
	tb.t.Helper()
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- tb.b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			tb.t.Fatal(err)
		}
		if d := time.Since(start); d > limit {
			tb.t.Fatalf("Close took %v %s", d, when)
		}
	case <-time.After(time.Minute):
		tb.t.Fatalf("Close hangs %s", when)
	}
}

type syncWriter struct{ b *bytes.Buffer }

var logMu = make(chan struct{}, 1)

func (w syncWriter) Write(p []byte) (int, error) {
	logMu <- struct{}{}
	defer func() { <-logMu }()
	return w.b.Write(p)
}

func (tb *testBroker) log() string {
	logMu <- struct{}{}
	defer func() { <-logMu }()
	return tb.out.String()
}

// waitLog waits until the log holds s.
func (tb *testBroker) waitLog(s string) bool {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(tb.log(), s) {
			return true
		}
	}
	return false
}

// client connects with paho.mqtt.golang (MQTT 3.1.1).
func (tb *testBroker) client(user, pw, id string) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + tb.addr).SetClientID(id).SetUsername(user).SetPassword(pw).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(3 * time.Second).SetProtocolVersion(4)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, os.ErrDeadlineExceeded
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	tb.t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

// PBKDF2 runs once per password: a reconnect with the same password hits
// the cache; a wrong password or a new hash does not.
func TestVerifyCache(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "")
	var calls atomic.Int32
	tb.b.cache.verifyFn = func(h, pw string) bool { calls.Add(1); return passwd.Verify(h, pw) }
	for i := range 3 {
		c, err := tb.client("alice", "alice-pw", "a")
		if err != nil {
			t.Fatalf("connect %d: %v", i, err)
		}
		c.Disconnect(0)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("3 connections with one password ran PBKDF2 %d times, want 1", n)
	}
	if _, err := tb.client("alice", "wrong", "a"); err == nil {
		t.Error("wrong password accepted")
	}
	if _, err := tb.client("alice", "wrong", "a"); err == nil {
		t.Error("wrong password accepted")
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("failures are not cached: want 3 runs, got %d", n)
	}
	// Same password, new hash (a new salt): not a cache hit.
	writeFile(t, filepath.Join(tb.dir, "passwd"), "alice:"+hash(t, "alice-pw")+"\n")
	if err := tb.b.Reload(); err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	if _, err := tb.client("alice", "alice-pw", "a"); err != nil {
		t.Fatal(err)
	}
	if calls.Load() == before {
		t.Error("a new hash was served from the cache")
	}
}

func TestVerifyCacheKey(t *testing.T) {
	c := newVerifyCache()
	// Length-prefixed fields: shifting bytes between fields changes the key.
	if c.digest("ab", "c", "d") == c.digest("a", "bc", "d") || c.digest("a", "b", "cd") == c.digest("a", "bc", "d") {
		t.Error("digest fields are ambiguous")
	}
	if newVerifyCache().digest("a", "b", "c") == c.digest("a", "b", "c") {
		t.Error("two caches share a key")
	}
}

// A password or acl file that fails to parse at reload keeps the previous
// rules: never fails open.
func TestReloadKeepsRulesOnError(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite a/#\n", "")
	writeFile(t, filepath.Join(tb.dir, "passwd"), "alice:not-a-hash\n")
	if err := tb.b.Reload(); err == nil {
		t.Fatal("a broken password file reloaded")
	}
	if _, err := tb.client("alice", "alice-pw", "a"); err != nil {
		t.Fatalf("the previous password no longer works: %v", err)
	}
	if !strings.Contains(tb.log(), "Reload failed, the previous passwords, access rules and certificates stay in force") {
		t.Errorf("failure not logged:\n%s", tb.log())
	}
	writeFile(t, filepath.Join(tb.dir, "passwd"), "alice:"+hash(t, "alice-pw")+"\n")
	writeFile(t, filepath.Join(tb.dir, "acl"), "user alice\ntopic readwrite #\nnonsense\n")
	if err := tb.b.Reload(); err == nil {
		t.Fatal("a broken acl file reloaded")
	}
	cl := &fakeClient{user: "alice", id: "x", listener: tb.b.cfg.Listeners[0].ID()}
	if tb.b.sec.Load().byListener[cl.listener].canRead(cl.acl(), "b/1") {
		t.Error("the broken acl file opened access")
	}
	// A broken mosquitto.conf keeps everything too.
	writeFile(t, tb.conf, "listener 1\nbogus_option 1\n")
	if err := tb.b.Reload(); err == nil || !strings.Contains(err.Error(), "mosquitto.conf:2: unknown option") {
		t.Errorf("broken conf: %v", err)
	}
}

// A reload that changes nothing keeps connected clients.
func TestReloadKeepsClients(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "")
	c, err := tb.client("alice", "alice-pw", "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.b.Reload(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if !c.IsConnectionOpen() {
		t.Error("a reload dropped a client whose password still verifies")
	}
	// Now bob's password changes: alice stays.
	writeFile(t, filepath.Join(tb.dir, "passwd"), "alice:"+hash(t, "alice-pw")+"\nbob:"+hash(t, "new")+"\n")
	if err := tb.b.Reload(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if !c.IsConnectionOpen() {
		t.Error("alice was dropped")
	}
	writeFile(t, filepath.Join(tb.dir, "passwd"), "bob:"+hash(t, "new")+"\n")
	if err := tb.b.Reload(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for c.IsConnectionOpen() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c.IsConnectionOpen() {
		t.Error("alice, removed from the password file, is still connected")
	}
	if !tb.waitLog("Client a disconnected, not authorised.") {
		t.Errorf("log:\n%s", tb.log())
	}
}

// Log lines follow log_type, connection_messages and the timestamp format.
func TestLogging(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "broker.log")
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n",
		"log_dest file "+logFile+"\nlog_dest stdout\nlog_type error\nlog_type notice\nlog_type subscribe\nlog_timestamp true\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n")
	c, err := tb.client("alice", "alice-pw", "logger")
	if err != nil {
		t.Fatal(err)
	}
	c.Subscribe("some/topic", 1, nil).WaitTimeout(3 * time.Second)
	c.Disconnect(100)
	time.Sleep(200 * time.Millisecond)
	out := tb.log()
	for _, want := range []string{
		`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: New connection from 127\.0\.0\.1:\d+ on port \d+\.$`,
		`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: New client connected from 127\.0\.0\.1:\d+ as logger \(p2, c1, k30, u'alice'\)\.$`,
		`^\S+: logger 1 some/topic$`,
		`^\S+: Client logger disconnected\.$`,
	} {
		if !regexp.MustCompile("(?m)" + want).MatchString(out) {
			t.Errorf("no line matches %s", want)
		}
	}
	if strings.Contains(out, "Saved in-memory") || strings.Contains(out, "mochi:") {
		t.Errorf("information or debug lines logged:\n%s", out)
	}
	data, _ := os.ReadFile(logFile)
	if !strings.Contains(string(data), "New client connected") {
		t.Errorf("log file:\n%s", data)
	}
	if t.Failed() {
		t.Log(out)
	}
}

func TestConnectionMessagesOff(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "log_dest stdout\nconnection_messages false\nlog_timestamp false\n")
	c, err := tb.client("alice", "alice-pw", "quiet")
	if err != nil {
		t.Fatal(err)
	}
	c.Disconnect(100)
	time.Sleep(200 * time.Millisecond)
	if out := tb.log(); strings.Contains(out, "quiet") || !strings.HasPrefix(out, "mqttgen broker test") {
		t.Errorf("log:\n%s", out)
	}
}

// The guard that tells a SUBSCRIBE from a delivery must find mochi's
// SUBSCRIBE handler on the stack: a subscription to a topic without
// wildcards that the client may not read is granted (as in Mosquitto) and
// delivers nothing.
func TestSubscribeGuard(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic read a/#\ntopic write b/#\nuser bob\ntopic readwrite #\n", "")
	alice, err := tb.client("alice", "alice-pw", "alice")
	if err != nil {
		t.Fatal(err)
	}
	var got atomic.Int32
	tok := alice.Subscribe("b/secret", 1, func(paho.Client, paho.Message) { got.Add(1) })
	tok.WaitTimeout(3 * time.Second)
	if st := tok.(*paho.SubscribeToken); st.Result()["b/secret"] != 1 {
		t.Fatalf("SUBACK %v, want QoS 1 granted", st.Result())
	}
	bob, err := tb.client("bob", "bob-pw", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		bob.Publish("b/secret", 1, false, "x").WaitTimeout(3 * time.Second)
	}
	time.Sleep(200 * time.Millisecond)
	if n := got.Load(); n != 0 {
		t.Errorf("alice received %d messages she may not read", n)
	}
}

type fakeClient struct{ user, id, listener string }

func (c *fakeClient) acl() acl.Client { return acl.Client{Username: c.user, ClientID: c.id} }

// log_dest topic publishes log lines to $SYS/broker/log/<type>, to clients
// the acl file lets read them.
func TestLogTopic(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic read $SYS/#\n", "log_dest topic\nlog_type notice\n")
	alice, err := tb.client("alice", "alice-pw", "reader")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	alice.Subscribe("$SYS/broker/log/#", 0, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m.Topic() + " " + string(m.Payload()):
		default:
		}
	}).WaitTimeout(3 * time.Second)
	if _, err := tb.client("bob", "bob-pw", "someone"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if !strings.HasPrefix(s, "$SYS/broker/log/N New c") {
			t.Errorf("got %q", s)
		}
	case <-time.After(3 * time.Second):
		t.Error("no log line published")
	}
}

// $SYS load averages appear after the first interval.
func TestSysLoad(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic read $SYS/#\n", "")
	tb.b.Close()
	// Again, with a short interval.
	c, _ := conf.Load(tb.conf)
	b, err := New(c, Options{Stdout: syncWriter{tb.out}, Stderr: syncWriter{tb.out}, Version: "test", SysInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tb.b = b
	alice, err := tb.client("alice", "alice-pw", "sys")
	if err != nil {
		t.Fatal(err)
	}
	topics := make(chan string, 512)
	alice.Subscribe("$SYS/broker/#", 0, func(_ paho.Client, m paho.Message) {
		select {
		case topics <- m.Topic() + "=" + string(m.Payload()):
		default:
		}
	}).WaitTimeout(3 * time.Second)
	seen := map[string]string{}
	deadline := time.After(3 * time.Second)
	for len(seen) < 52 {
		select {
		case s := <-topics:
			k, v, _ := strings.Cut(s, "=")
			seen[k] = v
		case <-deadline:
			t.Fatalf("saw only %d topics: %v", len(seen), seen)
		}
	}
	for _, k := range []string{"$SYS/broker/load/messages/received/1min", "$SYS/broker/load/connections/15min", "$SYS/broker/clients/connected"} {
		if _, ok := seen[k]; !ok {
			t.Errorf("no %s", k)
		}
	}
	if v := seen["$SYS/broker/version"]; !strings.HasPrefix(v, "mqttgen version test (mochi-mqtt ") {
		t.Errorf("version %q", v)
	}
	if !regexp.MustCompile(`^\d+ seconds$`).MatchString(seen["$SYS/broker/uptime"]) {
		t.Errorf("uptime %q", seen["$SYS/broker/uptime"])
	}
}

// An expired session takes its subscriptions with it: mochi leaves them in
// its topic index, where a new client with the same id would receive their
// messages.
func TestExpiredSessionUnsubscribed(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\nuser bob\ntopic readwrite #\n", "")
	o := paho.NewClientOptions().AddBroker("tcp://" + tb.addr).SetClientID("sess").SetUsername("alice").SetPassword("alice-pw").
		SetCleanSession(false).SetAutoReconnect(false).SetProtocolVersion(4)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c.Subscribe("old/#", 1, nil).WaitTimeout(3 * time.Second)
	c.Disconnect(100)
	time.Sleep(100 * time.Millisecond)
	cl, ok := tb.b.srv.Clients.Get("sess")
	if !ok {
		t.Fatal("no session")
	}
	// What mochi's expiry loop does once the session has expired.
	tb.b.hook.OnClientExpired(cl)
	tb.b.srv.Clients.Delete("sess")

	var got atomic.Int32
	o = paho.NewClientOptions().AddBroker("tcp://" + tb.addr).SetClientID("sess").SetUsername("alice").SetPassword("alice-pw").
		SetCleanSession(true).SetAutoReconnect(false).SetProtocolVersion(4).
		SetDefaultPublishHandler(func(paho.Client, paho.Message) { got.Add(1) })
	c = paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	bob, err := tb.client("bob", "bob-pw", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.Publish("old/x", 1, false, "x").WaitTimeout(3 * time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := got.Load(); n != 0 {
		t.Errorf("a new client with the id of an expired session received %d messages of its subscriptions", n)
	}
}
