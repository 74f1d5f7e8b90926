package broker

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// metricsBroker starts a test broker that serves /metrics on a free port,
// with a short $SYS interval.
func metricsBroker(t *testing.T) (*testBroker, string) {
	t.Helper()
	tb := newTestBroker(t, "user alice\ntopic readwrite #\ntopic read $SYS/#\nuser bob\ntopic readwrite #\n", "")
	tb.b.Close()
	c, err := conf.Load(tb.conf)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(c, Options{Stdout: syncWriter{tb.out}, Stderr: syncWriter{tb.out}, Version: "test",
		SysInterval: 100 * time.Millisecond, MetricsListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	tb.b = b
	return tb, "http://" + b.MetricsAddr() + "/metrics"
}

// scrape reads /metrics and checks the text format: every sample has its
// HELP and TYPE, names are valid and unique, values are numbers.
func scrape(t *testing.T, url string) (values map[string]float64, types map[string]string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET %s: %s, Content-Type %q", url, res.Status, res.Header.Get("Content-Type"))
	}
	name := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	values, types = map[string]float64{}, map[string]string{}
	helps := map[string]bool{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "# HELP "):
			helps[f[2]] = true
		case strings.HasPrefix(line, "# TYPE "):
			if f[3] != "counter" && f[3] != "gauge" {
				t.Errorf("type of %s: %s", f[2], f[3])
			}
			types[f[2]] = f[3]
		default:
			if len(f) != 2 || !name.MatchString(f[0]) {
				t.Fatalf("not a sample: %q", line)
			}
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("%s: value %q", f[0], f[1])
			}
			if _, dup := values[f[0]]; dup {
				t.Errorf("%s twice", f[0])
			}
			if !helps[f[0]] || types[f[0]] == "" {
				t.Errorf("%s without HELP or TYPE", f[0])
			}
			values[f[0]] = v
		}
	}
	return values, types
}

// TestMetrics: /metrics carries the $SYS values under the names of the
// Mosquitto exporter, live, with the exporter's counters as counters.
func TestMetrics(t *testing.T) {
	tb, url := metricsBroker(t)
	alice, err := tb.client("alice", "alice-pw", "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := tb.client("bob", "bob-pw", "bob")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 8)
	alice.Subscribe("a/#", 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }).WaitTimeout(3 * time.Second)
	bob.Publish("a/retained", 1, true, "hello").WaitTimeout(3 * time.Second)
	bob.Publish("a/other", 1, true, "hello again").WaitTimeout(3 * time.Second)
	<-got
	<-got
	time.Sleep(250 * time.Millisecond) // two $SYS intervals: load averages exist

	values, types := scrape(t, url)
	for name, want := range map[string]float64{
		"broker_clients_connected": 2,
		"broker_clients_total":     2,
	} {
		if values[name] != want {
			t.Errorf("%s = %v, want %v", name, values[name], want)
		}
	}
	for name, min := range map[string]float64{
		"broker_subscriptions_count":         1,
		"broker_retained_messages_count":     2, // and those of $SYS, as Mosquitto counts
		"broker_publish_messages_received":   2,
		"broker_publish_messages_sent":       2,
		"broker_messages_received":           6, // 2 CONNECT, SUBSCRIBE, 2 PUBLISH, ...
		"broker_bytes_received":              50,
		"broker_bytes_sent":                  10,
		"broker_publish_bytes_received":      16,
		"broker_heap_current":                1,
		"broker_load_messages_received_1min": 0,
		"broker_uptime":                      0,
	} {
		if v, ok := values[name]; !ok || v < min {
			t.Errorf("%s = %v (present %v), want at least %v", name, v, ok, min)
		}
	}
	for _, c := range []string{"broker_bytes_received", "broker_bytes_sent", "broker_messages_received", "broker_messages_sent",
		"broker_publish_messages_received", "broker_publish_messages_sent", "broker_publish_messages_dropped"} {
		if types[c] != "counter" {
			t.Errorf("%s is a %q, want a counter (as the exporter has it)", c, types[c])
		}
	}
	if types["broker_clients_connected"] != "gauge" {
		t.Errorf("broker_clients_connected is a %q", types["broker_clients_connected"])
	}
	for _, absent := range []string{"broker_version", "broker_clients_active", "broker_clients_inactive"} {
		if _, ok := values[absent]; ok {
			t.Errorf("%s is exported; the exporter leaves it out", absent)
		}
	}

	// The same numbers as $SYS: the retained $SYS value of clients/connected.
	sys := make(chan string, 1)
	alice.Subscribe("$SYS/broker/clients/connected", 0, func(_ paho.Client, m paho.Message) {
		select {
		case sys <- string(m.Payload()):
		default:
		}
	}).WaitTimeout(3 * time.Second)
	select {
	case v := <-sys:
		if v != fmt.Sprint(values["broker_clients_connected"]) {
			t.Errorf("$SYS says %s clients connected, /metrics %v", v, values["broker_clients_connected"])
		}
	case <-time.After(3 * time.Second):
		t.Error("no $SYS/broker/clients/connected")
	}

	// Live: a disconnect shows at once, not at the next $SYS interval.
	bob.Disconnect(100)
	time.Sleep(100 * time.Millisecond)
	if v, _ := scrape(t, url); v["broker_clients_connected"] != 1 {
		t.Errorf("after a disconnect: broker_clients_connected = %v, want 1", v["broker_clients_connected"])
	}
	if res, err := http.Get(strings.TrimSuffix(url, "/metrics") + "/other"); err != nil || res.StatusCode != 404 {
		t.Errorf("GET /other: %v %v", res.Status, err)
	}
	if !tb.waitLog("Opening metrics listen socket on 127.0.0.1:") {
		t.Errorf("the log does not say where /metrics is:\n%s", tb.log())
	}

	// Close stops serving.
	addr := tb.b.MetricsAddr()
	tb.b.Close()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("/metrics still served after Close")
	}
}

