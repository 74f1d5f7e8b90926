// Package broker is mqttgen's own MQTT broker: a drop-in for Mosquitto
// that serves the files `mqttgen render` writes for Mosquitto
// (mosquitto.conf, passwd, acl, certificates) with Mosquitto 2.0's
// semantics, on the mochi-mqtt server.
//
// Like Mosquitto, it knows only the rendered files: it never reads
// home.cue. docs/broker.md lists what it supports and every known
// difference from Mosquitto.
package broker

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// Options are what the configuration file does not say.
type Options struct {
	// Stdout and Stderr receive log_dest stdout and stderr; the process's
	// own when nil.
	Stdout, Stderr io.Writer
	// Version is reported in the log and in $SYS/broker/version.
	Version string
	// AfterBind runs once every listener's socket is open and before any
	// file is read: Run drops root privileges there, as Mosquitto does.
	AfterBind func() error
	// SysInterval is how often $SYS topics are updated; 10 s when zero, as
	// Mosquitto's sys_interval.
	SysInterval time.Duration
	// MetricsListen is the address (host:port) to serve Prometheus'
	// /metrics on; "" serves none. It is not a mosquitto.conf option:
	// Mosquitto would refuse it (see metrics.go).
	MetricsListen string

	// connectTimeout is how long a new connection may take to send its
	// CONNECT: 90 s, as Mosquitto 2.0.11 (measured: closed after 90–95 s
	// with the default keepalive of 60 s times 1.5). Tests shorten it.
	connectTimeout time.Duration
	// shutdownWait bounds how long Close waits for connections to end
	// before it writes the database: 5 s. Tests shorten it.
	shutdownWait time.Duration
	// loginDelay is the first delay of a login after repeated failures
	// from its address (loginThrottle): 100 ms. Tests shorten it.
	loginDelay time.Duration
}

// Broker is one running broker.
type Broker struct {
	cfg  *conf.Config
	opts Options
	log  *logger
	srv  *mqtt.Server
	hook *hook

	sec     atomic.Pointer[securityState]
	cache   *verifyCache
	tls     map[string]*tlsState
	lns     []*listener
	bridges []*bridge
	conns   connSet // every connection handed to mochi
	// bridgeConns marks connections of Mosquitto bridges between their
	// CONNECT and OnConnect.
	bridgeConns sync.Map
	seq         atomic.Int64
	logins      *loginThrottle
	// reloaded is when the last reload changed the rules (Unix seconds):
	// a message routed before then is checked again at delivery.
	reloaded atomic.Int64
	// connMsgs is connection_messages, which a reload may change.
	connMsgs atomic.Bool
	stats    stats
	store    *store
	sys      *sysTree
	metrics  *metricsServer

	started time.Time
	// running is set once Start succeeded: only then is there a state to
	// save (a failed start must never overwrite the database).
	running bool
	mu      sync.Mutex // serialises Start, Reload, Flush and Close
	done    chan struct{}
	wg      sync.WaitGroup
	closed  bool
}

type stats struct {
	sockets, connections, expired, dropped atomic.Int64
	// dropLog counts every dropped message, for the log's cadence.
	dropLog                         atomic.Int64
	publishBytesIn, publishBytesOut atomic.Int64
	// inline counts the broker's own $SYS publishes, which mochi counts as
	// received and Mosquitto does not.
	inline atomic.Int64
}

// mochiVersion is the version of the MQTT engine.
const mochiVersion = mqtt.Version

// New prepares a broker for the configuration c. It opens the log
// destinations and nothing else.
func New(c *conf.Config, opts Options) (*Broker, error) {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Version == "" {
		opts.Version = "devel"
	}
	if opts.SysInterval == 0 {
		opts.SysInterval = 10 * time.Second
	}
	if opts.connectTimeout == 0 {
		opts.connectTimeout = 90 * time.Second
	}
	if opts.shutdownWait == 0 {
		opts.shutdownWait = 5 * time.Second
	}
	if opts.loginDelay == 0 {
		opts.loginDelay = 100 * time.Millisecond
	}
	lg, err := newLogger(c, opts.Stdout, opts.Stderr)
	if err != nil {
		return nil, err
	}
	b := &Broker{cfg: c, opts: opts, log: lg, cache: newVerifyCache(), tls: map[string]*tlsState{}, done: make(chan struct{}), logins: &loginThrottle{base: opts.loginDelay}}
	b.seq.Store(seqBase)
	b.connMsgs.Store(c.ConnectionMessages)
	b.hook = &hook{b: b}
	for _, l := range c.Listeners {
		ln := &listener{b: b, cfg: l}
		if l.TLS() {
			ln.tls = &tlsState{l: l}
			b.tls[l.ID()] = ln.tls
		}
		b.lns = append(b.lns, ln)
	}
	if c.Persistence {
		b.store = &store{b: b, path: storePath(c.PersistenceLocation)}
	}
	return b, nil
}

