package broker

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The bundled broker serves Prometheus' /metrics itself when Options
// MetricsListen is set (monitoring.prometheus with broker.engine "mqttgen":
// the compose file and deploy set MQTTGEN_METRICS_LISTEN). The values are
// its $SYS values, named as sapcc/mosquitto-exporter names them (the
// exporter mqttgen runs beside Mosquitto): the topic without "$SYS/", with
// "/" and " " turned into "_", so that $SYS/broker/clients/connected is
// broker_clients_connected. The counters of the exporter are counters here
// too, every other value is a gauge; the version and the deprecated
// clients/active and clients/inactive are left out, as the exporter does.
// So dashboards and alerts work unchanged on either engine.

// metricCounters are the exporter's counters.
var metricCounters = map[string]bool{
	"bytes/received": true, "bytes/sent": true,
	"messages/received": true, "messages/sent": true,
	"publish/messages/received": true, "publish/messages/sent": true, "publish/messages/dropped": true,
}

// metricSkipped are the topics the exporter does not export.
var metricSkipped = map[string]bool{"version": true, "clients/active": true, "clients/inactive": true}

// metricHelp describes each value, as Mosquitto's documentation does.
var metricHelp = map[string]string{
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

var leadingNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?`)

// metricName is the exporter's name of a $SYS/broker/ topic.
func metricName(topic string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace("broker/" + topic)
}

// writeMetrics writes the $SYS values in Prometheus' text format (0.0.4):
// those of now for the totals, and the load averages of the last $SYS
// update (they are averages over the sys interval).
func (s *sysTree) writeMetrics(now time.Time) []byte {
	s.mu.Lock()
	vals, _ := s.values(now)
	loads := map[string][3]float64{}
	for name, l := range s.loads {
		loads[name] = *l
	}
	s.mu.Unlock()

	var b bytes.Buffer
	write := func(topic, typ, help, value string) {
		name := metricName(topic)
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, value)
	}
	for _, v := range vals {
		if metricSkipped[v.topic] {
			continue
		}
		num := leadingNumber.FindString(v.value) // "N seconds" -> N
		if num == "" {
			continue
		}
		typ := "gauge"
		if metricCounters[v.topic] {
			typ = "counter"
		}
		help := metricHelp[v.topic]
		if help == "" {
			help = "$SYS/broker/" + v.topic
		}
		write(v.topic, typ, help, num)
	}
	for _, name := range loadNames {
		l, ok := loads[name]
		if !ok {
			continue
		}
		for i, minutes := range []int{1, 5, 15} {
			topic := fmt.Sprintf("load/%s/%dmin", name, minutes)
			write(topic, "gauge", fmt.Sprintf("$SYS/broker/%s: per-minute rate averaged over %d minutes.", topic, minutes),
				strconv.FormatFloat(l[i], 'f', 2, 64))
		}
	}
	return b.Bytes()
}

// metricsServer serves /metrics on its own socket.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
}

// bindMetrics opens the metrics socket; like the listeners', before
// privileges are dropped.
func (b *Broker) bindMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	b.metrics = &metricsServer{ln: ln}
	return nil
}

// serveMetrics starts serving /metrics once the $SYS values exist.
func (b *Broker) serveMetrics() {
	m := b.metrics
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(b.sys.writeMetrics(time.Now()))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "mqttgen broker %s: metrics at /metrics\n", b.opts.Version)
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.logf(logError, "Error: metrics listener %s: %v", m.ln.Addr(), err)
		}
	}()
}

// MetricsAddr is the address /metrics is served on, "" without metrics.
func (b *Broker) MetricsAddr() string {
	if b.metrics == nil {
		return ""
	}
	return b.metrics.ln.Addr().String()
}
