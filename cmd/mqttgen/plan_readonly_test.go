package main

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/deploy/deploytest"
)

// TestPlanReadOnly: plan writes nothing. On a fresh home it makes no state
// directory; with a new device, new hashing rounds and TLS turned on (new
// passwords, hashes, a CA and a server certificate, all made in memory) the
// state directory stays byte for byte; the plan shows the change, and a
// second plan shows it again. plan -o keeps what it shows.
func TestPlanReadOnly(t *testing.T) {
	deploytest.Engine(t)
	dir := t.TempDir()
	project := fmt.Sprintf("mqttgen-plan-ro-%d", os.Getpid())
	homeFile := filepath.Join(dir, "home.cue")
	write := func(text string) {
		if err := os.WriteFile(homeFile, []byte("package home\n"+text+fmt.Sprintf("deploy: project: %q\n", project)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := "listeners: mqtt: port: 1883\nusers: admin: acl: [\"readwrite #\"]\n"
	write(base)
	state := filepath.Join(dir, ".mqttgen")
	if code, out := mqttgen(t, "", "plan", dir); code != 0 || !strings.Contains(out, `file "passwd"`) {
		t.Fatalf("plan of a fresh home: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("plan made the state directory (%v)", err)
	}

	if code, out := mqttgen(t, "", "render", dir, "-o", filepath.Join(dir, "out")); code != 0 {
		t.Fatal(out)
	}
	write(base + "broker: password_iterations: 2000\ndevices: porch: publishes: [\"state\"]\nlisteners: mqtts: {port: 8883, tls: true}\ntls: {}\n")
	before := treeSums(t, state)
	for range 2 {
		code, out := mqttgen(t, "", "plan", dir)
		if code != 0 || !strings.Contains(out, `file "certs/server.crt"`) || !strings.Contains(out, `file "passwd"`) {
			t.Fatalf("plan: exit %d\n%s", code, out)
		}
		if after := treeSums(t, state); !maps.Equal(before, after) {
			t.Fatalf("plan changed the state directory:\nbefore %v\nafter  %v", before, after)
		}
	}

	if code, out := mqttgen(t, "", "plan", dir, "-o", filepath.Join(dir, "home.plan")); code != 0 {
		t.Fatal(out)
	}
	after := treeSums(t, state)
	for _, f := range []string{"passwords/porch", "certs/ca.key", "certs/server.crt"} {
		if _, ok := after[f]; !ok {
			t.Errorf("plan -o did not keep %s, which the saved plan deploys", f)
		}
	}
}

// TestPlanChecksNeeds: plan checks what apply will need from the engine and
// its host: an image that is not on the engine (and here no registry can
// be asked) and a published port something else holds are each a warning
// naming the fix; with the image present and the port free, none.
func TestPlanChecksNeeds(t *testing.T) {
	cli := deploytest.Engine(t)
	ctx := context.Background()
	tag := deploytest.MosquittoTag("needs-mosquitto")
	if err := deploytest.MosquittoImage(ctx, cli, tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deploytest.RemoveImage(ctx, cli, tag) })
	taken, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	project := fmt.Sprintf("mqttgen-needs-%d", os.Getpid())
	write := func(image string, port int) {
		home := fmt.Sprintf("package home\nbroker: image: %q\nlisteners: mqtt: port: %d\nusers: admin: acl: [\"readwrite #\"]\ndeploy: project: %q\n", image, port, project)
		if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	absent := "mqttgen-test/absent:2.0.11-" + fmt.Sprint(os.Getpid())
	write(absent, busy)
	_, out := mqttgen(t, "", "plan", dir)
	for _, want := range []string{
		"warning: image " + absent + " is not on the Docker engine, and the registry cannot be asked for it",
		"docker load (or build) it first",
		fmt.Sprintf("warning: port %d on every address of the engine's host is in use", busy),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	write(tag, deploytest.FreePort(t))
	if _, out := mqttgen(t, "", "plan", dir); strings.Contains(out, "warning:") {
		t.Errorf("a warning with the image present and the port free:\n%s", out)
	}
}
