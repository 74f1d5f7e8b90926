package exporter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetrics: $SYS messages become the metric names and types the bundled
// broker serves; other topics, the version and values without a number
// are left out.
func TestMetrics(t *testing.T) {
	e := New()
	e.Set("$SYS/broker/clients/connected", "3")
	e.Set("$SYS/broker/bytes/received", "1024")
	e.Set("$SYS/broker/uptime", "12 seconds")
	e.Set("$SYS/broker/load/messages/received/1min", "0.52")
	e.Set("$SYS/broker/version", "mosquitto version 2.0.11")
	e.Set("home/kitchen/temperature", "21")
	got := string(e.Metrics())
	for _, want := range []string{
		"# TYPE broker_clients_connected gauge\nbroker_clients_connected 3\n",
		"# TYPE broker_bytes_received counter\nbroker_bytes_received 1024\n",
		"broker_uptime 12\n",
		"# HELP broker_load_messages_received_1min $SYS/broker/load/messages/received/1min: per-minute rate averaged over 1 minutes.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "version") || strings.Contains(got, "kitchen") {
		t.Errorf("metrics hold what they should not:\n%s", got)
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	for content, ok := range map[string]bool{"pw\n": true, "pw": true, "": false, "a\nb\n": false, strings.Repeat("x", MaxPasswordFile+1): false} {
		p := filepath.Join(dir, "pw")
		os.WriteFile(p, []byte(content), 0o600)
		pw, err := ReadPassword(p)
		if (err == nil) != ok || (ok && pw != "pw") {
			t.Errorf("ReadPassword(%.20q) = %q, %v", content, pw, err)
		}
	}
}
