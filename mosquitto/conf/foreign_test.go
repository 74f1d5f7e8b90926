package conf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitLines(t *testing.T) {
	ds, err := SplitLines("m.conf", strings.NewReader("# c\n\n  listener 1883  \n\tprotocol\twebsockets\n #x y\nport\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Directive{
		{File: "m.conf", Line: 3, Key: "listener", Value: "1883"},
		{File: "m.conf", Line: 4, Key: "protocol", Value: "websockets"},
		{File: "m.conf", Line: 5, Key: "#x", Value: "y"},
		{File: "m.conf", Line: 6, Key: "port"},
	}
	if !reflect.DeepEqual(ds, want) {
		t.Fatalf("SplitLines = %+v\nwant %+v", ds, want)
	}
	if _, err := SplitLines("m.conf", strings.NewReader("a\x00b\n")); err == nil || !strings.Contains(err.Error(), "m.conf:1:") {
		t.Fatalf("NUL byte: %v", err)
	}
}

func TestReadTree(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
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
	write("d/1.conf", "include_dir /broker/d\n")
	if _, err := ReadTree(filepath.Join(dir, "m.conf"), resolve); err == nil || !strings.Contains(err.Error(), "1.conf:1: include_dir /broker/d includes") || !strings.Contains(err.Error(), "include loop") {
		t.Fatalf("loop: %v", err)
	}
	write("d/1.conf", "include_dir /broker/nowhere\n")
	if _, err := ReadTree(filepath.Join(dir, "m.conf"), resolve); err == nil || !strings.Contains(err.Error(), "1.conf:1: include_dir /broker/nowhere:") {
		t.Fatalf("missing folder: %v", err)
	}
}
