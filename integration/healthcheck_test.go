package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
)

// TestHealthcheckLogin (issue 14, item 6): the container healthcheck's
// command, mosquitto_sub with its login read from the rendered options file
// through XDG_CONFIG_HOME, on Mosquitto 2.0 and 2.1 (each with its own
// mosquitto_sub): it exits 0 every time, each run logs in as the probe
// account, and the broker logs no refusal, though the probe account's acl
// denies the topic it subscribes to. (deploy TestHealthcheckQuiet runs the
// same in containers on the engine, with 2.0 and the bundled broker.)
func TestHealthcheckLogin(t *testing.T) {
	t.Parallel()
	forEachMosquitto(t, func(t *testing.T, m mosq) {
		path := filepath.Join(t.TempDir(), "home.cue")
		if err := os.WriteFile(path, []byte(`package home
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
patterns: ["readwrite clients/%c/#"]
`), 0o644); err != nil {
			t.Fatal(err)
		}
		hm := openHome(t, m, path)
		hm.render(t)
		b := startBroker(t, m, "healthcheck", hm.conf(), hm.addr("mqtt"))
		sub, err := exec.LookPath("mosquitto_sub")
		if m.name == "2.1" {
			sub = filepath.Join(filepath.Dir(filepath.Dir(m.bin)), "bin", "mosquitto_sub")
			_, err = os.Stat(sub)
		}
		if err != nil {
			t.Fatalf("mosquitto_sub: %v", err)
		}
		login := filepath.Join(hm.Out, filepath.FromSlash(generators.ProbeLoginPath))
		if st, err := os.Stat(login); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("the probe's login file: %v", err)
		}
		for range 3 {
			cmd := exec.Command(sub, "-h", "127.0.0.1", "-p", fmt.Sprint(hm.Ports["mqtt"]), "-t", "mqttgen/healthcheck", "-E", "-i", "mqttgen-healthcheck", "-W", "5")
			cmd.Env = append(append(os.Environ(), m.env...), "XDG_CONFIG_HOME="+filepath.Dir(login))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the healthcheck's mosquitto_sub: %v\n%s", err, out)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(b.allLogs(), "u'"+schema.ProbeUser+"'") < 3 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		logs := b.allLogs()
		if n := strings.Count(logs, "u'"+schema.ProbeUser+"'"); n < 3 {
			t.Errorf("%d logins of %s in the log, want 3:\n%s", n, schema.ProbeUser, logs)
		}
		for _, refusal := range []string{"not authorised", "not authorized", "Denied", "denied"} {
			if strings.Contains(logs, refusal) {
				t.Errorf("the broker logged %q:\n%s", refusal, logs)
			}
		}
	})
}
