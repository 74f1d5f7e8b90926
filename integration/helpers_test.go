package integration

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// Bounded waits: nothing in the suite waits longer than these.
const (
	startTimeout   = 10 * time.Second
	stopTimeout    = 10 * time.Second
	connectTimeout = 5 * time.Second
	opTimeout      = 5 * time.Second
)

// requireMosquitto skips the test when mosquitto is not installed, and fails
// it under CI, where a missing broker must never pass unnoticed.
func requireMosquitto(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("mosquitto")
	if err != nil {
		msg := "mosquitto is not on PATH (install Debian's mosquitto package: apt-get install mosquitto mosquitto-clients): " + err.Error()
		if ci := os.Getenv("CI"); ci == "true" || ci == "1" {
			t.Fatal("CI=true: " + msg)
		}
		t.Skip(msg)
	}
	return path
}

// mosq is one Mosquitto the scenarios run on.
type mosq struct {
	// name is its release as the subtests name it: "2.0" or "2.1".
	name string
	bin  string
	env  []string
}

// MosquittoEnv names a Mosquitto 2.1 binary (e.g. an upstream 2.1.2 built
// under /opt/mosquitto-2.1.2/sbin/mosquitto) the scenarios also run on.
const MosquittoEnv = "MQTTGEN_MOSQUITTO"

// forEachMosquitto runs f on Debian's Mosquitto 2.0 (required, as
// requireMosquitto) and on the Mosquitto 2.1 that $MQTTGEN_MOSQUITTO
// names; without it the 2.1 subtest says so and skips, CI included: no CI
// image carries 2.1 yet.
func forEachMosquitto(t *testing.T, f func(t *testing.T, m mosq)) {
	t.Helper()
	t.Run("2.0", func(t *testing.T) { f(t, mosq{name: "2.0", bin: requireMosquitto(t)}) })
	t.Run("2.1", func(t *testing.T) {
		bin := os.Getenv(MosquittoEnv)
		if bin == "" {
			fmt.Printf("--- %s: not run: set %s to a Mosquitto 2.1 binary to run it\n", t.Name(), MosquittoEnv)
			t.Skip(MosquittoEnv + " is not set: the Mosquitto 2.1 dialect was not run on a real 2.1 broker")
		}
		prefix := filepath.Dir(filepath.Dir(bin))
		f(t, mosq{name: "2.1", bin: bin, env: []string{"LD_LIBRARY_PATH=" + filepath.Join(prefix, "lib")}})
	})
}

// freePorts returns n distinct free TCP ports of 127.0.0.1. The listeners
// are held until all are chosen, so the ports differ.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// outDir makes a folder the broker can reach after dropping privileges to
// the mosquitto user: every ancestor must be searchable by others.
func outDir(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "mqttgen-integration-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for d := filepath.Dir(root); ; d = filepath.Dir(d) {
			st, err := os.Stat(d)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm()&0o001 == 0 {
				t.Fatalf("%s is not searchable by others: mosquitto, dropping privileges to user mosquitto, could not reach %s; set TMPDIR to a folder it can reach", d, root)
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	return filepath.Join(root, "out")
}

// home is one home rendered for the test, its files written to Out.
type home struct {
	// M is the Mosquitto the home is rendered for.
	M     mosq
	H     *workspace.Home
	Out   string
	Files []generators.File
	// Ports of the listeners, by listener name.
	Ports map[string]int
}

// fileSecrets serves password files by path for Secrets.ReadFile, falling
// back to the disk.
func fileSecrets(files map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if data, ok := files[p]; ok {
			return []byte(data), nil
		}
		return os.ReadFile(p)
	}
}

// openHome loads a home the way the CLI does and moves every listener to a
// free loopback port.
func openHome(t *testing.T, m mosq, path string) *home {
	t.Helper()
	h, err := workspace.Open(path, t.TempDir())
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	names := make([]string, 0, len(h.Config.Listeners))
	for name := range h.Config.Listeners {
		names = append(names, name)
	}
	ports := freePorts(t, len(names))
	hm := &home{M: m, H: h, Out: outDir(t), Ports: map[string]int{}}
	for i, name := range names {
		l := h.Config.Listeners[name]
		l.Port, l.Bind = ports[i], "127.0.0.1"
		h.Config.Listeners[name] = l
		hm.Ports[name] = ports[i]
	}
	return hm
}

// render renders the home and writes its files, as `mqttgen render --local`.
func (hm *home) render(t *testing.T) {
	t.Helper()
	files, err := hm.H.Render(workspace.RenderOptions{Local: true, Out: hm.Out, Now: time.Now(), Mosquitto: hm.M.bin, Bundled: hm.M.name == "bundled"})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if err := workspace.Write(hm.Out, files, true); err != nil {
		t.Fatalf("write: %v", err)
	}
	hm.Files = files
}

func (hm *home) conf() string { return filepath.Join(hm.Out, "config", "mosquitto.conf") }

func (hm *home) addr(listener string) string {
	return "127.0.0.1:" + strconv.Itoa(hm.Ports[listener])
}

