package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
)

// mqttgen runs one command line with stdin and returns its exit status and
// everything it printed.
func mqttgen(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	var exit exitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return int(exit), out.String()
	default:
		return 1, out.String() + "mqttgen: " + err.Error() + "\n"
	}
}

// TestPlanApplyDestroy drives plan, apply and destroy as a user does, on the
// real Docker engine: exit codes, the question, saved plans, JSON.
func TestPlanApplyDestroy(t *testing.T) {
	cli := deploytest.Engine(t)
	ctx := context.Background()
	tag := deploytest.Tag("cli-mosquitto")
	if err := deploytest.MosquittoImage(ctx, cli, tag); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("mqttgen-cli-test-%d", os.Getpid())
	// Cleanups run last first: the project's containers go before the image.
	t.Cleanup(func() { deploytest.RemoveImage(ctx, cli, tag) })
	deploytest.CleanupProject(t, cli, project)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	dir := t.TempDir()
	homeFile := filepath.Join(dir, "home.cue")
	home := fmt.Sprintf(`package home
broker: image: %q
listeners: mqtt: port: %d
users: admin: acl: ["readwrite #"]
devices: sensor: publishes: ["temperature"]
deploy: project: %q
`, tag, port, project)
	write := func(text string) {
		if err := os.WriteFile(homeFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(home)
	state := []string{"--state", filepath.Join(dir, ".mqttgen")}
	expect := func(wantCode int, stdin string, wantOut string, args ...string) string {
		t.Helper()
		code, out := mqttgen(t, stdin, append(args, state...)...)
		if code != wantCode || !strings.Contains(out, wantOut) {
			t.Fatalf("mqttgen %s: exit %d, want %d and %q in:\n%s", strings.Join(args, " "), code, wantCode, wantOut, out)
		}
		return out
	}

	expect(2, "", "Plan: 4 to add, 0 to change, 0 to destroy.", "plan", "--detailed-exitcode", homeFile)
	expect(0, "", "Plan: 4 to add", "plan", homeFile)
	expect(1, "no\n", "Apply cancelled.", "apply", homeFile)
	expect(1, "y\n", "Apply cancelled.", "apply", homeFile)
	out := expect(0, "yes\n", "Apply complete! Resources: 4 added, 0 changed, 0 destroyed.", "apply", homeFile)
	if !strings.Contains(out, "Enter a value:") || !strings.Contains(out, "Creation complete") {
		t.Errorf("apply output:\n%s", out)
	}
	expect(0, "", "No changes.", "plan", "--detailed-exitcode", homeFile)
	expect(0, "", "No changes.", "apply", homeFile)

	// A saved plan applies without asking, once.
	write(strings.Replace(home, `devices: sensor: publishes: ["temperature"]`, `devices: {sensor: publishes: ["temperature"], lamp: subscribes: ["set"]}`, 1))
	planFile := filepath.Join(dir, "home.plan")
	expect(2, "", "Saved the plan to "+planFile, "plan", "--detailed-exitcode", "-o", planFile, homeFile)
	expect(0, "", "Modifications complete", "apply", planFile)
	expect(1, "", "the saved plan is stale", "apply", planFile)
	// The plan holds no secret: apply renders the home again, and a
	// password changed since makes the plan stale.
	write(home)
	expect(2, "", "Saved the plan to "+planFile, "plan", "--detailed-exitcode", "-o", planFile, homeFile)
	expect(0, "", "rotated the password of sensor", "secrets", "rotate", "sensor", homeFile)
	expect(1, "", "the saved plan is stale: home.cue, a password, a key or a certificate of the home changed", "apply", planFile)

	// JSON.
	write(home)
	_, js := mqttgen(t, "", append([]string{"plan", "--json", homeFile}, state...)...)
	var doc struct {
		Summary struct{ Change int }
		Ops     []struct{ Action, Kind string }
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil || doc.Summary.Change != 1 || len(doc.Ops) != 1 || doc.Ops[0].Action != "update" {
		t.Fatalf("plan --json: %v\n%s", err, js)
	}
	expect(1, "", "--json needs --auto-approve", "apply", "--json", homeFile)
	out = expect(0, "", `"type":"apply_complete"`, "apply", "--json", "--auto-approve", homeFile)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("apply --json printed a line that is not JSON: %s", line)
		}
	}

	// destroy asks too, and keeps the volumes.
	expect(1, "no\n", "Destroy cancelled.", "destroy", homeFile)
	expect(0, "yes\n", "Destroy complete! Resources: 2 destroyed. Kept 2 volumes", "destroy", homeFile)
	expect(0, "", "Destroy complete! Resources: 2 destroyed.", "destroy", "--volumes", "--auto-approve", homeFile)
	expect(0, "", "No changes.", "destroy", "--auto-approve", homeFile)

	// The bundled broker's image is built from the running binary, which
	// must be static: a test binary built with cgo (go test's default) is
	// refused with what to do, before anything is changed. deploy's
	// TestBundledEngine deploys a static one.
	write(strings.Replace(home, fmt.Sprintf("broker: image: %q", tag), `broker: engine: "mqttgen"`, 1))
	exe, _ := os.Executable()
	if _, err := deploy.InspectBinary(exe); err != nil {
		expect(1, "", "build mqttgen with CGO_ENABLED=0, as `make build` does", "plan", homeFile)
		expect(1, "", "is dynamically linked", "apply", "--auto-approve", homeFile)
	}
}
