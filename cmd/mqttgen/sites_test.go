package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/internal/secretaudit"
	"github.com/mqttgen/mqttgen/schema"
)

// TestSitesVetLoop: vet refuses a share that makes a loop, at its position.
func TestSitesVetLoop(t *testing.T) {
	dir := t.TempDir()
	home := `package home

listeners: mqtt: port: 1883
devices: door: {site: "garage", publishes: ["state"], subscribes: ["set"]}
sites: {
	house: {docker_host: "unix:///var/run/docker.sock", hostname: "house.home.arpa", hub: true}
	garage: {docker_host: "ssh://pi@garage.home.arpa", hostname: "garage.home.arpa", share: [{pattern: "home/#", direction: "in"}]}
}
`
	os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644)
	code, out := mqttgen(t, "", "vet", dir)
	if code != 1 || !regexp.MustCompile(`home\.cue:7:\d+: sites\.garage\.share\[0\]: site garage: this topic and devices\.door\.publishes\[0\] \(out home/door/state\) make a loop`).MatchString(out) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestSitesVetUserLoop: vet refuses a user on a satellite whose readwrite
// rule would be bridged both ways, at the rule, with the fix.
func TestSitesVetUserLoop(t *testing.T) {
	dir := t.TempDir()
	home := `package home

listeners: mqtt: port: 1883
users: app: {site: "garage", acl: ["readwrite app/#"]}
devices: door: {site: "garage", publishes: ["state"], subscribes: ["set"]}
sites: {
	house: {docker_host: "unix:///var/run/docker.sock", hostname: "house.home.arpa", hub: true}
	garage: {docker_host: "ssh://pi@garage.home.arpa", hostname: "garage.home.arpa"}
}
`
	os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644)
	code, out := mqttgen(t, "", "vet", dir)
	if code != 1 || !regexp.MustCompile(`home\.cue:4:\d+: users\.app\.acl\[0\]: site garage: this topic is bridged both ways: .*give it write rules for what it publishes and read rules for what it subscribes to`).MatchString(out) {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestSitesCommands: apply converges a two-site home (the hub on this
// machine's engine, the garage on an extra dockerd), status shows both
// sites and the garage's bridge connected on both ends; with the hub's
// broker stopped the garage's status shows its bridge disconnected and the
// states it holds; backup --site garage archives the satellite.
func TestSitesCommands(t *testing.T) {
	mainCli := deploytest.Engine(t)
	garage := deploytest.StartDockerd(t)
	tag := deploytest.MosquittoTag("sites")
	ctx := context.Background()
	for _, cli := range []*client.Client{mainCli, garage.Cli} {
		if err := deploytest.MosquittoImage(ctx, cli, tag); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { deploytest.RemoveImage(context.Background(), mainCli, tag) })
	addr := deploytest.HostAddress(t)
	project := fmt.Sprintf("mqttgen-sitescmd-%d", time.Now().UnixNano()%1e6)
	hubPort, garagePort := deploytest.FreePort(t), deploytest.FreePort(t)
	dir := t.TempDir()
	home := fmt.Sprintf(`package home

broker: image: %q
deploy: project: %q
listeners: mqtt: port: %d
users: {
	ha: preset: "homeassistant"
	monitor: acl: ["read $SYS/#"]
}
homeassistant: user: "ha"
devices: door: {site: "garage", publishes: ["state"], subscribes: ["set"]}
sites: {
	house: {docker_host: %q, hostname: %q, hub: true}
	garage: {docker_host: %q, hostname: %q, listeners: mqtt: port: %d}
}
`, tag, project, hubPort, client.DefaultDockerHost, addr, garage.Host, addr, garagePort)
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(home), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deploytest.RemoveProject(mainCli, project)
		deploytest.RemoveProject(garage.Cli, project+"-garage")
	})
	code, out := mqttgen(t, "", "apply", "--auto-approve", "--timeout", "60s", dir)
	outputs := []string{out}
	if code != 0 || !strings.Contains(out, "## site house (hub) on "+client.DefaultDockerHost) || !strings.Contains(out, "## site garage (satellite) on "+garage.Host) || !strings.Contains(out, "Apply complete on 2 site(s)!") {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	code, out = mqttgen(t, "", "plan", "--site", "garage", "--detailed-exitcode", dir)
	if code != 0 || strings.Contains(out, "## site house") || !strings.Contains(out, "## site garage (satellite) on "+garage.Host) || !strings.Contains(out, "No changes.") {
		t.Errorf("plan --site garage after apply: exit %d\n%s", code, out)
	}
	if code, out = mqttgen(t, "", "plan", "--site", "attic", dir); code != 1 || !strings.Contains(out, "--site attic: no such site; the home's sites are house, garage") {
		t.Errorf("plan --site attic: exit %d\n%s", code, out)
	}
	code, out = mqttgen(t, "", "apply", "--auto-approve", "--json", dir)
	if code != 0 || !strings.HasPrefix(out, `{"type":"plan","sites":[{"site":"house","hub":true,`) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("apply --json with no changes: exit %d\n%s", code, out)
	}
	bridge := project + "-garage"
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out = mqttgen(t, "", "status", dir)
		if code == 0 && strings.Count(out, "bridge        "+bridge+": connected") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: exit %d, the bridge not connected on both ends:\n%s", code, out)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("status:\n%s", out)
	outputs = append(outputs, out)
	for _, args := range [][]string{{"plan", dir}, {"plan", "--json", dir}, {"status", "--json", dir}} {
		_, out := mqttgen(t, "", args...)
		outputs = append(outputs, out)
	}

	hub := engine.ContainerName(project, generators.BrokerService)
	if _, err := mainCli.ContainerStop(ctx, hub, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	defer mainCli.ContainerStart(ctx, hub, client.ContainerStartOptions{})
	deadline = time.Now().Add(60 * time.Second)
	for {
		code, out = mqttgen(t, "", "status", "--site", "garage", dir)
		if strings.Contains(out, "bridge        "+bridge+": disconnected") && strings.Contains(out, "held ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status --site garage: exit %d, the bridge not shown disconnected:\n%s", code, out)
		}
		time.Sleep(2 * time.Second)
	}
	if strings.Contains(out, "## site house") {
		t.Errorf("status --site garage shows the hub:\n%s", out)
	}
	t.Logf("status --site garage with the hub down:\n%s", out)

	backups := t.TempDir()
	code, out = mqttgen(t, "", "backup", "--site", "garage", "--dir", backups, dir)
	if code != 0 {
		t.Fatalf("backup --site garage: exit %d\n%s", code, out)
	}
	m, _ := filepath.Glob(filepath.Join(backups, project+"-garage-*.tar.gz"))
	if len(m) != 1 {
		t.Fatalf("backup --site garage wrote no archive of project %s-garage: %s", project, out)
	}
	code, out = mqttgen(t, "", "restore", "--site", "garage", "--auto-approve", "--timeout", "60s", m[0], dir)
	if code != 0 || !strings.Contains(out, "Restore complete!") && !strings.Contains(out, "nothing to restore") {
		t.Errorf("restore --site garage: exit %d\n%s", code, out)
	}
	if code, out = mqttgen(t, "", "restore", "--auto-approve", m[0], dir); code == 0 || !strings.Contains(out, "name one with --site") {
		t.Errorf("restore without --site: exit %d\n%s", code, out)
	}
	if code, out = mqttgen(t, "", "backup", dir); code == 0 || !strings.Contains(out, "name one with --site (house, garage)") {
		t.Errorf("backup without --site: exit %d\n%s", code, out)
	}

	// No secret of either site (the bridge's login on the hub included) in
	// what the commands printed, nor in what either engine shows of its
	// containers.
	secrets, err := secretaudit.FromState(filepath.Join(dir, ".mqttgen"))
	if err != nil {
		t.Fatal(err)
	}
	bridgeLogin := false
	for _, s := range secrets {
		bridgeLogin = bridgeLogin || s.What == "the password of "+schema.BridgeAccount("garage")
	}
	if !bridgeLogin {
		t.Fatalf("the state directory holds no password of %s: %+v", schema.BridgeAccount("garage"), secrets)
	}
	var hits []string
	find := func(where string, data []byte) { hits = append(hits, secrets.Find(where, data)...) }
	for i, o := range outputs {
		find(fmt.Sprintf("output %d", i), []byte(o))
	}
	auditContainers(t, mainCli, project, find)
	auditContainers(t, garage.Cli, project+"-garage", find)
	for _, hit := range hits {
		t.Error(hit)
	}
}
