package importer

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixture is a hand-made setup in the style of a guide or a tool, with
// what importing it must report.
type fixture struct {
	source string
	// lost are the options import cannot express (their text).
	lost []string
	// dropped and translated must be among the notes (their text).
	dropped, translated []string
	// differences the proof must find (their subject).
	differences []string
	// ports to connect to on the real broker (original ports).
	ports []int
	// contains are lines home.cue must hold.
	contains []string
}

var fixtures = map[string]fixture{
	// Seed 000: compose, TLS and websockets listeners, the Performance
	// Tuning block's traps and the bridge, one conf.
	"seed0": {
		source:      "seed0/docker-compose.yml",
		lost:        []string{"max_connections 1024", "message_size_limit 10M"},
		dropped:     []string{"reconnect_delay 5", "reconnect_delay_max 30", "cafile /mosquitto/certs/ca.crt", "ports 1883:1883"},
		translated:  []string{"persistent_client_expiration 1m", "remote_password ***"},
		differences: []string{"listener 9001: max_connections"},
		ports:       []int{8883},
		contains:    []string{`broker: image: "eclipse-mosquitto:latest" // from docker-compose.yml:6`, `persistent_client_expiration: "30d" // from mosquitto/config/mosquitto.conf:32`, `password: file: ".mqttgen/bridges/external-bridge"`},
	},
	// Seed 001's "Basic Configuration File": port, max_packet_size 100,
	// /etc paths that are files beside the conf here.
	"seed1": {
		source:      "seed1/mosquitto.conf",
		lost:        []string{"max_packet_size 100", "max_connections 1000"},
		dropped:     []string{"user mosquitto", "autosave_on_changes false", "use_identity_as_username false"},
		translated:  []string{"port 1883"},
		differences: []string{"listener 1883: max_connections", "max_packet_size"},
		ports:       []int{1883},
		contains:    []string{`users: admin: { // from passwd:1, acl:2`, `acl: ["readwrite homeassistant/#", "readwrite zigbee2mqtt/#", "readwrite tasmota/#", "read $SYS/#"]`},
	},
	// Seed 002: anonymous read of everything, client certificates on 8883,
	// a $6$ hash beside $7$.
	"seed2": {
		source:   "seed2/mosquitto.conf",
		ports:    []int{1883},
		contains: []string{`require_client_certificate: true`, `acl: ["read #", "read $SYS/broker/messages/#"]`},
	},
	// The Home Assistant app's customize folder: include_dir /share/mosquitto
	// with acl_file and password_file confs; devices and presets.
	"hassio": {
		source:   "hassio",
		ports:    []int{1883},
		contains: []string{`devices: kitchen: {`, `availability: true`, `preset: "homeassistant"`, `preset: "tasmota"`, `preset: "zigbee2mqtt"`, `acl: ["readwrite home/frontdoor/lock", "write home/other/lock"]`},
	},
	// NixOS: per_listener_settings, one passwd-N and acl-N per listener.
	"nixos": {
		source:   "nixos/mosquitto.conf",
		ports:    []int{1883, 1884},
		contains: []string{`anonymous: true // from mosquitto.conf:17`, `patterns: ["readwrite clients/%u/#"]`},
	},
	// debops: conf.d included, port and bind_address, plain-text passwords.
	"debops": {
		source:     "debops/mosquitto.conf",
		dropped:    []string{"pid_file /run/mosquitto/mosquitto.pid", "message_size_limit 0", "sys_interval 10"},
		translated: []string{"port 1883", "bind_address 127.0.0.1", "plain-text passwords"},
		ports:      []int{1883},
		contains:   []string{`bind: "127.0.0.1" // from debops.d/00_listener.conf:3`, `autosave_interval: "5m"`},
	},
}

func originalPasswords(users []string) map[string]string {
	m := map[string]string{}
	for _, u := range users {
		m[u] = u + "-original-pw"
	}
	return m
}

// TestFixtures imports each fixture, checks the report and the proof, then
// renders the new home, serves it with Debian's Mosquitto and checks that
// every account logs in with its original password and gets the original
// ACL decisions.
func TestFixtures(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(fixtures)) {
		fx := fixtures[name]
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "home")
			r, err := Import(filepath.Join("testdata", fx.source), dir)
			if err != nil {
				t.Fatal(err)
			}
			// seed0's bridge password never reaches the report or home.cue.
			if strings.Contains(fmt.Sprint(r.Notes, r.Differences)+string(r.Home), "bridgepassword") {
				t.Error("the bridge password is in the report or home.cue")
			}
			byKind := map[Kind][]string{}
			for _, n := range r.Notes {
				byKind[n.Kind] = append(byKind[n.Kind], n.Option)
			}
			if !slices.Equal(sorted(byKind[Lost]), sorted(fx.lost)) {
				t.Errorf("lost %q, want %q\n%v", byKind[Lost], fx.lost, r.Notes)
			}
			for kind, want := range map[Kind][]string{Dropped: fx.dropped, Translated: fx.translated} {
				for _, w := range want {
					if !slices.Contains(byKind[kind], w) {
						t.Errorf("no %s note for %q: %v", kind, w, r.Notes)
					}
				}
			}
			var diffs []string
			for _, d := range r.Differences {
				diffs = append(diffs, d.What)
			}
			if !slices.Equal(diffs, fx.differences) {
				t.Errorf("differences %q, want %q", r.Differences, fx.differences)
			}
			for _, c := range fx.contains {
				if !strings.Contains(string(r.Home), c) {
					t.Errorf("home.cue lacks %q:\n%s", c, r.Home)
				}
			}
			if err := r.Write(""); err != nil {
				t.Fatal(err)
			}
			if err := r.Write(""); err == nil || !strings.Contains(err.Error(), "exists") {
				t.Errorf("a second Write: %v, want a refusal", err)
			}
			src, err := locate(filepath.Join("testdata", fx.source))
			if err != nil {
				t.Fatal(err)
			}
			orig, err := load(src)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := serve(t, dir, fx.ports[0])
			for _, p := range fx.ports {
				checkServed(t, orig, s, p, originalPasswords(usersOf(orig)))
			}
		})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
