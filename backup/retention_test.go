package backup

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

// TestRetentionByKind replays the week: with backup.keep 5, a
// deliberate backup, two --with-secrets ones, then apply's automatic
// backups before a dozen replacements (port changes, an engine switch).
// apply's archives are bounded by AutomaticKeep and never remove a
// deliberate one; deliberate backups are bounded by keep and never remove
// an automatic one; the newest archive with secrets is never removed.
func TestRetentionByKind(t *testing.T) {
	dir := t.TempDir()
	hour := 0
	add := func(automatic, secrets bool) string {
		t.Helper()
		hour++
		m, files := sample()
		m.Project = "home"
		m.Created = created.Add(time.Duration(hour) * time.Hour)
		m.Kind = KindManual
		m.Reason = "mqttgen backup"
		if automatic {
			m.Kind, m.Reason = KindAutomatic, "apply, before replacing the broker"
		}
		if secrets {
			m.Secrets = &SecretsInfo{Cipher: "AES-256-GCM"}
			files = append(files, File{Path: SecretsName, Mode: 0o600, Data: []byte("sealed")})
		}
		p, _, err := writeFile(dir, m, files)
		if err != nil {
			t.Fatal(err)
		}
		kind, keep := KindManual, 5
		if automatic {
			kind, keep = KindAutomatic, AutomaticKeep
		}
		if _, err := PruneKind(dir, "home", kind, keep, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exists := func(p string) bool {
		list, _ := List(dir, "home")
		return slices.ContainsFunc(list, func(i Info) bool { return i.Path == p })
	}
	deliberate := add(false, false)
	olderSecrets := add(false, true)
	newestSecrets := add(false, true)
	var auto []string
	for range 12 {
		auto = append(auto, add(true, false))
	}
	for _, p := range []string{deliberate, olderSecrets, newestSecrets} {
		if !exists(p) {
			t.Errorf("apply's backups removed the deliberate %s", filepath.Base(p))
		}
	}
	for i, p := range auto {
		if want := i >= len(auto)-AutomaticKeep; exists(p) != want {
			t.Errorf("automatic archive %d of %d: kept %v, want %v", i+1, len(auto), exists(p), want)
		}
	}

	// Five more deliberate backups: the three older deliberate ones go,
	// except the newest with secrets; apply's stay.
	var later []string
	for range 5 {
		later = append(later, add(false, false))
	}
	if exists(deliberate) || exists(olderSecrets) {
		t.Error("keep 5 kept more than 5 deliberate archives")
	}
	if !exists(newestSecrets) {
		t.Error("retention removed the newest archive with secrets")
	}
	for _, p := range later {
		if !exists(p) {
			t.Errorf("%s removed", filepath.Base(p))
		}
	}
	for _, p := range auto[len(auto)-AutomaticKeep:] {
		if !exists(p) {
			t.Errorf("a deliberate backup removed the automatic %s", filepath.Base(p))
		}
	}

	// Archives made before kinds were recorded are told by their reason.
	for reason, want := range map[string]string{"mqttgen backup": KindManual, "apply, before replacing the broker": KindAutomatic, "restore, before restoring x.tar.gz": KindAutomatic} {
		if got := KindOf(&Manifest{Reason: reason}); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", reason, got, want)
		}
	}
}

// TestResultJSON: backup --json is snake_case, as every --json of mqttgen.
func TestResultJSON(t *testing.T) {
	m, _ := sample()
	m.Secrets = &SecretsInfo{Cipher: "AES-256-GCM"}
	data, err := json.Marshal(&Result{Path: "/b/home.tar.gz", Size: 10, Kind: KindManual, Manifest: m, Removed: []string{"/b/old.tar.gz"}, FlushTook: 1500 * time.Millisecond, ConfigFiles: 2})
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if !snake.MatchString(k) {
					t.Errorf("%s.%s is not snake_case", at, k)
				}
				walk(c, at+"."+k)
			}
		case []any:
			for _, c := range x {
				walk(c, at+"[]")
			}
		}
	}
	walk(v, "")
	top := v.(map[string]any)
	for _, k := range []string{"path", "size", "kind", "manifest", "removed", "flush_seconds", "config_files"} {
		if _, ok := top[k]; !ok {
			t.Errorf("no %s in %s", k, data)
		}
	}
	if top["flush_seconds"] != 1.5 {
		t.Errorf("flush_seconds %v", top["flush_seconds"])
	}
}
