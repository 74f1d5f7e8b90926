package broker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// kubeletSwap lays out files in dir as the kubelet does for a Secret or
// ConfigMap volume: a new hidden folder ..<stamp> with the files, a
// ..data_tmp symlink to it renamed over ..data (atomically), and each file
// a symlink through ..data.
func kubeletSwap(t *testing.T, dir, stamp string, files map[string]string) {
	t.Helper()
	ts := filepath.Join(dir, ".."+stamp)
	if err := os.Mkdir(ts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		writeFile(t, filepath.Join(ts, name), data)
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join(kubeletData, name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(".."+stamp, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, kubeletData)); err != nil {
		t.Fatal(err)
	}
}

// A Secret update reaching the pod (the kubelet's ..data swap) reloads the
// bundled broker as SIGHUP does: a new user logs in and new rules apply,
// while a connected client stays connected; a broken update is refused and
// the files before it keep serving.
func TestReloadOnKubeletSwap(t *testing.T) {
	old := watchInterval
	watchInterval = 50 * time.Millisecond
	t.Cleanup(func() { watchInterval = old })

	dir := t.TempDir()
	addr, port := freeAddr(t)
	conf := "allow_anonymous false\npassword_file " + filepath.Join(dir, "passwd") +
		"\nacl_file " + filepath.Join(dir, "acl") + "\nlistener " + strconv.Itoa(port) + " 127.0.0.1\nuser root\n"
	files := map[string]string{
		"mosquitto.conf": conf,
		"passwd":         "alice:" + hash(t, "alice-pw") + "\n",
		"acl":            "user alice\ntopic readwrite a/#\n",
	}
	kubeletSwap(t, dir, "2026_12_04_10_00_00.1", files)

	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, filepath.Join(dir, "mosquitto.conf"), RunOptions{Stdout: syncWriter{&out}, Stderr: syncWriter{&out}, Version: "test", Started: func() { close(started) }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the broker did not stop")
		}
	})
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("the broker did not start: %v\n%s", err, out.String())
	case <-time.After(10 * time.Second):
		t.Fatal("the broker did not start")
	}
	tb := &testBroker{t: t, dir: dir, out: &out, addr: addr}
	log := func() string { logMu <- struct{}{}; defer func() { <-logMu }(); return out.String() }

	alice, err := tb.client("alice", "alice-pw", "alice")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	sub := func(topic string) byte {
		tok := alice.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() })
		if !tok.WaitTimeout(3 * time.Second) {
			t.Fatal("subscribe: no SUBACK")
		}
		return tok.(*paho.SubscribeToken).Result()[topic]
	}
	if _, err := tb.client("bob", "bob-pw", "bob"); err == nil {
		t.Fatal("bob logged in before the update")
	}

	// The update: bob is new, alice may also use b/#.
	files["passwd"] += "bob:" + hash(t, "bob-pw") + "\n"
	files["acl"] = "user alice\ntopic readwrite a/#\ntopic readwrite b/#\n\nuser bob\ntopic write b/#\n"
	kubeletSwap(t, dir, "2026_12_04_10_05_00.2", files)
	var bob paho.Client
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if bob, err = tb.client("bob", "bob-pw", "bob"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob cannot log in after the update: %v\n%s", err, log())
		}
	}
	if !strings.Contains(log(), "The config folder was updated (..data is now ..2026_12_04_10_05_00.2): reloading.") {
		t.Errorf("no line says why the broker reloaded:\n%s", log())
	}
	if !alice.IsConnectionOpen() {
		t.Fatal("alice was disconnected by the reload")
	}
	if code := sub("b/#"); code != 1 {
		t.Fatalf("alice subscribing b/# after the update: SUBACK %#x", code)
	}
	if tok := bob.Publish("b/1", 1, false, "hi"); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatalf("bob's publish: %v", tok.Error())
	}
	select {
	case topic := <-got:
		if topic != "b/1" {
			t.Errorf("alice got %s", topic)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("alice, connected through the reload, did not get bob's message")
	}

	// A broken update: the acl does not parse. It is refused, and the
	// rules before it stay: bob still logs in and still writes b/#.
	files["acl"] = "user bob\ntopic sideways b/#\n"
	kubeletSwap(t, dir, "2026_12_04_10_10_00.3", files)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log(), "Reload failed"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the broken update was not refused:\n%s", log())
		}
	}
	bob.Disconnect(0)
	bob, err = tb.client("bob", "bob-pw", "bob2")
	if err != nil {
		t.Fatalf("bob cannot log in after a broken update: %v", err)
	}
	if tok := bob.Publish("b/2", 1, false, "hi"); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatalf("bob's publish after a broken update: %v", tok.Error())
	}
	select {
	case topic := <-got:
		if topic != "b/2" {
			t.Errorf("alice got %s", topic)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("after a broken update the previous rules no longer serve: alice did not get b/2")
	}
	if !alice.IsConnectionOpen() {
		t.Error("alice was disconnected by the broken update")
	}
}
