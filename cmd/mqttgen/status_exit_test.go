package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/status"
)

// TestStatusExitCodes: status tells a monitor, by its exit code, its first
// line and --json's state, what the broker is doing, on the real engine:
// engine unreachable (4, "unknown", never "not deployed"), missing (3),
// serving (0), drift (2), an acl the broker cannot parse deployed (5, a loud
// line), stopped (3).
func TestStatusExitCodes(t *testing.T) {
	cli := deploytest.Engine(t)
	ctx := context.Background()
	tag := deploytest.MosquittoTag("status-mosquitto")
	if err := deploytest.MosquittoImage(ctx, cli, tag); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("mqttgen-status-test-%d", os.Getpid())
	t.Cleanup(func() { deploytest.RemoveImage(ctx, cli, tag) })
	deploytest.CleanupProject(t, cli, project)
	dir := t.TempDir()
	home := fmt.Sprintf(`package home
broker: image: %q
listeners: mqtt: port: %d
listeners: mqtts: {port: %d, tls: true}
tls: {}
users: admin: acl: ["readwrite #"]
devices: sensor: publishes: ["temperature"]
deploy: project: %q
`, tag, deploytest.FreePort(t), deploytest.FreePort(t), project)
	write := func(text string) {
		if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(home)
	expect := func(code int, state string, want ...string) string {
		t.Helper()
		got, out := mqttgen(t, "", "status", dir)
		if got != code {
			t.Errorf("status: exit %d, want %d\n%s", got, code, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("status lacks %q:\n%s", w, out)
			}
		}
		_, js := mqttgen(t, "", "status", "--json", dir)
		if !strings.Contains(js, fmt.Sprintf(`"state": %q`, state)) || !strings.Contains(js, fmt.Sprintf(`"exit_code": %d`, code)) {
			t.Errorf("status --json lacks state %s, exit_code %d:\n%s", state, code, js)
		}
		return out
	}

	t.Run("unreachable", func(t *testing.T) {
		t.Setenv("DOCKER_HOST", fmt.Sprintf("tcp://127.0.0.1:%d", deploytest.FreePort(t)))
		out := expect(status.ExitUnreachable, status.StateUnknown, "status        unknown: the Docker engine cannot be asked", "broker        unknown")
		if strings.Contains(out, "not deployed") {
			t.Errorf("with the engine unreachable, status says not deployed:\n%s", out)
		}
	})
	expect(status.ExitDown, status.StateMissing, "missing: the broker's container "+engine.ContainerName(project, "broker")+" does not exist")
	if code, out := mqttgen(t, "", "apply", "--auto-approve", dir); code != 0 {
		t.Fatalf("apply: %s", out)
	}
	expect(status.ExitServing, status.StateServing, "serving: the broker runs what home.cue asks for")

	write(home + "devices: porch: publishes: [\"state\"]\n")
	expect(status.ExitDrift, status.StateDrift, "drift: the broker runs, but not what home.cue asks for")
	write(home)

	// An acl Mosquitto cannot parse in the running broker's config (as a
	// hand edit or another tool would leave it).
	id, err := engine.FindService(ctx, cli, project, "broker")
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "acl")
	os.WriteFile(broken, []byte("user admin\ntopic readwrit #\n"), 0o600)
	if out, err := exec.Command("docker", "cp", broken, id+":/mosquitto/config/acl").CombinedOutput(); err != nil {
		t.Fatalf("docker cp: %v %s", err, out)
	}
	expect(status.ExitAccess, status.StateNoAccessCtl, "ACCESS        !!! the deployed acl does not parse", "Mosquitto 2.0 runs without access control")

	if _, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	expect(status.ExitDown, status.StateDown, "down: the broker's container")
}
