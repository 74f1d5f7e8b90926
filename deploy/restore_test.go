package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/engine"
)

// TestRestoreWriteBack (issue 11, item 7) on the real engine: a restore
// whose copy into the container fails (injected through Options.Fault once
// the archive's data and config are written, as a copy that fails midway
// leaves them) writes the previous data and config back and starts the
// broker again: the device added after the backup still logs in, the
// retained message published after it is still there, the container is the
// same and the next plan is empty. A restore whose context is cancelled
// before it begins signals nothing: the broker is not restarted and its
// database is not rewritten.
func TestRestoreWriteBack(t *testing.T) {
	cli := testEngine(t)
	ctx := context.Background()
	port := freePort(t)
	h := newHome(t, fmt.Sprintf(`package home
broker: image: "IMAGE"
listeners: mqtt: port: %d
users: admin: acl: ["readwrite #"]
devices: sensor: publishes: ["temperature"]
persistence: enabled: true
logging: destinations: ["stderr"]
deploy: project: "PROJECT"
`, port))
	cleanup(t, cli, h.project)
	firstApply(t, cli, h.desired())
	admin := mustConnect(t, port, "admin", h.password("admin"))
	publish(t, admin, "home/kept", "before the backup", true)
	admin.Disconnect(100)

	res, err := backup.Create(ctx, cli, backup.Options{Project: h.project, Dir: filepath.Join(h.dir, "backups"), Keep: 3, StateDir: filepath.Join(h.dir, ".mqttgen")})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	a, err := backup.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}

	// After the backup: a new device (passwd and acl change) and a newer
	// retained message.
	h.edit(`devices: sensor: publishes: ["temperature"]`, `devices: {
	sensor: publishes: ["temperature"]
	lamp: publishes: ["state"]
}`)
	d := h.desired()
	if _, err := apply(t, cli, d); err != nil {
		t.Fatal(err)
	}
	admin = mustConnect(t, port, "admin", h.password("admin"))
	publish(t, admin, "home/kept", "after the backup", true)
	admin.Disconnect(100)
	id, started := brokerContainer(t, cli, h.project)

	// A cancelled restore signals nothing.
	dataBefore, _, err := engine.ReadDir(ctx, cli, id, "/mosquitto/data")
	if err != nil || len(dataBefore) == 0 {
		t.Fatalf("data files: %v %v", err, dataBefore)
	}
	rp := planRestore(t, cli, d, a)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := deploy.Restore(cancelled, cli, d, rp, deploy.Options{ReadyTimeout: 15 * time.Second}); err == nil {
		t.Fatal("a cancelled restore succeeded")
	}
	dataAfter, _, _ := engine.ReadDir(ctx, cli, id, "/mosquitto/data")
	if len(dataAfter) != len(dataBefore) {
		t.Fatalf("data files %d -> %d after a cancelled restore", len(dataBefore), len(dataAfter))
	}
	for i := range dataBefore {
		if !dataBefore[i].ModTime.Equal(dataAfter[i].ModTime) || string(dataBefore[i].Data) != string(dataAfter[i].Data) {
			t.Errorf("%s was written by a cancelled restore", dataBefore[i].Path)
		}
	}
	if id2, started2 := brokerContainer(t, cli, h.project); id2 != id || started2 != started {
		t.Fatal("a cancelled restore restarted the broker")
	}

	// The copy fails: the write-back brings the previous tree back.
	injected := errors.New("injected: the copy into the container failed")
	sawArchive := false
	fault := func(op deploy.Op, step string) error {
		if step != "copying" {
			return nil
		}
		// What the copy wrote is the archive's: lamp is not in its passwd.
		files, _, err := engine.ReadDir(context.Background(), cli, id, "/mosquitto/config")
		if err != nil {
			t.Error(err)
		}
		for _, f := range files {
			if f.Path == "passwd" {
				sawArchive = strings.Contains(string(f.Data), "sensor:") && !strings.Contains(string(f.Data), "lamp:")
			}
		}
		return injected
	}
	rp = planRestore(t, cli, d, a)
	_, err = deploy.Restore(ctx, cli, d, rp, deploy.Options{ReadyTimeout: 15 * time.Second, Fault: fault})
	var re *deploy.RestoreError
	if !errors.As(err, &re) || !errors.Is(err, injected) || !re.RolledBack || re.RollbackErr != nil {
		t.Fatalf("restore with a failing copy: %v (%+v), want the injected error, rolled back", err, re)
	}
	if !sawArchive {
		t.Fatal("the fault did not see the archive's config in the container: the write-back was not exercised")
	}
	if id2, _ := brokerContainer(t, cli, h.project); id2 != id {
		t.Errorf("the broker's container changed: %s -> %s", id, id2)
	}
	mustConnect(t, port, "lamp", h.password("lamp")).Disconnect(100)
	reader := mustConnect(t, port, "admin", h.password("admin"))
	receive(t, subscribe(t, reader, "home/kept"), "after the backup")
	reader.Disconnect(100)
	if p, _ := plan(t, cli, h.desired()); !p.Empty() {
		t.Errorf("plan after the write-back:\n%s", planText(t, p))
	}
}

// planRestore observes the project and plans restoring archive a over it.
func planRestore(t *testing.T, cli *client.Client, d *deploy.Desired, a *backup.Archive) *deploy.RestorePlan {
	t.Helper()
	ctx := context.Background()
	o, err := deploy.Observe(ctx, cli, d.Project, d)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := deploy.PlanRestore(ctx, cli, d, o, a, deploy.RestoreOptions{})
	if err != nil {
		t.Fatalf("plan the restore: %v", err)
	}
	return rp
}