// queueDepth is how many QoS 1 and 2 messages a client may have queued and
// in flight before more are dropped: max_queued_messages plus
// max_inflight_messages, as in Mosquitto, within the 65,535 packet
// identifiers a client has (0, unlimited in Mosquitto, is that maximum).
func queueDepth(c *conf.Config) int {
	if c.MaxQueuedMessages == 0 || c.MaxInflightMessages == 0 {
		return math.MaxUint16
	}
	return min(c.MaxQueuedMessages+c.MaxInflightMessages, math.MaxUint16)
}

func (b *Broker) capabilities() *mqtt.Capabilities {
	c := b.cfg
	caps := mqtt.NewDefaultServerCapabilities()
	// Retained and queued messages never expire on their own (mochi's
	// default purges them after 24 h).
	caps.MaximumMessageExpiryInterval = 0
	depth := queueDepth(c)
	// The per-client outbound channel is the queue: mochi drops a message,
	// QoS 1 and 2 included, when it is full (8,192 by default).
	caps.MaximumClientWritesPending = int32(depth)
	caps.MaximumInflight = uint16(depth)
	caps.MaximumPacketSize = c.MaxPacketSize
	caps.ReceiveMaximum = math.MaxUint16
	// A PUBACK or PUBREC carries no properties of the message it answers
	// (mochi echoes its user properties by default, which strict MQTT 5
	// clients reject; Mosquitto sends none).
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	if e := c.PersistentClientExpiration; e > 0 {
		caps.MaximumSessionExpiryInterval = uint32(min(e/time.Second, math.MaxUint32))
	}
	return caps
}

// Start opens the listeners, reads the password, acl and certificate files,
// restores the persistence database and starts serving.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.started = time.Now()
	b.log.logf(logNotice, "mqttgen broker %s (mochi-mqtt %s) starting", b.opts.Version, mochiVersion)
	b.log.logf(logNotice, "Config loaded from %s.", b.cfg.File)
	for _, ln := range b.lns {
		if err := ln.bind(); err != nil {
			b.closeSockets()
			return err
		}
		b.log.logf(logNotice, "Opening %s listen socket on %s.", ln.Protocol(), ln.Address())
	}
	if b.opts.MetricsListen != "" {
		if err := b.bindMetrics(b.opts.MetricsListen); err != nil {
			b.closeSockets()
			return err
		}
		b.log.logf(logNotice, "Opening metrics listen socket on %s (Prometheus /metrics).", b.metrics.ln.Addr())
	}
	if b.opts.AfterBind != nil {
		if err := b.opts.AfterBind(); err != nil {
			b.closeSockets()
			return err
		}
	}
	sec, err := loadSecurity(b.cfg)
	if err != nil {
		b.closeSockets()
		return err
	}
	b.sec.Store(sec)
	for _, t := range b.tls {
		cfg, err := t.build()
		if err != nil {
			b.closeSockets()
			return err
		}
		t.cur.Store(cfg)
	}

	tuneGC()
	b.srv = mqtt.New(&mqtt.Options{
		Capabilities: b.capabilities(),
		Logger:       slog.New(&slogHandler{l: b.log, dropped: b.noteDrop}),
		InlineClient: true,
		// Every packet is handed to the connection wrapper at once: it
		// writes deliveries queued for one client together (see
		// coalescingConn.hold) in buffers it reuses, where mochi's own
		// buffer (2 KiB by default) was allocated and grown for every
		// burst and copied each packet once more.
		ClientNetWriteBufferSize: 1,
		// mochi's read buffer, allocated for every connection, idle or
		// not (2 KiB by default): the wrapper reads in larger chunks into
		// buffers it takes only once input has arrived (coalescingConn.read),
		// so mochi's own buffer can be small.
		ClientNetReadBufferSize: 512,
		// mochi's own $SYS topics are replaced by Mosquitto's (sys.go).
		SysTopicResendInterval: 1 << 32,
	})
	if err := b.srv.AddHook(b.hook, nil); err != nil {
		b.closeSockets()
		return err
	}
	for _, ln := range b.lns {
		if err := b.srv.AddListener(ln); err != nil {
			b.closeSockets()
			return err
		}
	}
	if b.store != nil {
		if err := b.store.restore(); err != nil {
			b.closeSockets()
			return err
		}
	}
	if err := b.srv.Serve(); err != nil {
		b.closeSockets()
		return err
	}
	b.clearMochiSys()
	for _, c := range b.cfg.Bridges {
		br, err := newBridge(b, c)
		if err == nil {
			err = br.start()
		}
		if err != nil {
			close(b.done)
			b.stopBridges()
			b.srv.Close()
			return err
		}
		b.bridges = append(b.bridges, br)
	}
	pub := func(topic, msg string) {
		b.stats.inline.Add(1)
		b.srv.Publish(topic, []byte(msg), false, 0)
	}
	b.log.topic.Store(&pub)
	b.sys = newSysTree(b)
	b.wg.Add(2)
	go b.sysLoop()
	go b.trimLoop()
	if b.metrics != nil {
		b.serveMetrics()
	}
	if b.store != nil && b.cfg.AutosaveInterval > 0 {
		b.wg.Add(1)
		go b.autosave()
	}
	b.running = true
	b.log.logf(logNotice, "mqttgen broker %s running", b.opts.Version)
	return nil
}

