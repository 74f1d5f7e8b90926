package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/verify"
)

// TestVerifyLive deploys a home with Debian's Mosquitto on the Docker
// engine and runs verify against it: it passes and is recorded; after the
// acl file is edited in the container behind mqttgen's back, verify --live
// reports exactly the expectations the edit broke. A superuser subscribed
// to '#' throughout sees no message of verify on a topic the home lets its
// sender write: allowed writes are never sent live.
func TestVerifyLive(t *testing.T) {
	cli := deploytest.Engine(t)
	ctx := context.Background()
	tag := deploytest.MosquittoTag("verify-mosquitto")
	if err := deploytest.MosquittoImage(ctx, cli, tag); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("mqttgen-verify-test-%d", os.Getpid())
	t.Cleanup(func() { deploytest.RemoveImage(ctx, cli, tag) })
	deploytest.CleanupProject(t, cli, project)
	port := deploytest.FreePort(t)

	dir := t.TempDir()
	homeFile := filepath.Join(dir, "home.cue")
	home := fmt.Sprintf(`package home
broker: image: %q
listeners: mqtt: {port: %d, bind: "127.0.0.1"}
users: {
	admin: acl: ["readwrite #"]
	homeassistant: preset: "homeassistant"
	viewer: acl: ["read home/+/state"]
}
devices: {
	lamp: {publishes: ["state"], subscribes: ["set"], entities: light: {component: "light", state: "state", command: "set"}}
	sensor: {publishes: ["temperature"], entities: temperature: component: "sensor"}
}
expect: [
	{as: "viewer", write: "home/lamp/set", allowed: false},
	{as: "viewer", read: "home/lamp/state", allowed: true},
]
deploy: project: %q
`, tag, port, project)
	if err := os.WriteFile(homeFile, []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, ".mqttgen")
	run := func(args ...string) (int, string) {
		t.Helper()
		return mqttgen(t, "", append(args, "--state", stateDir)...)
	}
	if code, out := run("apply", "--auto-approve", homeFile); code != 0 {
		t.Fatalf("apply: %d\n%s", code, out)
	}
	// The sandbox proves every expectation, allowed writes included.
	if code, out := run("verify", homeFile); code != 0 || !strings.Contains(out, "mqttgen: ") || strings.Contains(out, "FAIL") {
		t.Fatalf("verify in the sandbox: exit %d\n%s", code, out)
	}

	// A superuser watches everything on the live broker.
	_, pw := run("secrets", "show", "admin", homeFile)
	var mu sync.Mutex
	var seen []string // "topic payload"
	opts := mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).SetClientID("verify-test-watcher").
		SetUsername("admin").SetPassword(strings.TrimSpace(pw)).SetAutoReconnect(false)
	opts.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		seen = append(seen, m.Topic()+" "+string(m.Payload()))
		mu.Unlock()
	})
	watcher := mqtt.NewClient(opts)
	if tok := watcher.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher: %v", tok.Error())
	}
	defer watcher.Disconnect(100)
	if tok := watcher.Subscribe("#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	watcher.Publish("control/check", 1, false, "watcher works").WaitTimeout(5 * time.Second)

	// The lamp is online with its own name as client id: verify must not
	// take its session over.
	_, lampPW := run("secrets", "show", "lamp", homeFile)
	lost := make(chan error, 1)
	lampOpts := mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).SetClientID("lamp").
		SetUsername("lamp").SetPassword(strings.TrimSpace(lampPW)).SetAutoReconnect(false).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err })
	lamp := mqtt.NewClient(lampOpts)
	if tok := lamp.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("lamp: %v", tok.Error())
	}
	defer lamp.Disconnect(100)
	verifyMessages := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, s := range seen {
			if strings.Contains(s, "mqttgen-verify") {
				out = append(out, strings.Fields(s)[0])
			}
		}
		return out
	}

	liveJSON := func() (int, []verify.Check) {
		t.Helper()
		code, out := run("verify", "--live", "--json", homeFile)
		var reports []verify.Report
		if err := json.Unmarshal([]byte(out), &reports); err != nil || len(reports) != 1 {
			t.Fatalf("verify --live --json: exit %d, %v\n%s", code, err, out)
		}
		return code, reports[0].Checks
	}
	code, checks := liveJSON()
	if code != 0 {
		t.Fatalf("verify --live on the deployed home: exit %d\n%+v", code, checks)
	}
	var sent, skipped int
	for _, c := range checks {
		switch {
		case c.Result == "skip" && strings.Contains(c.What, "allowed"):
			skipped++
		case strings.Contains(c.What, ": denied") && strings.HasPrefix(c.What, "write"):
			sent++
			if !strings.HasPrefix(c.Detail, "PUBACK 0x87") {
				t.Errorf("%s %s: %s", c.Account, c.What, c.Detail)
			}
		}
	}
	if sent < 4 || skipped < 4 {
		t.Errorf("live: %d denied writes sent, %d allowed ones skipped; want at least 4 of each", sent, skipped)
	}
	select {
	case err := <-lost:
		t.Errorf("the household's lamp lost its connection during verify --live: %v", err)
	default:
	}
	// status shows when verify --live last passed against this deployment.
	_, out := run("status", "--json", homeFile)
	var st struct {
		Verified *struct {
			PassedAt time.Time `json:"passed_at"`
			Checks   int       `json:"checks"`
			Current  bool      `json:"current"`
		} `json:"verified"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Verified == nil || time.Since(st.Verified.PassedAt) > time.Minute || st.Verified.Checks == 0 || !st.Verified.Current {
		t.Errorf("status does not show the passing live run (%v):\n%s", err, out)
	}
	if _, text := run("status", homeFile); !strings.Contains(text, "verify --live passed") {
		t.Errorf("status's text does not say when verify --live passed:\n%s", text)
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	control := slices.Contains(seen, "control/check watcher works")
	mu.Unlock()
	if !control {
		t.Fatal("the watcher received nothing: it cannot tell what verify sent")
	}
	if got := verifyMessages(); len(got) != 0 {
		t.Fatalf("the live broker delivered verify's messages on %v", got)
	}

	// Behind mqttgen's back: sensor may write lamp's state, viewer lamp's
	// command.
	container := engine.ContainerName(project, "broker")
	res, err := cli.CopyFromContainer(ctx, container, client.CopyFromContainerOptions{SourcePath: "/mosquitto/config/acl"})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(res.Content)
	hd, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(tr)
	res.Content.Close()
	edited := strings.Replace(string(data), "user sensor\n", "user sensor\ntopic write home/lamp/state\n", 1)
	// viewer's section (the healthcheck's follows it) gets a rule too.
	edited = strings.Replace(edited, "user viewer\ntopic read home/+/state\n", "user viewer\ntopic read home/+/state\ntopic write home/lamp/set\n", 1)
	if edited == string(data) || !strings.Contains(string(data), "user viewer\ntopic read home/+/state\n") || !strings.Contains(edited, "topic write home/lamp/set\n") || !strings.Contains(edited, "user sensor\ntopic write home/lamp/state\n") {
		t.Fatalf("unexpected deployed acl:\n%s", data)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "acl", Mode: 0o600, Size: int64(len(edited)), Uid: hd.Uid, Gid: hd.Gid, ModTime: time.Now()})
	tw.Write([]byte(edited))
	tw.Close()
	if _, err := cli.CopyToContainer(ctx, container, client.CopyToContainerOptions{DestinationPath: "/mosquitto/config", Content: &buf}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerKill(ctx, container, client.ContainerKillOptions{Signal: "SIGHUP"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)

	code, checks = liveJSON()
	if c, text := run("verify", "--live", homeFile); c != 1 || !strings.Contains(text, "FAIL") {
		t.Errorf("verify --live after the edit, as a table: exit %d\n%s", c, text)
	} else {
		t.Logf("verify --live after the edit:\n%s", text)
	}
	var failed []string
	for _, c := range checks {
		if c.Result == "FAIL" {
			failed = append(failed, c.Account+" "+c.What+" ("+c.Source+")")
		}
	}
	slices.Sort(failed)
	want := []string{
		"sensor write home/lamp/state: denied (a device never writes another device's topics)",
		"viewer write home/lamp/set: denied (expect[0])",
	}
	if code != 1 || !slices.Equal(failed, want) {
		t.Errorf("verify --live after the edit: exit %d, failed\n%s\nwant\n%s", code, strings.Join(failed, "\n"), strings.Join(want, "\n"))
	}
	time.Sleep(500 * time.Millisecond)
	// Only the writes the home denies, and the edit let through, reached
	// the superuser.
	got := verifyMessages()
	slices.Sort(got)
	if !slices.Equal(slices.Compact(got), []string{"home/lamp/set", "home/lamp/state"}) {
		t.Errorf("the superuser saw verify's messages on %v, want only the two writes the edit let through", got)
	}
}
