package generators

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/golden (review the diff!)")

// fixedInputs stand in for what packages secrets and pki resolve, so that
// the goldens show exactly what the generators do with them.
func fixedInputs(cfg *schema.Config, layout Layout) Inputs {
	in := Inputs{Layout: layout, HomeDir: "/srv/home", StateDir: "/srv/home/.mqttgen", Passwords: map[string]string{}, Hashes: map[string]string{}, BridgePasswords: map[string]string{}, BridgeCAs: map[string][]byte{}}
	for _, a := range cfg.Accounts() {
		in.Hashes[a.Name] = "$7$1000$HASH-OF-" + a.Name
		in.Passwords[a.Name] = "PASSWORD-OF-" + a.Name
	}
	in.ProbePassword, in.ProbeHash = "PASSWORD-OF-PROBE", "$7$1000$HASH-OF-"+schema.ProbeUser
	for name, b := range cfg.Bridges {
		if b.Password != nil {
			in.BridgePasswords[name] = "BRIDGE-PASSWORD-" + name
		}
		if b.CAFile != "" {
			in.BridgeCAs[name] = []byte("BRIDGE-CA-" + name + "\n")
		}
	}
	if cfg.HasTLS() {
		in.Certs = &Certs{ServerCert: []byte("SERVER-CERT\n"), ServerKey: []byte("SERVER-KEY\n"), CA: []byte("CA-CERT\n"), ClientCA: []byte("CA-CERT\n")}
	}
	return in
}

// dialectImages are the images the golden cases render for: each home of
// testdata/golden is rendered for Mosquitto 2.0 (testdata/golden/*.txtar,
// byte for byte what mqttgen rendered before 2.1 came) and 2.1
// (testdata/golden/2.1/*.txtar, same home.cue), whatever image it names.
var dialectImages = map[string]string{"2.0": "eclipse-mosquitto:2.0.20", "2.1": "eclipse-mosquitto:2.1.2"}

// TestGoldenBothDialects: every golden home exists in both dialects, with
// the same home.cue.
func TestGoldenBothDialects(t *testing.T) {
	cases, _ := filepath.Glob("testdata/golden/*.txtar")
	for _, file := range cases {
		a, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		b, err := txtar.ParseFile(filepath.Join("testdata/golden/2.1", filepath.Base(file)))
		if err != nil {
			t.Errorf("%s has no 2.1 twin: %v", file, err)
			continue
		}
		if !bytes.Equal(a.Files[0].Data, b.Files[0].Data) {
			t.Errorf("%s: the 2.1 twin's home.cue differs", file)
		}
	}
}

