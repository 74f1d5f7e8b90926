package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// The options the bundled broker applies on SIGHUP are those the table in
// mosquitto/conf says it reloads (deploy plans a signal or a new container
// by that table): each option is changed in the file of a running broker,
// which is reloaded, and the test looks at what the broker now does.
func TestReloadAgreesWithTable(t *testing.T) {
	type option struct {
		key, before, after string
		// observe is what the running broker does with the option.
		observe func(tb *testBroker) string
	}
	sec := func(tb *testBroker) *security {
		return tb.b.sec.Load().byListener[tb.b.cfg.Listeners[0].ID()]
	}
	cases := []option{
		{"allow_anonymous", "false", "true", func(tb *testBroker) string {
			return fmt.Sprint(sec(tb).authenticate(tb.b.cache, false, "", false, ""))
		}},
		{"password_file", "passwd", "passwd-bob", func(tb *testBroker) string {
			return fmt.Sprint(sec(tb).authenticate(tb.b.cache, true, "alice", true, "alice-pw"))
		}},
		{"acl_file", "acl", "acl-none", func(tb *testBroker) string {
			return fmt.Sprint(sec(tb).canRead(acl.Client{Username: "alice", ClientID: "a"}, "a/1"))
		}},
		{"log_type", "error", "all", func(tb *testBroker) string { return fmt.Sprint(tb.b.log.enabled(logNotice)) }},
		{"connection_messages", "true", "false", func(tb *testBroker) string { return fmt.Sprint(tb.b.connMsgs.Load()) }},
		{"max_keepalive", "60", "120", func(tb *testBroker) string { return fmt.Sprint(tb.b.cfg.MaxKeepalive) }},
		{"max_packet_size", "1000", "2000", func(tb *testBroker) string { return fmt.Sprint(tb.b.cfg.MaxPacketSize) }},
		{"autosave_interval", "60", "120", func(tb *testBroker) string { return fmt.Sprint(tb.b.cfg.AutosaveInterval) }},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.key] = true
		t.Run(tc.key, func(t *testing.T) {
			tb := newTestBroker(t, "user alice\ntopic read a/#\n", "")
			writeFile(t, filepath.Join(tb.dir, "passwd-bob"), "bob:"+hash(t, "bob-pw")+"\n")
			writeFile(t, filepath.Join(tb.dir, "acl-none"), "user bob\ntopic read b/#\n")
			value := func(v string) string {
				if strings.HasSuffix(tc.key, "_file") {
					return filepath.Join(tb.dir, v)
				}
				return v
			}
			base, err := os.ReadFile(tb.conf)
			if err != nil {
				t.Fatal(err)
			}
			with := func(v string) string {
				var out []string
				for _, l := range strings.Split(strings.TrimSuffix(string(base), "\n"), "\n") {
					if !strings.HasPrefix(l, tc.key+" ") {
						out = append(out, l)
					}
				}
				return tc.key + " " + value(v) + "\n" + strings.Join(out, "\n") + "\n"
			}
			writeFile(t, tb.conf, with(tc.before))
			if err := tb.b.Reload(); err != nil {
				t.Fatal(err)
			}
			before := tc.observe(tb)
			writeFile(t, tb.conf, with(tc.after))
			if err := tb.b.Reload(); err != nil {
				t.Fatal(err)
			}
			applied := tc.observe(tb) != before
			if want := conf.Reloads(conf.Bundled, tc.key); applied != want {
				t.Errorf("%s %s -> %s: the broker applied it on reload: %v; the table says %v", tc.key, tc.before, tc.after, applied, want)
			}
		})
	}
	for _, k := range conf.Reloaded(conf.Bundled) {
		if !seen[k] {
			t.Errorf("the table says the bundled broker reloads %s: add a case proving it", k)
		}
	}
}
