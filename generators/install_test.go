package generators

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/schema"
)

// TestBackupUnitsFindMqttgen: the backup units and the crontab line run the
// mqttgen that `make install` installs, at the path where it installs it
// (into a DESTDIR here, as packagers do).
func TestBackupUnitsFindMqttgen(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed: %v", err)
	}
	cfg, diags := schema.LoadSource("home.cue", []byte(`package home
listeners: mqtt: port: 1883
backup: {dir: "backups", schedule: "0 3 * * *"}
`))
	if cfg == nil {
		t.Fatal(diags)
	}
	files, err := BackupScheduleFiles(cfg, Inputs{StateDir: "/srv/home/.mqttgen", HomeDir: "/srv/home"})
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, f := range files {
		for _, line := range strings.Split(string(f.Data), "\n") {
			switch {
			case strings.HasPrefix(line, "ExecStart="):
				runs = append(runs, strings.Fields(strings.TrimPrefix(line, "ExecStart="))[0])
			case strings.HasPrefix(line, "0 3 * * * "):
				runs = append(runs, strings.Fields(line)[5])
			}
		}
	}
	if len(runs) != 2 {
		t.Fatalf("found %d commands in the units and crontab, want 2: %v", len(runs), runs)
	}
	dest := t.TempDir()
	cmd := exec.Command("make", "-s", "-C", "..", "install", "DESTDIR="+dest, "BIN="+filepath.Join(t.TempDir(), "mqttgen"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, bin := range runs {
		if !filepath.IsAbs(bin) {
			t.Errorf("%s is not an absolute path: systemd and cron would not find it", bin)
			continue
		}
		out, err := exec.Command(filepath.Join(dest, bin), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "mqttgen ") {
			t.Errorf("%s after make install: %v %s", bin, err, out)
		}
	}
}
