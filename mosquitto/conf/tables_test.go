package conf_test

import (
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

func TestRestartReason(t *testing.T) {
	base := "# c\npersistence true\nlog_type error\nallow_anonymous false\n\nlistener 1883\nprotocol mqtt\n"
	for _, tc := range []struct {
		name, conf string
		restart    bool
	}{
		{"comment only", strings.Replace(base, "# c", "# other", 1), false},
		{"log type", strings.Replace(base, "log_type error", "log_type error\nlog_type warning", 1), false},
		{"anonymous", strings.Replace(base, "allow_anonymous false", "allow_anonymous true", 1), false},
		{"listener", strings.Replace(base, "listener 1883", "listener 1884", 1), true},
		{"listener option", strings.Replace(base, "protocol mqtt", "protocol websockets", 1), true},
		{"user", "user nobody\n" + base, true},
		{"per listener", "per_listener_settings true\n" + base, true},
	} {
		why := conf.RestartReason(conf.Mosquitto, []byte(base), []byte(tc.conf))
		if (why != "") != tc.restart {
			t.Errorf("%s: restart %q, want restart=%v", tc.name, why, tc.restart)
		}
	}
}
