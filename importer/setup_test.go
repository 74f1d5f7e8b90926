package importer

import (
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

func listenersOf(t *testing.T, text string) string {
	t.Helper()
	ds := conf.Read("m.conf", []byte(text)).Directives()
	s, err := readSetup(ds)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range s.listeners {
		out = append(out, l.name())
	}
	return strings.Join(out, ", ")
}

// TestDefaultListener: where Mosquitto 2.0.11 listens, as observed with
// `ss -ltn` on these files.
func TestDefaultListener(t *testing.T) {
	for text, want := range map[string]string{
		"allow_anonymous true\n":                                                       "1883 on 127.0.0.1",
		"port 1884\nlistener 1885\n":                                                   "1884, 1885",
		"max_connections 10\nlistener 18941 127.0.0.1\n":                               "1883, 18941 on 127.0.0.1",
		"certfile a.crt\nkeyfile a.key\nlistener 18941 127.0.0.1\n":                    "1883, 18941 on 127.0.0.1",
		"tls_version tlsv1.2\nlistener 18941 127.0.0.1\n":                              "18941 on 127.0.0.1",
		"require_certificate false\nlistener 18941 127.0.0.1\n":                        "18941 on 127.0.0.1",
		"per_listener_settings true\nallow_anonymous true\nlistener 18941 127.0.0.1\n": "18941 on 127.0.0.1",
		"listener 18941\nmax_connections 10\n":                                         "18941",
	} {
		if got := listenersOf(t, text); got != want {
			t.Errorf("%q: listeners %s, want %s", text, got, want)
		}
	}
}
