package broker

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/mqttgen/mqttgen/internal/sysmetrics"
)

// The bundled broker serves Prometheus' /metrics itself when Options
// MetricsListen is set (monitoring.prometheus with broker.engine "mqttgen":
// the compose file and deploy set MQTTGEN_METRICS_LISTEN): its $SYS values,
// named and typed by internal/sysmetrics, as `mqttgen exporter` serves
// Mosquitto's.

// metricName is the exporter's name of a $SYS/broker/ topic.
func metricName(topic string) string { return sysmetrics.Name(topic) }

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

	var out []sysmetrics.Value
	for _, v := range vals {
		out = append(out, sysmetrics.Value{Topic: v.topic, Value: v.value})
	}
	for _, name := range loadNames {
		l, ok := loads[name]
		if !ok {
			continue
		}
		for i, minutes := range []int{1, 5, 15} {
			out = append(out, sysmetrics.Value{Topic: fmt.Sprintf("load/%s/%dmin", name, minutes), Value: strconv.FormatFloat(l[i], 'f', 2, 64)})
		}
	}
	return sysmetrics.Format(out)
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
	m.srv = &http.Server{Handler: sysmetrics.Handler(fmt.Sprintf("mqttgen broker %s: metrics at /metrics", b.opts.Version), func() []byte { return b.sys.writeMetrics(time.Now()) }), ReadHeaderTimeout: 10 * time.Second}
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
