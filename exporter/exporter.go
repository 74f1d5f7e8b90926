// Package exporter is `mqttgen exporter`: the Prometheus exporter that runs
// beside Mosquitto (monitoring.prometheus), in place of
// sapcc/mosquitto-exporter, whose only way to take a password was its
// container's environment. It logs in with the monitoring user, reading the
// password from a file (a compose secret, or a file apply writes into the
// container before it starts), subscribes to $SYS/#, and serves /metrics
// with the names and types of internal/sysmetrics, the same as the bundled
// broker's own /metrics.
package exporter

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttgen/mqttgen/internal/privileges"
	"github.com/mqttgen/mqttgen/internal/sysmetrics"
)

// ClientID is the exporter's MQTT client id.
const ClientID = "mqttgen-exporter"

// MaxPasswordFile bounds the password file: MQTT's longest password and a
// line end.
const MaxPasswordFile = 65535 + 2

// Options say where the broker is and where to serve.
type Options struct {
	// Broker is tcp://HOST:PORT or ssl://HOST:PORT.
	Broker string
	User   string
	// PasswordFile holds the user's password on one line.
	PasswordFile string
	// Listen is the address of /metrics (host:port).
	Listen string
	Log    io.Writer
}

// ReadPassword reads a password file: one line, at most MaxPasswordFile
// bytes.
func ReadPassword(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPasswordFile+1))
	if err != nil {
		return "", err
	}
	if len(data) > MaxPasswordFile {
		return "", fmt.Errorf("%s: larger than %d bytes", path, MaxPasswordFile)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" || strings.ContainsAny(pw, "\r\n") {
		return "", fmt.Errorf("%s: want the password alone on one line", path)
	}
	return pw, nil
}

// Exporter holds the last value of each $SYS/broker/ topic.
type Exporter struct {
	mu     sync.Mutex
	values map[string]string
}

// New returns an exporter with no values yet.
func New() *Exporter { return &Exporter{values: map[string]string{}} }

// Set records a $SYS message; other topics are ignored.
func (e *Exporter) Set(topic, value string) {
	t, ok := strings.CutPrefix(topic, sysmetrics.Prefix)
	if !ok {
		return
	}
	e.mu.Lock()
	e.values[t] = value
	e.mu.Unlock()
}

// Metrics is /metrics: every value, sorted by topic.
func (e *Exporter) Metrics() []byte {
	e.mu.Lock()
	vals := make([]sysmetrics.Value, 0, len(e.values))
	for t, v := range e.values {
		vals = append(vals, sysmetrics.Value{Topic: t, Value: v})
	}
	e.mu.Unlock()
	slices.SortFunc(vals, func(a, b sysmetrics.Value) int { return strings.Compare(a.Topic, b.Topic) })
	return sysmetrics.Format(vals)
}

// Handler serves /metrics.
func (e *Exporter) Handler() http.Handler {
	return sysmetrics.Handler("mqttgen exporter: metrics at /metrics", e.Metrics)
}

// Run serves /metrics on o.Listen and keeps a subscription to $SYS/# on
// the broker (reconnecting when it goes away) until ctx ends.
func Run(ctx context.Context, o Options) error {
	pw, err := ReadPassword(o.PasswordFile)
	if err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	// Started as root (in its container), it has read its password and
	// bound its port: it runs on as mosquitto (1883), as the broker does.
	if err := privileges.Drop("", o.Log); err != nil {
		ln.Close()
		return err
	}
	e := New()
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	opts := mqtt.NewClientOptions().AddBroker(o.Broker).SetClientID(ClientID).
		SetUsername(o.User).SetPassword(pw).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(2 * time.Second).
		SetMaxReconnectInterval(30 * time.Second).
		// The broker is reached on the project's own network by its
		// service name, which its certificate does not name: liveness
		// of the values matters here, as for the healthcheck.
		SetTLSConfig(&tls.Config{InsecureSkipVerify: true})
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		fmt.Fprintf(o.Log, "connected to %s as %s\n", o.Broker, o.User)
		c.Subscribe("$SYS/#", 0, func(_ mqtt.Client, m mqtt.Message) { e.Set(m.Topic(), string(m.Payload())) })
	})
	opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		fmt.Fprintf(o.Log, "connection to %s lost: %v\n", o.Broker, err)
	})
	c := mqtt.NewClient(opts)
	c.Connect() // retried in the background until the broker answers
	fmt.Fprintf(o.Log, "serving /metrics on %s for %s\n", ln.Addr(), o.Broker)

	select {
	case <-ctx.Done():
	case err = <-served:
	}
	c.Disconnect(250)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
