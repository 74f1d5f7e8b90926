package brokerdiff

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/broker"
	"github.com/mqttgen/mqttgen/workspace"
)

// childEnv makes the test binary run the broker instead of the tests: the
// differential suite runs both engines as processes, so that signals,
// privilege dropping and restarts are the real ones.
const childEnv = "MQTTGEN_TEST_BROKER_CONF"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		err := broker.Run(context.Background(), path, broker.RunOptions{Version: "test"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "broker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Engines of the differential suite.
const (
	mosquittoEngine = "mosquitto"
	mqttgenEngine   = "mqttgen"
)

// mosquittoPath finds Debian's mosquitto. Under CI=true a missing
// mosquitto fails the test: the differential suite must not pass by
// skipping.
func mosquittoPath(t testing.TB) string {
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("mosquitto is not installed: the differential suite needs it under CI (apt-get install mosquitto)")
	}
	return ""
}

// home is a home rendered with the real pipeline, as `mqttgen render
// --local` writes it.
type home struct {
	t     testing.TB
	dir   string // the home's folder
	out   string // the rendered folder
	conf  string // out/config/mosquitto.conf
	ports map[string]int
	body  string
	// aux are other brokers the scenario runs.
	aux []*proc
}

var portRE = regexp.MustCompile(`\{\{port:([a-z0-9]+)\}\}`)

var portMu sync.Mutex
var usedPorts = map[int]bool{}

// freePort returns a loopback port nothing listens on now and that no
// other test of this process was given.
func freePort(t testing.TB) int {
	portMu.Lock()
	defer portMu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !usedPorts[p] {
			usedPorts[p] = true
			return p
		}
	}
}

// renderHome writes body (a home.cue without its package line; {{port:x}}
// stands for a free port) and the password files (user -> password, read
// through `password: file: "pw/USER"`), and renders it.
func renderHome(t testing.TB, body string, passwords map[string]string) *home {
	t.Helper()
	return renderHomeWith(t, body, passwords, nil)
}

// renderHomeWith is renderHome with some ports given.
func renderHomeWith(t testing.TB, body string, passwords map[string]string, ports map[string]int) *home {
	t.Helper()
	// Not t.TempDir: its folders are 0700, and a broker started as root
	// reads the files as the mosquitto user.
	dir, err := os.MkdirTemp("", "mqttgen-broker-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &home{t: t, dir: dir, ports: map[string]int{}}
	for k, v := range ports {
		h.ports[k] = v
	}
	h.out = filepath.Join(h.dir, "out")
	h.conf = filepath.Join(h.out, "config", "mosquitto.conf")
	h.body = portRE.ReplaceAllStringFunc(body, func(m string) string {
		name := portRE.FindStringSubmatch(m)[1]
		if _, ok := h.ports[name]; !ok {
			h.ports[name] = freePort(t)
		}
		return strconv.Itoa(h.ports[name])
	})
	h.setPasswords(passwords)
	h.render()
	return h
}

func (h *home) setPasswords(passwords map[string]string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Join(h.dir, "pw"), 0o700); err != nil {
		h.t.Fatal(err)
	}
	for u, pw := range passwords {
		if err := os.WriteFile(filepath.Join(h.dir, "pw", u), []byte(pw+"\n"), 0o600); err != nil {
			h.t.Fatal(err)
		}
	}
}

