package importer

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// TestRoundTrip renders the reference home, imports the rendered files and
// renders the new home: mosquitto.conf, passwd and acl are the same, but
// for comments and the output folder.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../examples/home.cue")
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.ReplaceAll(string(src), "/run/secrets/legacy-panel", "legacy-panel.secret"))
	home := filepath.Join(dir, "home")
	for name, data := range map[string][]byte{"home.cue": src, "legacy-panel.secret": []byte("legacy-pw\n")} {
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CLOUD_MQTT_PASSWORD", "cloud-pw")
	render := func(path, out string) {
		t.Helper()
		h, err := workspace.Open(path, "")
		if err != nil {
			t.Fatal(err)
		}
		files, err := h.Render(workspace.RenderOptions{Local: true, KeepUser: true, Out: out, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := workspace.Write(out, files, false); err != nil {
			t.Fatal(err)
		}
	}
	out1, out2 := filepath.Join(dir, "out1"), filepath.Join(dir, "out2")
	render(home, out1)
	imported := filepath.Join(dir, "imported")
	r, err := Import(filepath.Join(out1, "config", "mosquitto.conf"), imported)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Differences) > 0 || len(r.Lost()) > 0 {
		t.Fatalf("importing a rendered home: differences %v, lost %v", r.Differences, r.Lost())
	}
	if err := r.Write(""); err != nil {
		t.Fatal(err)
	}
	render(imported, out2)
	comment := regexp.MustCompile(`(?m)^#.*\n`)
	probeLine := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(schema.ProbeUser) + `:.*\n`)
	for _, f := range []string{"mosquitto.conf", "passwd", "acl", "certs/server.crt"} {
		read := func(out string) string {
			data, err := os.ReadFile(filepath.Join(out, "config", f))
			if err != nil {
				t.Fatal(err)
			}
			// The healthcheck's login is mqttgen's own, generated in
			// each state directory: not imported, so its hash differs.
			data = probeLine.ReplaceAll(data, nil)
			return strings.ReplaceAll(comment.ReplaceAllString(string(data), ""), out, "OUT")
		}
		if a, b := read(out1), read(out2); a != b {
			t.Errorf("%s differs after the round trip:\n--- rendered\n%s\n--- imported and rendered\n%s", f, a, b)
		}
	}
}