// password is the password an account logs in with: its generated one, or
// the one of its password: file:/env:; for the healthcheck's login
// (schema.ProbeUser, in the rendered passwd and acl), its generated one.
func (hm *home) password(t *testing.T, account string) string {
	t.Helper()
	if account == schema.ProbeUser {
		pw, err := hm.H.Secrets.Generated(account)
		if err != nil || pw == "" {
			t.Fatalf("password of %s: %q %v", account, pw, err)
		}
		return pw
	}
	for _, a := range hm.H.Config.Accounts() {
		if a.Name != account {
			continue
		}
		if a.Password != nil {
			pw, err := hm.H.Secrets.External(*a.Password)
			if err != nil {
				t.Fatalf("password of %s: %v", account, err)
			}
			return pw
		}
		pw, err := hm.H.Secrets.Password(account, nil)
		if err != nil {
			t.Fatalf("password of %s: %v", account, err)
		}
		return pw
	}
	t.Fatalf("no account %s", account)
	return ""
}

// aclFile parses the rendered acl.
func (hm *home) aclFile(t *testing.T) *aclFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(hm.Out, "config", "acl"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseACL(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("rendered acl does not parse: %v", err)
	}
	return f
}

// caPool trusts the CA mqttgen generated for the home.
func (hm *home) caPool(t *testing.T) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(hm.Out, "config", "certs", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("config/certs/ca.crt holds no certificate")
	}
	return pool
}

func (hm *home) tlsConfig(t *testing.T, serverName string) *tls.Config {
	return &tls.Config{ServerName: serverName, RootCAs: hm.caPool(t)}
}

// logBuffer collects a broker's output; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// broker is a running mosquitto.
type broker struct {
	m     mosq
	name  string
	conf  string
	addrs []string
	// logs of earlier runs, then the current one's.
	past []string
	log  *logBuffer
	cmd  *exec.Cmd
	// lineBuffered: the log is readable while the broker runs.
	lineBuffered bool
	exited       chan struct{}
	waitErr      error
}

// startBroker runs `mosquitto -c conf` and waits until it says it runs and
// every addr accepts connections. At cleanup it stops the broker with
// SIGTERM, expects a clean exit and a log without warnings.
func startBroker(t *testing.T, m mosq, name, conf string, addrs ...string) *broker {
	t.Helper()
	b := &broker{m: m, name: name, conf: conf, addrs: addrs}
	b.start(t)
	t.Cleanup(func() {
		if b.running() {
			b.stop(t)
		}
		b.checkLog(t)
		if t.Failed() {
			t.Logf("log of broker %s:\n%s", b.name, b.allLogs())
		}
	})
	return b
}

func (b *broker) start(t *testing.T) {
	t.Helper()
	b.log = &logBuffer{}
	// Mosquitto 2.0 does not flush log_dest stdout when it is not a
	// terminal (eclipse-mosquitto/mosquitto#2354): line-buffer it with
	// stdbuf when there is one, else the log shows up only at exit.
	if stdbuf, err := exec.LookPath("stdbuf"); err == nil {
		b.cmd = exec.Command(stdbuf, "-oL", b.m.bin, "-c", b.conf)
		b.lineBuffered = true
	} else {
		b.cmd = exec.Command(b.m.bin, "-c", b.conf)
	}
	b.cmd.Env = append(os.Environ(), b.m.env...)
	b.cmd.Stdout = b.log
	b.cmd.Stderr = b.log
	b.exited = make(chan struct{})
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	go func() {
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for _, a := range b.addrs {
		for {
			if !b.running() {
				t.Fatalf("mosquitto refused %s: %v\n%s", b.conf, b.waitErr, b.log.String())
			}
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				b.kill()
				t.Fatalf("broker %s: %s does not accept connections: %v\n%s", b.name, a, err, b.log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The listeners open before the broker drops privileges and says it runs.
	for b.lineBuffered && !strings.Contains(b.log.String(), " running") {
		if !b.running() || time.Now().After(deadline) {
			t.Fatalf("broker %s did not report running:\n%s", b.name, b.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *broker) running() bool {
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

func (b *broker) kill() {
	b.cmd.Process.Kill()
	<-b.exited
}

// stop sends SIGTERM and expects mosquitto to exit with status 0.
func (b *broker) stop(t *testing.T) {
	t.Helper()
	if !b.running() {
		t.Errorf("broker %s exited before it was stopped: %v\n%s", b.name, b.waitErr, b.log.String())
		b.past = append(b.past, b.log.String())
		return
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	select {
	case <-b.exited:
	case <-time.After(stopTimeout):
		b.kill()
		t.Errorf("broker %s did not exit within %s of SIGTERM", b.name, stopTimeout)
	}
	if b.waitErr != nil {
		t.Errorf("broker %s did not exit cleanly on SIGTERM: %v", b.name, b.waitErr)
	}
	if !strings.Contains(b.log.String(), "terminating") {
		t.Errorf("broker %s log does not say it terminated", b.name)
	}
	b.past = append(b.past, b.log.String())
}

// restart stops the broker and starts it again from the same files.
func (b *broker) restart(t *testing.T) {
	t.Helper()
	b.stop(t)
	b.start(t)
}

func (b *broker) allLogs() string {
	all := strings.Join(b.past, "")
	if b.running() {
		all += b.log.String()
	}
	return all
}

// checkLog fails on any log line with a warning or a deprecation.
func (b *broker) checkLog(t *testing.T) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(b.allLogs()))
	for sc.Scan() {
		l := strings.ToLower(sc.Text())
		if strings.Contains(l, "warning") || strings.Contains(l, "deprecated") {
			t.Errorf("broker %s logged: %s", b.name, sc.Text())
		}
	}
}

// Payloads are unique across the suite, so that a message is never
// mistaken for another.
var payloadSeq atomic.Int64

func payload(kind string) string {
	return fmt.Sprintf("%s-%d-%d", kind, payloadSeq.Add(1), time.Now().UnixNano())
}

var errTimeout = errors.New("timed out")