// render renders the home's current body into out.
func (h *home) render() {
	h.t.Helper()
	path := filepath.Join(h.dir, "home.cue")
	if err := os.WriteFile(path, []byte("package home\n\n"+h.body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	w, err := workspace.Open(path, filepath.Join(h.dir, "state"))
	if err != nil {
		h.t.Fatalf("home: %v", err)
	}
	files, err := w.Render(workspace.RenderOptions{Local: true, Out: h.out, Now: time.Now()})
	if err != nil {
		h.t.Fatalf("render: %v", err)
	}
	if err := workspace.Write(h.out, files, true); err != nil {
		h.t.Fatalf("write: %v", err)
	}
}

// rerender replaces the body (ports keep their numbers) and renders again.
func (h *home) rerender(body string) {
	h.t.Helper()
	h.body = portRE.ReplaceAllStringFunc(body, func(m string) string {
		return strconv.Itoa(h.ports[portRE.FindStringSubmatch(m)[1]])
	})
	h.render()
}

func (h *home) addr(name string) string { return "127.0.0.1:" + strconv.Itoa(h.ports[name]) }

// clientTLS trusts the CA mqttgen made for the home.
func (h *home) clientTLS(maxVersion uint16) *tls.Config {
	pem, err := os.ReadFile(filepath.Join(h.out, "config", "certs", "ca.crt"))
	if err != nil {
		h.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: maxVersion}
}

// wipeData empties the persistence folder between engines.
func (h *home) wipeData() {
	entries, _ := os.ReadDir(filepath.Join(h.out, "data"))
	for _, e := range entries {
		os.RemoveAll(filepath.Join(h.out, "data", e.Name()))
	}
}

// proc is one broker process of either engine.
type proc struct {
	t      testing.TB
	engine string
	h      *home
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the engine on the home's rendered files and waits until every
// listener accepts connections.
func start(t testing.TB, engine string, h *home) *proc {
	t.Helper()
	p := &proc{t: t, engine: engine, h: h, log: &syncBuffer{}, exited: make(chan struct{})}
	switch engine {
	case mosquittoEngine:
		p.cmd = exec.Command(mosquittoPath(t), "-c", h.conf)
	default:
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(exe, "-test.run=^$")
		p.cmd.Env = append(os.Environ(), childEnv+"="+h.conf)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", engine, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.kill)
	deadline := time.Now().Add(10 * time.Second)
	for name, port := range h.ports {
		if strings.HasPrefix(name, "x") {
			continue // a port of another broker: {{port:xname}}
		}
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.exited:
				t.Fatalf("%s exited at start: %v\n%s", engine, p.err, p.log)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: port %d never opened\n%s", engine, port, p.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.engine, sig, err)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	select {
	case <-p.exited:
		p.t.Fatalf("%s had exited: %v\n%s", p.engine, p.err, p.log)
	default:
	}
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Errorf("%s exited with %v\n%s", p.engine, p.err, p.log)
		}
	case <-time.After(10 * time.Second):
		if p.engine == mqttgenEngine {
			// The Go runtime prints every goroutine's stack on SIGQUIT:
			// the log then shows where the shutdown hangs.
			p.signal(syscall.SIGQUIT)
			select {
			case <-p.exited:
			case <-time.After(5 * time.Second):
			}
		}
		p.kill()
		p.t.Fatalf("%s did not stop on SIGTERM\n%s", p.engine, p.log)
	}
}

// kill ends the process group at once, if it still runs.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
	}
}

// run is one scenario against one engine.
type run struct {
	t      *testing.T
	engine string
	h      *home
	p      *proc
	lines  []string
}

// note records an observation; the engines must note the same ones.
func (r *run) note(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// restart stops the broker cleanly and starts it again on the same files.
func (r *run) restart() {
	r.t.Helper()
	r.p.stop()
	r.p = start(r.t, r.engine, r.h)
}

// connect connects and notes the outcome; it returns nil when refused.
func (r *run) connect(label, addr string, version byte, o connectOpts) *rawClient {
	r.t.Helper()
	c, ack, err := dialMQTT(addr, version, o)
	switch {
	case err != nil:
		r.note("%s: connect %v", label, err)
	case c == nil:
		r.note("%s: connack 0x%02x", label, ack.ReasonCode)
	default:
		sp := ""
		if ack.SessionPresent {
			sp = " session present"
		}
		r.note("%s: connack 0x00%s", label, sp)
		r.t.Cleanup(func() { c.conn.Close() })
	}
	return c
}

// mustConnect connects or fails the test.
func (r *run) mustConnect(addr string, version byte, o connectOpts) *rawClient {
	r.t.Helper()
	c, ack, err := dialMQTT(addr, version, o)
	if err != nil || c == nil {
		r.t.Fatalf("%s: connect %s as %v: %v (connack 0x%02x)\n%s", r.engine, addr, o.ClientID, err, ack.ReasonCode, r.p.log)
	}
	r.t.Cleanup(func() { c.conn.Close() })
	return c
}

func user(name, password, id string) connectOpts {
	return connectOpts{ClientID: id, Username: str(name), Password: str(password), Clean: true}
}

// settle gives a broker time to route what was just published.
const settle = 300 * time.Millisecond

// clientCert issues a client certificate from the CA mqttgen made for the
// home (kept in its state folder).
func (h *home) clientCert(t testing.TB, name string) tls.Certificate {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(h.dir, "state", "certs", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(h.dir, "state", "certs", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := tls.X509KeyPair(caPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
