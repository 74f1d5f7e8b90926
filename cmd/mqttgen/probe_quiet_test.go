package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/broker"
	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReadinessProbeQuiet: apply's readiness probe logs in and out cleanly
// on every kind of listener of the bundled broker: its log shows a
// disconnect, never a protocol error (the WebSocket probe used to close the
// socket before its DISCONNECT was sent).
func TestReadinessProbeQuiet(t *testing.T) {
	dir := t.TempDir()
	mqttPort, wsPort := deploytest.FreePort(t), deploytest.FreePort(t)
	hash, err := passwd.Hash("probe-password", 1000)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("passwd", "admin:"+hash+"\n")
	write("acl", "user admin\ntopic readwrite #\n")
	// user root: the broker runs in this test's process, which must not
	// drop to the mosquitto user.
	conf := write("mosquitto.conf", fmt.Sprintf("user root\nallow_anonymous false\npassword_file %s\nacl_file %s\nlistener %d 127.0.0.1\nprotocol mqtt\nlistener %d 127.0.0.1\nprotocol websockets\n",
		filepath.Join(dir, "passwd"), filepath.Join(dir, "acl"), mqttPort, wsPort))
	var log lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- broker.Run(ctx, conf, broker.RunOptions{Stdout: &log, Stderr: &log, Started: func() { close(started) }})
	}()
	defer func() {
		cancel()
		<-done
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("broker: %v\n%s", err, log.String())
	}
	cred := deploy.Credentials{Username: "admin", Password: "probe-password"}
	for _, target := range []deploy.ProbeTarget{{Listener: "mqtt", Port: mqttPort}, {Listener: "ws", Port: wsPort, Websockets: true}} {
		if err := deploy.ProbeLogin("127.0.0.1", target, cred); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for strings.Count(log.String(), " disconnected") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := log.String()
	if strings.Count(out, "disconnected.") != 2 || strings.Contains(out, "error") {
		t.Errorf("the probe's logins are not quiet:\n%s", out)
	}
}
