package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// tlsState holds a listener's certificates; reload swaps them without
// touching the socket, so connected clients stay.
type tlsState struct {
	l   *conf.Listener
	cur atomic.Pointer[tls.Config]
}

var tlsVersions = map[string]uint16{"tlsv1.1": tls.VersionTLS11, "tlsv1.2": tls.VersionTLS12, "tlsv1.3": tls.VersionTLS13}

// build reads the listener's certificate, key and client CA.
func (t *tlsState) build() (*tls.Config, error) {
	l := t.l
	cert, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("listener %s: certfile %s, keyfile %s: %w", l.ID(), l.CertFile, l.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tlsVersions[l.TLSVersion]}
	if l.CAFile != "" {
		pem, err := os.ReadFile(l.CAFile)
		if err != nil {
			return nil, fmt.Errorf("listener %s: cafile: %w", l.ID(), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("listener %s: cafile %s holds no PEM certificate", l.ID(), l.CAFile)
		}
		cfg.ClientCAs = pool
		if l.RequireCertificate {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// serverConfig is the tls.Config of the socket: each handshake takes the
// current certificates.
func (t *tlsState) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tlsVersions[t.l.TLSVersion],
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load(), nil
		},
	}
}

// listener is one `listener` section: TCP or WebSockets, with or without
// TLS, counting its connections against max_connections. It implements
// mochi's listeners.Listener.
type listener struct {
	b    *Broker
	cfg  *conf.Listener
	tls  *tlsState
	ln   net.Listener
	http *http.Server
	// conns counts open connections, for max_connections.
	conns atomic.Int64
	end   atomic.Bool
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string { return l.cfg.ID() }

func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.cfg.Address()
}

func (l *listener) Protocol() string {
	switch {
	case l.cfg.Protocol == "websockets" && l.tls != nil:
		return "wss"
	case l.cfg.Protocol == "websockets":
		return "ws"
	case l.tls != nil:
		return "tls"
	}
	return "tcp"
}

// bind opens the socket; it runs before privileges are dropped.
func (l *listener) bind() error {
	// An IPv4 address (0.0.0.0 included) listens on IPv4 only, as in
	// Mosquitto; Go would open a dual-stack socket for 0.0.0.0.
	network := "tcp"
	if ip := net.ParseIP(l.cfg.Bind); ip != nil {
		network = "tcp6"
		if ip.To4() != nil {
			network = "tcp4"
		}
	}
	ln, err := net.Listen(network, l.cfg.Address())
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.cfg.ID(), err)
	}
	l.ln = ln
	return nil
}

// Init is called by mochi when the listener is added; the socket is open.
func (l *listener) Init(*slog.Logger) error {
	if l.ln == nil {
		return l.bind()
	}
	return nil
}

// admit counts a new connection and reports whether max_connections
// allows it (-1 or 0 is no limit, as in Mosquitto). Mosquitto closes a
// connection over the limit at once.
func (l *listener) admit(remote string) bool {
	n := l.conns.Add(1)
	if max := l.cfg.MaxConnections; max > 0 && n > int64(max) {
		l.conns.Add(-1)
		l.b.log.logf(logNotice, "Client connection from %s denied: max_connections exceeded.", hostOnly(remote))
		return false
	}
	return true
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Serve accepts connections and hands each to the broker, which calls
// mochi's EstablishConnection (the function given here) directly.
func (l *listener) Serve(listeners.EstablishFn) {
	ln := l.ln
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls.serverConfig())
	}
	if l.cfg.Protocol == "websockets" {
		l.serveWebsockets(ln)
		return
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			if l.end.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.b.log.logf(logError, "Accepting on listener %s: %v", l.ID(), err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !l.admit(conn.RemoteAddr().String()) {
			conn.Close()
			continue
		}
		l.b.log.logf(logNotice, "New connection from %s on port %d.", connAddr(conn.RemoteAddr()), l.cfg.Port)
		go l.serveConn(conn)
	}
}

// serveConn runs one connection: the TLS handshake, then the client. The
// goroutine idles below this frame while the client is connected, so the
// handshake is a call of its own (see Broker.establish).
func (l *listener) serveConn(conn net.Conn) {
	defer l.conns.Add(-1)
	if tc, ok := conn.(*tls.Conn); ok && !l.handshake(tc) {
		return
	}
	l.b.establish(l.ID(), conn)
}

// handshake completes a TLS handshake now, with a deadline, so a silent
// client cannot hold a connection slot; errors are logged as Mosquitto
// does.
//
//go:noinline
func (l *listener) handshake(tc *tls.Conn) bool {
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		l.b.log.logf(logNotice, "OpenSSL Error[0]: %v", err)
		l.b.log.logf(logNotice, "Client <unknown> disconnected: protocol error.")
		tc.Close()
		return false
	}
	tc.SetDeadline(time.Time{})
	return true
}

func connAddr(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return fmt.Sprintf("%s:%d", t.IP.String(), t.Port)
	}
	return a.String()
}

var upgrader = websocket.Upgrader{
	Subprotocols: []string{"mqtt", "mqttv3.1"},
	// Mosquitto does not check the Origin header either.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (l *listener) serveWebsockets(ln net.Listener) {
	l.http = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          nil,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !websocket.IsWebSocketUpgrade(r) {
				http.Error(w, "this is an MQTT over WebSockets listener", http.StatusBadRequest)
				return
			}
			if !l.admit(r.RemoteAddr) {
				http.Error(w, "too many connections", http.StatusServiceUnavailable)
				return
			}
			defer l.conns.Add(-1)
			ws, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				l.b.log.logf(logWebsockets, "WebSocket upgrade from %s failed: %v", r.RemoteAddr, err)
				return
			}
			l.b.log.logf(logNotice, "New connection from %s on port %d.", r.RemoteAddr, l.cfg.Port)
			l.b.establish(l.ID(), &wsConn{Conn: ws.NetConn(), ws: ws})
		}),
	}
	err := l.http.Serve(ln)
	if err != nil && !l.end.Load() && !errors.Is(err, http.ErrServerClosed) {
		l.b.log.logf(logError, "WebSockets listener %s: %v", l.ID(), err)
	}
}

func (l *listener) Close(closeClients listeners.CloseFn) {
	if !l.end.CompareAndSwap(false, true) {
		return
	}
	if l.http != nil {
		l.http.Close()
	}
	if l.ln != nil {
		l.ln.Close()
	}
	closeClients(l.ID())
}

// wsConn is a WebSocket connection as the byte stream MQTT runs on, for
// the listeners and for Probe: each binary message carries any number of
// bytes of the stream.
type wsConn struct {
	net.Conn
	ws *websocket.Conn
	r  io.Reader
	wm sync.Mutex
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errors.New("websockets: text frame, MQTT needs binary frames")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wm.Lock()
	defer c.wm.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error { return c.ws.Close() }

// listenerConf is the configuration of the listener of that id, nil for
// none (the inline client).
func (b *Broker) listenerConf(id string) *conf.Listener {
	for _, l := range b.cfg.Listeners {
		if l.ID() == id {
			return l
		}
	}
	return nil
}
