package conf_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

const foreign = "# a file written by hand\r\npersistence true\n  persistence_location /data/\n\nlistener 1883 0.0.0.0\nprotocol\twebsockets\n#remote_password not-a-secret\nconnection cloud\naddress cloud.example.com:8883\n\tremote_password  hunter2 with spaces \nlog_dest stderr"

func TestRead(t *testing.T) {
	f := conf.Read("m.conf", []byte(foreign))
	if got := f.Values("persistence_location"); !slices.Equal(got, []string{"/data/"}) {
		t.Errorf("persistence_location %q", got)
	}
	if len(f.Sections) != 2 || !f.Sections[0].Listener() || f.Sections[1].Listener() {
		t.Fatalf("sections %+v", f.Sections)
	}
	l, b := f.Sections[0], f.Sections[1]
	if l.Head.Pos() != "m.conf:5" || l.Name() != "1883" || b.Name() != "cloud" || l.Head.Value != "1883 0.0.0.0" || !slices.Equal(l.Values("protocol"), []string{"websockets"}) {
		t.Errorf("listener %+v", l)
	}
	pw := b.Directives[1]
	if pw.Key != "remote_password" || pw.Value != "hunter2 with spaces" || pw.Pos() != "m.conf:10" || pw.Section != 1 {
		t.Errorf("bridge password %+v", pw)
	}
	// log_dest after a section stands in it, as written.
	if len(f.Values("log_dest")) != 0 || !slices.Equal(b.Values("log_dest"), []string{"stderr"}) {
		t.Errorf("log_dest global %q, in the bridge %q", f.Values("log_dest"), b.Values("log_dest"))
	}
	if n := len(f.Directives()); n != 8 {
		t.Errorf("%d directives, want 8", n)
	}
	on, loc, db := f.Persistence(conf.Bundled)
	if !on || loc != "/data" || db != "mqttgen-broker.db" {
		t.Errorf("persistence %v %q %q", on, loc, db)
	}
	if _, _, db := conf.Read("x", []byte("persistence_file my.db\n")).Persistence(""); db != "my.db" {
		t.Errorf("persistence_file: %q", db)
	}
	if _, _, db := conf.Read("x", nil).Persistence(""); db != conf.Database(conf.Mosquitto) {
		t.Errorf("an unknown engine's database: %q", db)
	}
}

func TestRedact(t *testing.T) {
	out, red := conf.Redact("m.conf", []byte(foreign), func(d conf.Directive) string { return "<" + d.Key + ">" })
	if len(red) != 1 || red[0].Line != 10 {
		t.Fatalf("redacted %+v", red)
	}
	want := strings.Replace(strings.ReplaceAll(foreign, "\r", ""), "\tremote_password  hunter2 with spaces ", "\tremote_password <remote_password>", 1)
	if string(out) != want {
		t.Errorf("redacted file:\n%q\nwant\n%q", out, want)
	}
	clean := []byte("listener 1883\r\n")
	if out, red := conf.Redact("m.conf", clean, nil); red != nil || &out[0] != &clean[0] {
		t.Errorf("a file without secrets changed: %q", out)
	}
	for _, k := range []string{"remote_password", "local_password", "bridge_psk", "psk"} {
		if !conf.Secret(k) {
			t.Errorf("%s is not secret", k)
		}
	}
}
