package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadTree(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("m.conf", "a 1\ninclude_dir /broker/d\nb 2\n")
	write("d/2.conf", "c 3\n")
	write("d/1.conf", "d 4\n")
	write("d/x.txt", "e 5\n")
	resolve := func(p string) string { return strings.Replace(p, "/broker", dir, 1) }
	ds, err := ReadTree(filepath.Join(dir, "m.conf"), resolve)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, d := range ds {
		keys = append(keys, d.Key)
	}
	if got := strings.Join(keys, " "); got != "a include_dir d c b" {
		t.Fatalf("order %q", got)
	}
	if ds[2].Pos() != filepath.Join(dir, "d/1.conf")+":1" {
		t.Errorf("position %s", ds[2].Pos())
	}
	write("d/1.conf", "include_dir /broker/d\n")
	if _, err := ReadTree(filepath.Join(dir, "m.conf"), resolve); err == nil || !strings.Contains(err.Error(), "1.conf:1: include_dir /broker/d includes") || !strings.Contains(err.Error(), "include loop") {
		t.Fatalf("loop: %v", err)
	}
	write("d/1.conf", "include_dir /broker/nowhere\n")
	if _, err := ReadTree(filepath.Join(dir, "m.conf"), resolve); err == nil || !strings.Contains(err.Error(), "1.conf:1: include_dir /broker/nowhere:") {
		t.Fatalf("missing folder: %v", err)
	}
}

func TestKnownDefaults(t *testing.T) {
	for _, o := range []string{"max_connections", "acl_file", "remote_password", "user", "plugin_opt_x", "port"} {
		if !Known(o) {
			t.Errorf("%s is Mosquitto's", o)
		}
	}
	for _, o := range []string{"reconnect_delay", "reconnect_delay_max", "broker"} {
		if Known(o) {
			t.Errorf("%s is unknown to Mosquitto 2.0", o)
		}
	}
	if !Since21("listener_allow_anonymous") || Since21("max_connections") {
		t.Error("Since21")
	}
	if !IsDefault("try_private", "true") || IsDefault("try_private", "false") || IsDefault("max_connections", "-1") {
		t.Error("IsDefault")
	}
	if !OpensDefaultListener("max_connections", "10") || OpensDefaultListener("max_connections", "-1") || OpensDefaultListener("tls_version", "tlsv1.2") || OpensDefaultListener("protocol", "mqtt") {
		t.Error("OpensDefaultListener")
	}
}
