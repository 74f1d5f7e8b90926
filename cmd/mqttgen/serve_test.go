package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/workspace"
)

// TestServe: `mqttgen serve` gives a working, authenticated broker from a
// home, with no Docker, and stops cleanly.
func TestServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	home := fmt.Sprintf("package home\nlisteners: mqtt: {port: %d, bind: \"127.0.0.1\"}\nusers: admin: acl: [\"readwrite #\"]\n", port)
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}

	// serve runs as its own process: started as root, it drops to the
	// broker's user, which a test process must not.
	cmd, stderr := startServe(t, dir)
	if os.Geteuid() == 0 {
		// Issue 11: as Mosquitto, the broker does not keep running as root.
		want, err := user.Lookup(workspace.LocalBrokerUser)
		if err != nil {
			t.Fatalf("started as root, serve drops to %s, who does not exist here: %v", workspace.LocalBrokerUser, err)
		}
		if uid := waitUID(t, cmd.Process.Pid, want.Uid); uid != want.Uid {
			t.Errorf("serve started as root runs as uid %s, not %s's %s\n%s", uid, want.Username, want.Uid, stderr)
		}
	}

	h, err := workspace.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var pw string
	deadline := time.Now().Add(10 * time.Second)
	for pw == "" && time.Now().Before(deadline) {
		pw, _ = h.Secrets.Generated("admin")
		time.Sleep(50 * time.Millisecond)
	}
	connect := func(password string) error {
		opts := mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).
			SetUsername("admin").SetPassword(password).SetConnectTimeout(2 * time.Second).SetConnectRetry(false)
		c := mqtt.NewClient(opts)
		tok := c.Connect()
		tok.WaitTimeout(3 * time.Second)
		if tok.Error() == nil {
			c.Disconnect(100)
		}
		return tok.Error()
	}
	for {
		err = connect(pw)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("admin with its generated password: %v\n%s", err, stderr)
	}
	if err := connect("wrong"); err == nil {
		t.Error("a wrong password was accepted")
	}
}

// startServe runs `mqttgen serve dir` as a child process (the test binary
// under the name mqttgen, see TestMain) and stops it with SIGTERM at the
// end of the test, which it must survive with exit status 0.
func startServe(t *testing.T, dir string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	reachable(dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "mqttgen")
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd := exec.Command(bin, "serve", dir)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.Env = append(os.Environ(), "MQTTGEN_STATE=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve ended with %v\n%s", err, stderr)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("serve did not stop\n%s", stderr)
		}
	})
	return cmd, stderr
}

// reachable opens dir and its parents up to the temporary folder, so that
// the broker's user (which serve drops to as root) can reach the home, as
// Mosquitto's.
func reachable(dir string) {
	for d := dir; d != os.TempDir() && d != filepath.Dir(d); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
}

// waitUID returns the real uid of process pid once it is want, or what it
// is after ten seconds.
func waitUID(t *testing.T, pid int, want string) string {
	t.Helper()
	uid := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
				uid = f[1]
			}
		}
		if uid == want {
			break
		}
	}
	return uid
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

// TestServeSaysServingOnceBound: serve prints "serving" only after the
// broker bound its listeners; with the port taken it ends with the cause and
// never says it.
func TestServeSaysServingOnceBound(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	reachable(dir)
	home := fmt.Sprintf("package home\nlisteners: mqtt: {port: %d, bind: \"127.0.0.1\"}\nusers: admin: acl: [\"readwrite #\"]\n", port)
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- run([]string{"serve", dir}, &stdout, &stderr) }()
	select {
	case c := <-code:
		if c == 0 {
			t.Errorf("serve on a taken port exited 0")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve on a taken port did not end")
	}
	if bytes.Contains(stderr.Bytes(), []byte("serving")) {
		t.Errorf("serve said serving on a port it could not bind:\n%s", stderr.String())
	}
	if !bytes.Contains(stderr.Bytes(), []byte("address already in use")) {
		t.Errorf("the cause is not named:\n%s", stderr.String())
	}
}

// TestDiscoveryPublishedAddress: with a broker.hostname that does not resolve
// (init's mqtt.home.arpa before the house's DNS knows it), discovery publish
// says so and publishes through the published address instead of failing.
func TestDiscoveryPublishedAddress(t *testing.T) {
	port := deploytest.FreePort(t)
	dir := t.TempDir()
	home := fmt.Sprintf(`package home
broker: hostname: "mqtt.invalid"
listeners: mqtt: port: %d
users: homeassistant: preset: "homeassistant"
homeassistant: {}
devices: porch: {publishes: ["motion"], entities: motion: component: "binary_sensor"}
`, port)
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	// serve runs as a process of its own: started as root, the broker drops
	// to mosquitto, which must not be this test's process.
	_, log := startServe(t, dir)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "serving"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", log)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"discovery", "publish", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("discovery publish: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	want := "broker.hostname mqtt.invalid does not resolve here; publishing through the published address 127.0.0.1 instead"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q does not say %q", stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), "published 1, migrated 0, cleared 0") {
		t.Errorf("stdout %q", stdout.String())
	}
}