func (b *Broker) closeSockets() {
	for _, ln := range b.lns {
		if ln.ln != nil {
			ln.ln.Close()
		}
	}
	if b.metrics != nil {
		b.metrics.ln.Close()
	}
}

// Addrs returns the address each listener is bound to, by listener ID.
func (b *Broker) Addrs() map[string]string {
	m := map[string]string{}
	for _, ln := range b.lns {
		m[ln.ID()] = ln.Address()
	}
	return m
}

// establish hands a new connection to mochi, its writes coalesced, and
// waits until it ends. The connection's goroutine idles below this frame
// for as long as the client stays connected: the work before and after is
// in functions of their own and mochi's EstablishConnection is called
// directly (it is the EstablishFn the listeners get), so that the stack an
// idle client keeps is small enough to shrink to 4 KiB (docs/broker.md).
func (b *Broker) establish(id string, conn net.Conn) {
	cc := b.admitConn(id, conn)
	if cc == nil {
		return
	}
	err := b.srv.EstablishConnection(id, cc)
	b.connEnded(id, cc, err)
}

// admitConn wraps conn and reads its first packet; nil when the
// connection already ended.
//
//go:noinline
func (b *Broker) admitConn(id string, conn net.Conn) *coalescingConn {
	b.stats.sockets.Add(1)
	// mochi sets no deadline before the CONNECT: a client that never sends
	// one would hold its connection, and the broker's shutdown, for ever.
	// mochi replaces this deadline with the client's keepalive once it has
	// read the CONNECT.
	conn.SetReadDeadline(time.Now().Add(b.opts.connectTimeout))
	cc := newCoalescingConn(conn)
	if !b.conns.add(cc) {
		return nil // the broker is closing
	}
	// mochi makes a client (its state and buffers) as soon as it has the
	// connection: it gets it once the first packet has arrived, so that a
	// connection that sends nothing costs only this goroutine and what it
	// sent.
	first, err := readFirstPacket(conn, b.cfg.MaxPacketSize)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			b.log.logf(logNotice, "Client <unknown> has exceeded timeout, disconnecting.")
		} else if b.log.enabled(logDebug) {
			b.log.logf(logDebug, "Connection from %s on listener %s ended before its CONNECT: %v", conn.RemoteAddr(), id, err)
		}
		cc.Close()
		b.conns.remove(cc)
		return nil
	}
	cc.pending = first
	return cc
}

