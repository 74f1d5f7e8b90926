package generators

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/mqttgen/mqttgen/schema"
)

// TestSitesGolden renders every site of each testdata/sites/*.txtar home
// (SiteConfig, then Render) and compares the files, under sites/<name>/,
// with the archive's sections: two and three sites, Mosquitto hub with a
// bundled satellite and the reverse.
func TestSitesGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/sites/*.txtar")
	if len(cases) < 2 {
		t.Fatal("no site golden cases")
	}
	for _, file := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			src := ar.Files[0].Data
			cfg, diags := schema.LoadSource("home.cue", src)
			if diags.Errors() > 0 {
				t.Fatal(diags)
			}
			if loops := CheckSites(cfg); len(loops) > 0 {
				t.Fatal(loops)
			}
			got := []txtar.File{{Name: "home.cue", Data: src}}
			for _, site := range cfg.SiteNames() {
				v, err := SiteConfig(cfg, site)
				if err != nil {
					t.Fatal(err)
				}
				in := fixedInputs(v, ContainerLayout)
				for name, b := range v.Bridges {
					if b.Site != nil {
						in.BridgePasswords[name] = "PASSWORD-OF-" + b.Site.Account
						if b.Site.HubCA {
							in.BridgeCAs[name] = []byte("CA-CERT\n")
						}
					}
				}
				files, err := Render(v, in)
				if err != nil {
					t.Fatalf("site %s: %v", site, err)
				}
				for _, f := range files {
					got = append(got, txtar.File{Name: fmt.Sprintf("%s (%04o)", SitePath(site, f.Path), f.Mode), Data: f.Data})
				}
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

const loopBase = `package home

listeners: mqtt: port: 1883
users: ha: preset: "homeassistant"
devices: {
	hall: publishes: ["temp"]
	door: {site: "garage", publishes: ["state"], subscribes: ["set"]}
}
sites: {
	house: {docker_host: "unix:///var/run/docker.sock", hostname: "house.home.arpa", hub: true}
	garage: {
		docker_host: "ssh://pi@garage.home.arpa"
		hostname: "garage.home.arpa"
`

// TestSitesLoops: vet refuses, at the declaration's position, every
// bridge line that lets a message come back to the broker it left, and
// accepts those whose prefixes keep the two ways apart.
func TestSitesLoops(t *testing.T) {
	for _, c := range []struct {
		name, share, want string
	}{
		{"none", ``, ``},
		{"pull every device topic", `{pattern: "home/#", direction: "in"}`,
			`home.cue:14:11: sites.garage.share[0]: site garage: this topic and devices.door.publishes[0] (out home/door/state) make a loop: what the satellite sends to the hub as home/door/state, the hub sends back as home/#`},
		{"both ways", `{pattern: "weather/#", direction: "both"}`,
			`home.cue:14:11: sites.garage.share[0]: site garage: this topic is bridged both ways: what the satellite sends to the hub as weather/#, the hub sends back as weather/#`},
		{"in then out", `{pattern: "weather/+", direction: "in"}, {pattern: "weather/#"}`,
			`home.cue:14:52: sites.garage.share[1]: site garage: this topic and sites.garage.share[0] (in weather/+) make a loop: what the satellite sends to the hub as weather/#, the hub sends back as weather/+`},
		{"local side", `{pattern: "x/#", direction: "in"}, {pattern: "x/#", remote_prefix: "garage/"}`,
			`home.cue:14:46: sites.garage.share[1]: site garage: this topic and sites.garage.share[0] (in x/#) make a loop: what the hub sends to the satellite as x/#, the satellite sends back as x/#`},
		{"prefixes apart", `{pattern: "x/#", direction: "in", local_prefix: "hub/"}, {pattern: "x/#", remote_prefix: "garage/"}`, ``},
		{"own commands", `{pattern: "home/door/set", direction: "in"}`, ``},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := loopBase + "\t\tshare: [" + c.share + "]\n\t}\n}\n"
			got := sitesErrors(t, src)
			if c.want != "" {
				c.want += "; bridge each topic one way, or give the two sides prefixes that keep them apart"
			}
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestFiltersOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"a/b", "a/b", true}, {"a/b", "a/c", false}, {"a/+", "a/b", true}, {"a/#", "a", true},
		{"a/#", "b/#", false}, {"+/x", "a/+", true}, {"a/b/c", "a/b", false}, {"#", "x/y/z", true},
		{"a/+/c", "a/b/d", false},
	} {
		if got := FiltersOverlap(c.a, c.b); got != c.want || FiltersOverlap(c.b, c.a) != c.want {
			t.Errorf("FiltersOverlap(%q, %q) = %v, want %v both ways", c.a, c.b, got, c.want)
		}
	}
}

// TestSitesHubListener: the satellites' bridges need a listener of the hub
// they can reach.
func TestSitesHubListener(t *testing.T) {
	src := strings.Replace(loopBase, "listeners: mqtt: port: 1883", `listeners: mqtt: {port: 1883, bind: "127.0.0.1"}`, 1) + "\t}\n}\n"
	want := `home.cue:3:31: listeners.mqtt.bind: the satellites' bridges connect to the hub's listener mqtt at house.home.arpa, but it listens on 127.0.0.1 alone: bind it to an address they reach, or leave bind out`
	if got := sitesErrors(t, src); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestSitesUserLoops: a user on a satellite has its ACL bridged; vet
// refuses, at the rule's position, a readwrite rule (both ways) and a read
// that meets what the satellite sends, and accepts Zigbee2MQTT's preset
// and one-way rules.
func TestSitesUserLoops(t *testing.T) {
	fix := "; a user on a satellite has its writes bridged out and its reads bridged in: give it write rules for what it publishes and read rules for what it subscribes to, on topics that do not overlap, or let it log in at the hub"
	for _, c := range []struct {
		name, user, want string
	}{
		{"zigbee2mqtt", `z2m: {preset: "zigbee2mqtt", site: "garage"}`, ``},
		{"readwrite own topics", `app: {site: "garage", acl: ["readwrite app/#"]}`,
			`home.cue:16:36: users.app.acl[0]: site garage: this topic is bridged both ways: what the satellite sends to the hub as app/#, the hub sends back as app/#` + fix},
		{"one way", `app: {site: "garage", acl: ["write app/out/#", "read app/in/#", "read $SYS/#"]}`, ``},
		{"readwrite everything", `app: {site: "garage", acl: ["readwrite #"]}`,
			`home.cue:16:36: users.app.acl[0]: site garage: this topic and devices.door.publishes[0] (out home/door/state) make a loop: what the satellite sends to the hub as home/door/state, the hub sends back as #` + fix},
		{"reads the devices", `app: {site: "garage", acl: ["read home/#"]}`,
			`home.cue:16:36: users.app.acl[0]: site garage: this topic and devices.door.publishes[0] (out home/door/state) make a loop: what the satellite sends to the hub as home/door/state, the hub sends back as home/#` + fix},
		{"node-red preset", `nr: {preset: "nodered", site: "garage"}`,
			`home.cue:16:13: users.nr.preset: site garage: this topic is bridged both ways: what the satellite sends to the hub as nodered/#, the hub sends back as nodered/#` + fix + "\n" +
				`home.cue:16:13: users.nr.preset: site garage: this topic and devices.door.publishes[0] (out home/door/state) make a loop: what the satellite sends to the hub as home/door/state, the hub sends back as home/#` + fix},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := loopBase + "\t}\n}\nusers: " + c.user + "\n"
			got := sitesErrors(t, src)
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// sitesErrors loads the home in src and returns what CheckSites says of it.
func sitesErrors(t *testing.T, src string) string {
	t.Helper()
	cfg, diags := schema.LoadSource("home.cue", []byte(src))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	return CheckSites(cfg).Error()
}
