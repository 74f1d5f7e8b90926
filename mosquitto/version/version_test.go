package version

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFromImage(t *testing.T) {
	for ref, want := range map[string]string{
		"eclipse-mosquitto:2.1.2":                 "2.1.2",
		"eclipse-mosquitto:2.0.20":                "2.0.20",
		"eclipse-mosquitto:2.0.20-openssl":        "2.0.20",
		"eclipse-mosquitto:2.1":                   "2.1",
		"registry.local:5000/mosquitto:2.1.2":     "2.1.2",
		"eclipse-mosquitto:2.1.2@sha256:0123abcd": "2.1.2",
		"eclipse-mosquitto:1.6.15":                "1.6.15",
		"eclipse-mosquitto":                       "",
		"eclipse-mosquitto:latest":                "",
		"eclipse-mosquitto:2":                     "",
		"eclipse-mosquitto:openssl":               "",
		"registry.local:5000/mosquitto":           "",
		"eclipse-mosquitto@sha256:0123abcd":       "",
		"mqttgen-test/mosquitto:2.0.11-4242":      "2.0.11",
	} {
		v, ok := FromImage(ref)
		got := ""
		if ok {
			got = v.String()
		}
		if got != want {
			t.Errorf("FromImage(%q) = %q, want %q", ref, got, want)
		}
	}
}

func TestDialect(t *testing.T) {
	v20, _ := Parse("2.0.11")
	v21, _ := Parse("2.1")
	v3, _ := Parse("3.0.0")
	if v20.Plugins() || !v21.Plugins() || !v3.Plugins() {
		t.Error("plugins from 2.1 on")
	}
	if v20.DefaultMaxPacketSize() != 268435455 || v21.DefaultMaxPacketSize() != 2000000 {
		t.Error("max_packet_size defaults")
	}
	if _, err := Parse("2.x"); err == nil {
		t.Error("2.x parsed")
	}
	if v, ok := FromHelp("mosquitto version 2.1.2\n\nmosquitto is an MQTT v5.0/v3.1.1/v3.1 broker.\n"); !ok || v.String() != "2.1.2" {
		t.Errorf("FromHelp = %v %v", v, ok)
	}
}

// TestDetect asks real brokers: Debian's 2.0 (no plugins needed) and the
// 2.1 that $MQTTGEN_MOSQUITTO names (plugins in <prefix>/lib).
func TestDetect(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		l, err := Detect("/usr/sbin/mosquitto", "")
		if err != nil || !l.Version.AtLeast(2, 0) || l.Version.Plugins() {
			t.Errorf("Debian's mosquitto: %+v, %v", l, err)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("CI=true: Debian's mosquitto is missing")
	}
	bin := os.Getenv("MQTTGEN_MOSQUITTO")
	if bin == "" {
		t.Skip("MQTTGEN_MOSQUITTO is not set: detection of a Mosquitto 2.1 build was not run")
	}
	l, err := Detect(bin, "")
	if err != nil {
		t.Fatal(err)
	}
	if !l.Version.Plugins() || l.PluginDir != filepath.Join(filepath.Dir(filepath.Dir(bin)), "lib") {
		t.Errorf("%s: %+v", bin, l)
	}
	if _, err := Detect(bin, t.TempDir()); err == nil {
		t.Error("a --plugin-dir without the plugins was accepted")
	}
}