// TestMetricsNames pins the names to the exporter's rule ($SYS/ dropped,
// / and space to _).
func TestMetricsNames(t *testing.T) {
	for topic, want := range map[string]string{
		"clients/connected":         "broker_clients_connected",
		"retained messages/count":   "broker_retained_messages_count",
		"load/bytes/received/15min": "broker_load_bytes_received_15min",
		"publish/messages/dropped":  "broker_publish_messages_dropped",
	} {
		if got := metricName(topic); got != want {
			t.Errorf("%s: %s, want %s", topic, got, want)
		}
	}
}

// TestMetricsPortTaken: a metrics address that cannot be opened stops the
// start, as a listener's does.
func TestMetricsPortTaken(t *testing.T) {
	tb := newTestBroker(t, "", "")
	tb.b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, _ := conf.Load(tb.conf)
	b, err := New(c, Options{Stdout: io.Discard, Stderr: io.Discard, MetricsListen: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err == nil || !strings.Contains(err.Error(), "metrics listener") {
		b.Close()
		t.Fatalf("start with a taken metrics port: %v", err)
	}
	// The MQTT listener was closed again.
	if c, err := net.DialTimeout("tcp", tb.addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Error("the MQTT listener stays open after a failed start")
	}
}

// TestProbe: the healthcheck of the image answers 0 on any CONNACK (a
// refused anonymous login included) on TCP and WebSockets, and fails on a
// port without a broker and on a server that is not MQTT.
func TestProbe(t *testing.T) {
	_, wsPort := freeAddr(t)
	tb := newTestBroker(t, "", fmt.Sprintf("\nlistener %d 127.0.0.1\nprotocol websockets\n", wsPort))
	ctx := context.Background()
	for _, url := range []string{"tcp://" + tb.addr, tb.addr, fmt.Sprintf("ws://127.0.0.1:%d", wsPort), fmt.Sprintf("ws://127.0.0.1:%d/any/path", wsPort)} {
		if err := Probe(ctx, url, nil, 3*time.Second); err != nil {
			t.Errorf("probe %s: %v", url, err)
		}
	}
	if !tb.waitLog("Client <unknown> disconnected, not authorised.") { // as Mosquitto 2.0.11 logs a refused login
		t.Errorf("the refused probe is not in the log:\n%s", tb.log())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if err := Probe(ctx, "tcp://"+closed, nil, time.Second); err == nil {
		t.Error("probe of a closed port passed")
	}
	// An HTTP server: it answers, but not with a CONNACK.
	srv := &http.Server{Handler: http.NotFoundHandler()}
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(hl)
	defer srv.Close()
	if err := Probe(ctx, "tcp://"+hl.Addr().String(), nil, 2*time.Second); err == nil {
		t.Error("probe of an HTTP server passed")
	}
	// A server that accepts and says nothing: the timeout.
	quiet, _ := net.Listen("tcp", "127.0.0.1:0")
	defer quiet.Close()
	go func() {
		for {
			c, err := quiet.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	if err := Probe(ctx, "tcp://"+quiet.Addr().String(), nil, 500*time.Millisecond); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("probe of a silent server: %v after %s", err, time.Since(start))
	}
	if err := Probe(ctx, "http://"+tb.addr, nil, time.Second); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("probe with scheme http: %v", err)
	}
}

// TestProbeLogin: with the healthcheck's login read from a mosquitto_sub
// options file, the probe is admitted and the broker logs no refusal (it
// did for the anonymous probe: TestProbe); a wrong password is still an
// answer (exit 0) but logged. The options file's grammar is mosquitto_sub's.
func TestProbeLogin(t *testing.T) {
	tb := newTestBroker(t, "", "")
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	writeFile(t, good, "# the healthcheck's login\n-u alice\n-P alice-pw\n")
	login, err := ReadProbeLogin(good)
	if err != nil || login.User != "alice" || login.Password != "alice-pw" {
		t.Fatalf("ReadProbeLogin = %+v, %v", login, err)
	}
	ctx := context.Background()
	for range 3 {
		if err := Probe(ctx, "tcp://"+tb.addr, login, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if !tb.waitLog("as " + ProbeClientID + " (p2, c1, k10, u'alice')") {
		t.Fatalf("the probe's login is not in the log:\n%s", tb.log())
	}
	if strings.Contains(tb.log(), "not authorised") {
		t.Errorf("the broker logged a refusal for a probe with a login:\n%s", tb.log())
	}
	if err := Probe(ctx, "tcp://"+tb.addr, &Login{User: "alice", Password: "wrong"}, 3*time.Second); err != nil {
		t.Errorf("a refused login is an answer: %v", err)
	}
	for _, none := range []string{"", "\n"} {
		p := filepath.Join(dir, "empty")
		writeFile(t, p, none)
		if l, err := ReadProbeLogin(p); l != nil || err != nil {
			t.Errorf("an empty login file: %+v %v, want no login", l, err)
		}
	}
	if l, err := ReadProbeLogin(filepath.Join(dir, "absent")); l != nil || err != nil {
		t.Errorf("a missing login file: %+v %v, want no login", l, err)
	}
	for _, bad := range []string{"-u alice\n", "-P x\n", "-u alice\n-P x\n-h evil\n", strings.Repeat("#", MaxProbeLogin+1)} {
		p := filepath.Join(dir, "bad")
		writeFile(t, p, bad)
		if _, err := ReadProbeLogin(p); err == nil {
			t.Errorf("ReadProbeLogin accepted %.40q", bad)
		}
	}
}