// connEnded logs how mochi's handling of cc ended and forgets cc.
//
//go:noinline
func (b *Broker) connEnded(id string, cc *coalescingConn, err error) {
	defer b.conns.remove(cc)
	var ne net.Error
	if err != nil && strings.HasPrefix(err.Error(), "read connection: ") && errors.As(err, &ne) && ne.Timeout() {
		b.log.logf(logNotice, "Client <unknown> has exceeded timeout, disconnecting.")
	} else if err != nil && b.log.enabled(logDebug) {
		b.log.logf(logDebug, "Connection from %s on listener %s ended: %v", cc.RemoteAddr(), id, err)
	}
}

// preReadLimit is how much of a first packet is read before mochi gets
// the connection when max_packet_size does not say: mochi reads the rest.
const preReadLimit = 64 << 10

// readFirstPacket reads the first MQTT packet of a connection: its fixed
// header and as much of its body as arrives, up to max (or preReadLimit).
// A malformed header ends the reading early: mochi judges the packet.
func readFirstPacket(conn net.Conn, max uint32) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(conn, hdr[:1]); err != nil {
		return nil, err
	}
	n, mul, i := 0, 1, 1
	for ; i < len(hdr); i++ {
		if _, err := io.ReadFull(conn, hdr[i:i+1]); err != nil {
			return nil, err
		}
		n += int(hdr[i]&0x7f) * mul
		mul *= 128
		if hdr[i]&0x80 == 0 {
			break
		}
	}
	if i == len(hdr) {
		return hdr[:], nil
	}
	limit := preReadLimit
	if max > 0 {
		limit = min(limit, int(max))
	}
	buf := bytes.NewBuffer(append(make([]byte, 0, i+1+min(n, 512)), hdr[:i+1]...))
	if _, err := buf.ReadFrom(io.LimitReader(conn, int64(min(n, limit)))); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Reload re-reads the configuration file, then the password and acl files
// and the certificates, as Mosquitto does on SIGHUP: connected clients
// stay, clients whose credentials no longer pass are disconnected, and new
// access rules apply at once. If anything fails to load, the previous rules
// stay in force and the error is returned: a broken file never opens
// access. Listener and limit changes need a restart.
func (b *Broker) Reload() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || !b.running {
		return errors.New("broker is not running")
	}
	b.log.logf(logNotice, "Reloading config.")
	err := b.reload()
	if err != nil {
		b.log.logf(logError, "Error: Reload failed, the previous passwords, access rules and certificates stay in force: %v", err)
	}
	return err
}

func (b *Broker) reload() error {
	nc, err := conf.Load(b.cfg.File)
	if err != nil {
		return err
	}
	// Listener options are not reloaded (as in Mosquitto); the security
	// options of each running listener come from the new file.
	running := &conf.Config{PerListenerSettings: nc.PerListenerSettings, Security: nc.Security}
	for _, ln := range b.lns {
		var found *conf.Listener
		for _, l := range nc.Listeners {
			if l.ID() == ln.cfg.ID() {
				found = l
			}
		}
		if found == nil {
			return fmt.Errorf("%s: listener %s is gone: listeners change only with a restart", nc.File, ln.cfg.ID())
		}
		running.Listeners = append(running.Listeners, &conf.Listener{Port: ln.cfg.Port, Bind: ln.cfg.Bind, Security: found.Security})
	}
	sec, err := loadSecurity(running)
	if err != nil {
		return err
	}
	certs := map[string]*tls.Config{}
	for id, t := range b.tls {
		cfg, err := t.build()
		if err != nil {
			return err
		}
		certs[id] = cfg
	}
	if limitsChanged(b.cfg, nc) {
		b.log.logf(logWarning, "Limits and persistence options changed in %s: they take effect at the next restart.", nc.File)
	}
	b.sec.Store(sec)
	b.reloaded.Store(time.Now().Unix())
	for id, t := range b.tls {
		t.cur.Store(certs[id])
	}
	b.log.setTypes(nc.LogTypes)
	b.connMsgs.Store(nc.ConnectionMessages)
	if err := b.log.reopen(); err != nil {
		b.log.logf(logError, "Reopening the log file: %v", err)
	}
	b.recheckClients(sec)
	return nil
}

