package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/internal/secretaudit"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

const auditHomeText = `package home
broker: {image: "IMAGE", hostname: "localhost"}
listeners: {
	mqtt: port: PORT
	mqtts: {port: TLSPORT, tls: true}
}
tls: server_names: ["localhost"]
users: {
	admin: acl: ["readwrite #", "read $SYS/#"]
	panel: {acl: ["read home/#"], password: file: "panel.password"}
}
devices: sensor: publishes: ["temperature"]
// The bridge logs in to the broker itself, and is refused.
bridges: cloud: {
	address: "127.0.0.1:PORT"
	username: "home"
	password: env: "MQTTGEN_TEST_AUDIT_BRIDGE"
	topics: [{pattern: "cloud/#", direction: "out"}]
}
backup: {dir: "backups", keep: 3}
deploy: project: "PROJECT"
`

// TestSecretAudit: a home with generated passwords, a password from a
// file, a bridge password from the environment and a TLS key, through
// render, plan (text, JSON, saved), apply, backup and status on the real
// engine. Every output, the broker's log, every label and the
// configuration of the project's containers, the arguments of every
// process on the machine, the saved plan, the world-readable rendered
// files and the backup archive are searched for every password, hash and
// private key of the home; any hit fails.
func TestSecretAudit(t *testing.T) {
	cli := deploytest.Engine(t)
	t.Setenv(workspace.StateEnv, "")
	t.Setenv(backup.PassphraseEnv, "")
	ctx := context.Background()
	tag := deploytest.MosquittoTag("audit-mosquitto")
	if err := deploytest.MosquittoImage(ctx, cli, tag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deploytest.RemoveImage(context.Background(), cli, tag) })
	const bridgePW, panelPW = "audit-bridge-secret-7731", "audit-panel-secret-5512"
	t.Setenv("MQTTGEN_TEST_AUDIT_BRIDGE", bridgePW)
	h := newOpsHome(t, cli, "audit", auditHomeText, "IMAGE", tag, "TLSPORT", fmt.Sprint(opsFreePort(t)))
	if err := os.WriteFile(filepath.Join(h.dir, "panel.password"), []byte(panelPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var outputs []struct{ where, text string }
	record := func(where, text string) { outputs = append(outputs, struct{ where, text string }{where, text}) }
	run := func(code int, want string, args ...string) string {
		t.Helper()
		out := h.run(code, want, args...)
		record("mqttgen "+strings.Join(args, " "), out)
		return out
	}

	out := filepath.Join(t.TempDir(), "out")
	run(0, "wrote", "render", "-o", out)
	run(0, "Plan:", "plan")
	run(0, `"format_version"`, "plan", "--json")
	planFile := filepath.Join(h.dir, "home.plan")
	run(0, "Saved the plan", "plan", "-o", planFile)
	code, applied := mqttgen(t, "", "apply", planFile)
	record("mqttgen apply home.plan", applied)
	if code != 0 || !strings.Contains(applied, "Apply complete!") {
		t.Fatalf("apply home.plan: exit %d\n%s", code, applied)
	}
	run(0, "No changes", "apply", "--auto-approve")
	// Something for the database to hold (a database rewritten unchanged
	// within its second is not noticed: docs/operations.md).
	admin := opsConnect(t, h.port, "admin", h.password("admin"), clientOpts{clean: true})
	opsPublish(t, admin, "home/audit", "kept", true)
	admin.Disconnect(0)
	run(0, "The broker wrote", "backup")
	passFile := filepath.Join(t.TempDir(), "passphrase")
	os.WriteFile(passFile, []byte("correct horse battery staple\n"), 0o600)
	run(0, "secrets.enc", "backup", "--with-secrets", "--passphrase-file", passFile)
	run(0, "matches home.cue", "status")
	run(0, `"project"`, "status", "--json")

	// Every secret of the home, after all of it ran.
	secrets, err := secretaudit.FromState(filepath.Join(h.dir, ".mqttgen"))
	if err != nil {
		t.Fatal(err)
	}
	// The healthcheck's login is one of them (FromState reads it from
	// passwords/): it must be nowhere but its 0600 file in the container.
	probe := false
	for _, s := range secrets {
		probe = probe || s.What == "the password of "+schema.ProbeUser
	}
	if !probe {
		t.Fatalf("the state directory holds no password of %s", schema.ProbeUser)
	}
	secrets.Add("the bridge password", bridgePW)
	secrets.Add("the panel's password (from a file)", panelPW)
	passwd, err := os.ReadFile(filepath.Join(out, "config", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	secrets.AddPasswd("the rendered passwd", passwd)
	if len(secrets) < 10 {
		t.Fatalf("only %d secrets collected: %+v", len(secrets), secrets)
	}
	// The search finds what is there: the broker's own files hold them.
	key, _ := os.ReadFile(filepath.Join(out, "config", "certs", "server.key"))
	if n := len(secrets.Find("", append(passwd, key...))); n < 5 {
		t.Fatalf("the audit finds %d secrets in the rendered passwd and key", n)
	}
	var hits []string
	find := func(where string, data []byte) { hits = append(hits, secrets.Find(where, data)...) }

	for _, o := range outputs {
		find(o.where, []byte(o.text))
	}
	plan, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	find("the saved plan", plan)
	// Rendered files others may read are meant to be shared (compose,
	// Home Assistant's YAML, discovery); the rest are 0600.
	filepath.WalkDir(out, func(p string, e os.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		if info, _ := e.Info(); info.Mode().Perm()&0o044 != 0 {
			data, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(out, p)
			find("rendered "+rel+" (mode "+info.Mode().Perm().String()+")", data)
		}
		return nil
	})
	// The archives: keys and passwords only encrypted. (The passwd
	// hashes are in them in clear, as in the deployed passwd: see
	// docs/security.md.)
	keysAndPasswords := secretaudit.Set{}
	for _, s := range secrets {
		if !strings.Contains(s.What, "hash") && !strings.Contains(s.What, "passwd") {
			keysAndPasswords = append(keysAndPasswords, s)
		}
	}
	for _, a := range h.archives(filepath.Join(h.dir, "backups")) {
		data, _ := os.ReadFile(a.Path)
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(zr)
		hits = append(hits, keysAndPasswords.Find("archive "+filepath.Base(a.Path), raw)...)
	}
	// The engine: labels, command, environment, log of every container
	// of the project.
	auditContainers(t, cli, h.project, find)
	// The arguments of every process that runs (the broker's included:
	// the engine's processes are this kernel's).
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	seen := 0
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || len(data) == 0 {
			continue
		}
		seen++
		find(p+" ("+strings.ReplaceAll(string(bytes.Split(data, []byte{0})[0]), "\x00", " ")+")", bytes.ReplaceAll(data, []byte{0}, []byte(" ")))
	}
	if seen < 5 {
		t.Fatalf("read the arguments of %d processes", seen)
	}
	for _, hit := range hits {
		t.Error(hit)
	}
	t.Logf("searched %d outputs and the engine for %d secrets, %d processes, at %s", len(outputs), len(secrets), seen, time.Now().Format(time.TimeOnly))
	h.run(0, "Destroy complete!", "destroy", "--volumes", "--auto-approve")
}

// auditContainers searches what `docker inspect` and the logs show of
// every container of project (labels, command, environment, healthcheck,
// health log) with find.
func auditContainers(t *testing.T, cli *client.Client, project string, find func(where string, data []byte)) {
	t.Helper()
	ctx := context.Background()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", engine.LabelProject+"="+project)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) == 0 {
		t.Fatal("no container of the project")
	}
	for _, c := range list.Items {
		insp, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := insp.Container.Config
		name := insp.Container.Name
		for k, v := range cfg.Labels {
			find(fmt.Sprintf("container %s label %s", name, k), []byte(v))
		}
		find("container "+name+" command", []byte(strings.Join(append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...), " ")))
		find("container "+name+" environment", []byte(strings.Join(cfg.Env, "\n")))
		// All that `docker inspect` shows, health log included.
		all, _ := json.Marshal(insp.Container)
		find("docker inspect "+name, all)
		if hc := cfg.Healthcheck; hc != nil {
			find("container "+name+" healthcheck", []byte(strings.Join(hc.Test, " ")))
		}
		logs, err := cli.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err == nil {
			data, _ := io.ReadAll(logs)
			logs.Close()
			find("container "+name+" log", data)
		}
	}
}
