package status

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/workspace"
)

func open(t *testing.T, text string) (*workspace.Home, []generators.File) {
	t.Helper()
	return openIn(t, t.TempDir(), text)
}

func openIn(t *testing.T, dir, text string) (*workspace.Home, []generators.File) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "home.cue"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := workspace.Open(dir, filepath.Join(dir, ".mqttgen"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := h.Render(workspace.RenderOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	var config []generators.File
	for _, f := range files {
		if rel, ok := strings.CutPrefix(f.Path, "config/"); ok {
			f.Path = rel
			config = append(config, f)
		}
	}
	return h, config
}

// TestSysReader: the monitoring user first, else the first account the
// deployed acl lets read $SYS ('#' does not cover it), else an explanation.
func TestSysReader(t *testing.T) {
	h, files := open(t, `package home
listeners: mqtt: port: 1883
users: {
	admin: acl: ["readwrite #"]
	zmon: acl: ["read $SYS/#"]
	exporter: acl: ["read $SYS/#"]
}
monitoring: prometheus: {enabled: true, user: "exporter"}
`)
	if user, pw, why := sysReader(h, files); user != "exporter" || pw == "" || why != "" {
		t.Errorf("with monitoring: %q %q", user, why)
	}
	h, files = open(t, `package home
listeners: mqtt: port: 1883
users: {
	admin: acl: ["readwrite #"]
	zmon: acl: ["read $SYS/broker/#"]
}
`)
	if user, _, _ := sysReader(h, files); user != "zmon" {
		t.Errorf("without monitoring: %q, want zmon", user)
	}
	// An imported account (its password unknown) is passed over.
	dir := t.TempDir()
	hash := "$7$101$qBa248uFLxgUEaNL$pX+6e4ImTa7kjpWgISiJ9ThMhUnr2IbLIYpJ7kLsCLeADWENcl3mnSPZwuhXJS2MFZtAEYS9sVRNWfIhvy+yZw=="
	if err := os.MkdirAll(filepath.Join(dir, ".mqttgen", "hashes"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".mqttgen", "hashes", "amon"), []byte(hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h, files = openIn(t, dir, `package home
listeners: mqtt: port: 1883
users: {
	amon: {password: "hash", acl: ["read $SYS/#"]}
	zmon: acl: ["read $SYS/#"]
}
`)
	if user, _, why := sysReader(h, files); user != "zmon" {
		t.Errorf("an imported reader first: %q %q, want zmon", user, why)
	}
	h, files = open(t, `package home
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
`)
	if user, _, why := sysReader(h, files); user != "" || !strings.Contains(why, `add users: monitor: acl: ["read $SYS/#"]`) {
		t.Errorf("no reader: %q %q", user, why)
	}
}

// TestBackupCountsByKind: status counts the deliberate archives (by hand or
// on backup.schedule, kept by backup.keep) apart from apply's and
// restore's automatic ones (kept by their own bound), as retention does.
func TestBackupCountsByKind(t *testing.T) {
	h, _ := open(t, `package home
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
backup: {dir: "backups", keep: 3}
`)
	dir, _ := h.BackupLocation()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for i, kind := range []string{backup.KindManual, backup.KindAutomatic, backup.KindAutomatic, "", backup.KindAutomatic} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		m, _ := json.Marshal(backup.Manifest{Project: h.Config.Deploy.Project, Kind: kind, Reason: map[string]string{"": "mqttgen backup"}[kind]})
		tw.WriteHeader(&tar.Header{Name: backup.ManifestName, Mode: 0o600, Size: int64(len(m))})
		tw.Write(m)
		tw.Close()
		zw.Close()
		p := filepath.Join(dir, backup.Name(h.Config.Deploy.Project, now.Add(-time.Duration(i)*time.Hour)))
		if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := lastBackup(h, now)
	if b.Count != 5 || b.Manual != 2 || b.Automatic != 3 || b.Keep != 3 || b.KeepAutomatic != backup.AutomaticKeep {
		t.Fatalf("lastBackup = %+v", b)
	}
	var out bytes.Buffer
	(&Report{Backup: b}).WriteText(&out)
	if want := "(2 manual or scheduled, keep 3; 3 automatic, keep 5)"; !strings.Contains(out.String(), want) {
		t.Errorf("status text lacks %q:\n%s", want, out.String())
	}
}