func limitsChanged(a, n *conf.Config) bool {
	return a.MaxPacketSize != n.MaxPacketSize || a.MaxQueuedMessages != n.MaxQueuedMessages ||
		a.MaxInflightMessages != n.MaxInflightMessages || a.PersistentClientExpiration != n.PersistentClientExpiration ||
		a.MaxKeepalive != n.MaxKeepalive || a.Persistence != n.Persistence ||
		a.PersistenceLocation != n.PersistenceLocation || a.AutosaveInterval != n.AutosaveInterval
}

// recheckClients disconnects every connected client the new rules would
// not admit: anonymous clients where anonymous access ended, and clients
// whose password no longer verifies.
func (b *Broker) recheckClients(sec *securityState) {
	var refused []*mqtt.Client
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() {
			continue
		}
		st := b.state(cl)
		if st == nil {
			continue
		}
		s := sec.byListener[cl.Net.Listener]
		if s != nil && s.authenticate(b.cache, st.hasUser, st.username, st.hasPassword, st.password) {
			continue
		}
		refused = append(refused, cl)
	}
	b.drop(refused, packets.ErrNotAuthorized, "not authorised")
}

// drop ends the clients' connections the way a network failure would, so
// that their wills are sent, as Mosquitto does when it disconnects a
// client; MQTT 5 clients are first told why. why is logged with each
// disconnection; "" logs nothing. The clients are ended in parallel, each
// in at most about two seconds.
func (b *Broker) drop(cls []*mqtt.Client, code packets.Code, why string) {
	var wg sync.WaitGroup
	for _, cl := range cls {
		wg.Go(func() {
			if st := b.state(cl); st != nil {
				st.dropped.Store(&why)
			}
			cc, _ := cl.Net.Conn.(*coalescingConn)
			if cc == nil {
				return
			}
			// A client that does not read can hold mochi's write lock (its
			// write loop blocked in a write), which the DISCONNECT waits
			// for: after a second the socket is closed under it.
			t := time.AfterFunc(closeFlushTimeout, cc.abort)
			defer t.Stop()
			if cl.Properties.ProtocolVersion == 5 {
				cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: code.Code})
			}
			cc.Close()
		})
	}
	wg.Wait()
}

// stopBridges stops every bridge, in parallel: each may take a couple of
// seconds to tell its remote it is going.
func (b *Broker) stopBridges() {
	var wg sync.WaitGroup
	for _, br := range b.bridges {
		wg.Go(br.stop)
	}
	wg.Wait()
}

// Flush writes the persistence database now, as SIGUSR1 does in
// Mosquitto.
func (b *Broker) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.store == nil || !b.running || b.closed {
		return nil
	}
	return b.store.save()
}

// Close disconnects every client, stops the listeners and writes the
// persistence database.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if !b.running {
		b.closeSockets()
		b.log.close()
		return nil
	}
	b.log.logf(logNotice, "mqttgen broker %s terminating", b.opts.Version)
	close(b.done)
	if b.metrics != nil && b.metrics.srv != nil {
		b.metrics.srv.Close()
	}
	b.wg.Wait()
	b.stopBridges()
	b.log.topic.Store(nil)
	// End every connection as Mosquitto does, wills included, before mochi
	// closes the listeners (it would send MQTT 3 clients a DISCONNECT they
	// must not receive, and lose the will of a client that had not started
	// reading yet).
	var open []*mqtt.Client
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Net.Inline && !cl.Closed() {
			open = append(open, cl)
		}
	}
	b.drop(open, packets.ErrServerShuttingDown, "")
	// Then every connection still open, above all those that have not sent
	// their CONNECT yet: mochi's Close waits for them (and counts them from
	// within, racing its own wait), so they are waited for here, wills
	// sent, before mochi closes.
	b.conns.closeAll()
	// With every socket closed they end at once. Should one not (a bug),
	// the database is written all the same, inside Docker's 10 s grace
	// period, and the broker stops without waiting for it.
	if !finishes(b.opts.shutdownWait, b.conns.wait) {
		b.log.logf(logWarning, "Warning: connections still open %v into the shutdown; stopping without them.", b.opts.shutdownWait)
	}
	var err error
	if b.store != nil {
		err = b.store.save()
	}
	// mochi closes the listeners, then waits for every connection.
	finishes(time.Second, func() { b.srv.Close() })
	b.log.close()
	return err
}

// finishes runs f and reports whether it returned within d; if not, f
// goes on in the background.
func finishes(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