// TestGolden renders each home of testdata/golden/*.txtar and
// testdata/golden/2.1/*.txtar (its home.cue section) and compares every
// file, with its mode, to the other sections.
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/golden/*.txtar")
	more, _ := filepath.Glob("testdata/golden/2.1/*.txtar")
	cases = append(cases, more...)
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	for _, file := range cases {
		dialect := "2.0"
		if filepath.Base(filepath.Dir(file)) == "2.1" {
			dialect = "2.1"
		}
		t.Run(dialect+"/"+strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var src []byte
			for _, f := range ar.Files {
				if f.Name == "home.cue" {
					src = f.Data
				}
			}
			cfg, diags := schema.LoadSource("home.cue", src)
			if diags.Errors() > 0 {
				t.Fatal(diags)
			}
			if cfg.Broker.Engine == schema.EngineMosquitto {
				cfg.Broker.Image = dialectImages[dialect]
			}
			layout := ContainerLayout
			if bytes.Contains(ar.Comment, []byte("layout: local")) {
				layout = LocalLayout("/srv/broker", "mosquitto")
				layout.PluginDir = "/opt/mosquitto/lib"
			}
			got := []txtar.File{{Name: "home.cue", Data: src}}
			files, err := Render(cfg, fixedInputs(cfg, layout))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				got = append(got, txtar.File{Name: fmt.Sprintf("%s (%04o)", f.Path, f.Mode), Data: f.Data})
			}
			if *update {
				ar.Files = got
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want := map[string]string{}
			for _, f := range ar.Files[1:] {
				want[f.Name] = string(f.Data)
			}
			for _, f := range got[1:] {
				w, ok := want[f.Name]
				switch {
				case !ok:
					t.Errorf("unexpected file %s:\n%s", f.Name, f.Data)
				case w != string(f.Data):
					t.Errorf("%s differs:\n--- got\n%s--- want\n%s", f.Name, f.Data, w)
				}
				delete(want, f.Name)
			}
			for name := range want {
				t.Errorf("missing file %s", name)
			}
		})
	}
}

// TestReferenceRenders: the reference home renders, and its acl and passwd
// read back with the codecs the broker uses.
func TestReferenceRenders(t *testing.T) {
	cfg, diags := schema.Load("../examples/home.cue")
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	files, err := Render(cfg, fixedInputs(cfg, ContainerLayout))
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	a, err := acl.Parse(bytes.NewReader(byPath["config/acl"].Data))
	if err != nil {
		t.Fatalf("acl does not parse: %v", err)
	}
	if len(a.Users) != len(cfg.Accounts())+1 {
		t.Errorf("acl has %d sections, want one per account (%d) and the healthcheck's", len(a.Users), len(cfg.Accounts()))
	}
	// The healthcheck's login may do nothing, whatever the patterns grant.
	for _, topic := range []string{"clients/mqttgen-healthcheck/x", "mqttgen/healthcheck", "$SYS/broker/uptime", "x"} {
		for _, access := range []acl.Access{acl.Read, acl.Write} {
			if a.Check(acl.Client{Username: schema.ProbeUser, ClientID: "mqttgen-healthcheck"}, topic, access) {
				t.Errorf("the healthcheck's login may %v %s", access, topic)
			}
		}
	}
	// The pattern without %u/%c became a topic rule for everyone.
	if len(a.Patterns) != 1 || a.Patterns[0].Topic != "clients/%c/#" {
		t.Errorf("patterns = %v", a.Patterns)
	}
	conf := string(byPath["config/mosquitto.conf"].Data)
	for _, bad := range []string{"\nport ", "bind_address", "message_size_limit", "reconnect_delay", "local_suffix"} {
		if strings.Contains(conf, bad) {
			t.Errorf("mosquitto.conf holds %q", bad)
		}
	}
	if i, j := strings.Index(conf, "connection cloud"), strings.Index(conf, "remote_username"); i < 0 || j < i {
		t.Error("bridge options must follow `connection`")
	}
	if byPath["config/mosquitto.conf"].Mode != 0o600 {
		t.Error("mosquitto.conf holds a bridge password: want mode 0600")
	}
	for _, p := range []string{"config/passwd", "config/acl", "config/certs/server.key", ProbeLoginPath} {
		if byPath[p].Mode != 0o600 {
			t.Errorf("%s mode %o, want 0600", p, byPath[p].Mode)
		}
	}
	if _, err := Passwd(cfg, Inputs{Hashes: map[string]string{}}); err == nil {
		t.Error("a passwd without hashes must be refused")
	}
}

// TestCronOnCalendar: each schedule converts to the OnCalendar expression of
// the same times (the table, reviewed), and systemd itself accepts it
// (systemd-analyze calendar).
func TestCronOnCalendar(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: systemd-analyze is missing (Debian's systemd package)")
		}
		t.Skip("systemd-analyze is missing")
	}
	cases := map[string]string{
		"0 3 * * *":          "*-*-* 03:00:00",
		"*/15 * * * *":       "*-*-* *:00/15:00",
		"30 2 * * 1-5":       "Mon..Fri *-*-* 02:30:00",
		"0 4 1 * *":          "*-*-01 04:00:00",
		"0 0,12 * jan,jul *": "*-01,07-* 00,12:00:00",
		"5 1 * * sun":        "Sun *-*-* 01:05:00",
		"0 3 * * 7":          "Sun *-*-* 03:00:00",
		"0 */6 1-7 * *":      "*-*-01..07 00/6:00:00",
	}
	for expr, want := range cases {
		c, err := schema.ParseCron(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if got := c.OnCalendar(); got != want {
			t.Errorf("%s: OnCalendar %q, want %q", expr, got, want)
		}
		out, err := exec.Command(analyze, "calendar", c.OnCalendar()).CombinedOutput()
		if err != nil {
			t.Errorf("%s: systemd refuses %q: %s", expr, c.OnCalendar(), out)
		}
	}
	for _, bad := range []string{"0 3 * * 1/2", "0 3 1-10/2 * *", "0 3 1 * 1", "60 * * * *", "0 3 * * funday", "daily"} {
		if _, err := schema.ParseCron(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
