// Package sysmetrics formats a broker's $SYS values as Prometheus metrics,
// named as sapcc/mosquitto-exporter named them: the topic without "$SYS/",
// with "/" and " " turned into "_", so that $SYS/broker/clients/connected is
// broker_clients_connected. The exporter's counters are counters, every
// other value is a gauge; the version and the deprecated clients/active and
// clients/inactive are left out, as the exporter did. Both the bundled
// broker's own /metrics and `mqttgen exporter` (beside Mosquitto) write
// through Format, so dashboards and alerts work unchanged on either engine.
package sysmetrics

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Prefix is the part of a $SYS topic that Value.Topic leaves out.
const Prefix = "$SYS/broker/"

// Value is one $SYS value: Topic below Prefix ("clients/connected"), Value
// as the broker publishes it ("12", "1234 seconds", "0.52").
type Value struct {
	Topic, Value string
}

// counters are the exporter's counters.
var counters = map[string]bool{
	"bytes/received": true, "bytes/sent": true,
	"messages/received": true, "messages/sent": true,
	"publish/messages/received": true, "publish/messages/sent": true, "publish/messages/dropped": true,
}

// skipped are the topics the exporter does not export.
var skipped = map[string]bool{"version": true, "clients/active": true, "clients/inactive": true}

// help describes each value, as Mosquitto's documentation does.
var help = map[string]string{
	"uptime":                    "Seconds since the broker started.",
	"clients/total":             "Clients connected and disconnected with a persistent session.",
	"clients/connected":         "Clients connected now.",
	"clients/disconnected":      "Clients disconnected that have a persistent session.",
	"clients/maximum":           "The most clients connected at once since the broker started.",
	"clients/expired":           "Persistent sessions removed by persistent_client_expiration.",
	"heap/current":              "Bytes of the Go heap in use.",
	"heap/maximum":              "The most bytes of the Go heap in use since the broker started.",
	"messages/received":         "MQTT packets received since the broker started.",
	"messages/sent":             "MQTT packets sent since the broker started.",
	"messages/stored":           "Messages held: retained, and queued or in flight for clients.",
	"store/messages/count":      "Messages held: retained, and queued or in flight for clients.",
	"store/messages/bytes":      "Payload bytes of the retained messages.",
	"publish/messages/received": "PUBLISH packets received since the broker started.",
	"publish/messages/sent":     "PUBLISH packets sent since the broker started.",
	"publish/messages/dropped":  "PUBLISH messages dropped for queue limits since the broker started.",
	"publish/bytes/received":    "Payload bytes of PUBLISH packets received since the broker started.",
	"publish/bytes/sent":        "Payload bytes of PUBLISH packets sent since the broker started.",
	"bytes/received":            "Bytes received since the broker started.",
	"bytes/sent":                "Bytes sent since the broker started.",
	"retained messages/count":   "Retained messages held.",
	"subscriptions/count":       "Subscriptions, of connected clients and of persistent sessions.",
}

var (
	leadingNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?`)
	loadTopic     = regexp.MustCompile(`^load/(.+)/(1|5|15)min$`)
)

// Name is the exporter's name of a topic below Prefix.
func Name(topic string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace("broker/" + topic)
}

// Format writes the values in Prometheus' text format (0.0.4), in the
// order given: the leading number of each value ("N seconds" -> N); values
// without one are left out, as are the skipped topics.
func Format(vals []Value) []byte {
	var b bytes.Buffer
	for _, v := range vals {
		if skipped[v.Topic] {
			continue
		}
		num := leadingNumber.FindString(v.Value)
		if num == "" {
			continue
		}
		typ := "gauge"
		if counters[v.Topic] {
			typ = "counter"
		}
		h := help[v.Topic]
		if m := loadTopic.FindStringSubmatch(v.Topic); h == "" && m != nil {
			h = fmt.Sprintf("%s%s: per-minute rate averaged over %s minutes.", Prefix, v.Topic, m[2])
		}
		if h == "" {
			h = Prefix + v.Topic
		}
		name := Name(v.Topic)
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, h, name, typ, name, num)
	}
	return b.Bytes()
}

// Handler serves GET /metrics from metrics and, at /, one line naming
// what serves them (about).
func Handler(about string, metrics func() []byte) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(metrics())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, about)
	})
	return mux
}
