package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	paho5 "github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// Reconnection backoff of bridges: Mosquitto's restart_timeout default of
// 5 s, doubling to 30 s, with jitter.
var (
	bridgeBackoffBase = 5 * time.Second
	bridgeBackoffMax  = 30 * time.Second
)

func backoff(attempt int) time.Duration {
	d := bridgeBackoffBase << min(attempt, 10)
	d = min(d, bridgeBackoffMax)
	return d/2 + rand.N(d/2+1)
}

// bridge is one `connection` section: a client of a remote broker that
// forwards topics between it and this broker, as Mosquitto's bridges do.
type bridge struct {
	b   *Broker
	cfg *conf.Bridge
	// origin publishes what comes from the remote into this broker; its id
	// marks those messages, so that they are never sent back (no loops).
	origin *mqtt.Client
	// out queues local messages for the remote.
	out    chan packets.Packet
	remote remoteClient
	up     atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	subIDs []int
}

// remoteClient is the connection to the remote broker: MQTT 3.1/3.1.1 on
// paho.mqtt.golang, MQTT 5 on paho.golang.
type remoteClient interface {
	run(ctx context.Context)
	// publish sends one message; for QoS 1 and 2 it returns once the remote
	// acknowledged it.
	publish(ctx context.Context, pk packets.Packet) error
	close()
}

var bridgeSubID atomic.Int64

func init() { bridgeSubID.Store(1 << 20) }

// stateTopic is where Mosquitto publishes whether a bridge is connected,
// here and on the remote.
func (br *bridge) stateTopic() string {
	return "$SYS/broker/connection/" + br.cfg.RemoteClientID + "/state"
}

func newBridge(b *Broker, c *conf.Bridge) (*bridge, error) {
	br := &bridge{b: b, cfg: c, out: make(chan packets.Packet, queueDepth(b.cfg))}
	br.origin = b.srv.NewClient(nil, mqtt.LocalListener, "$bridge/"+c.Name, true)
	tlsCfg, err := bridgeTLS(c)
	if err != nil {
		return nil, err
	}
	switch c.ProtocolVersion {
	case "mqttv50":
		br.remote = &remote5{br: br, tls: tlsCfg}
	default:
		br.remote = &remote3{br: br, tls: tlsCfg}
	}
	return br, nil
}

func bridgeTLS(c *conf.Bridge) (*tls.Config, error) {
	if !c.TLS() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if v, ok := tlsVersions[c.TLSVersion]; ok {
		cfg.MinVersion = v
	}
	pool := x509.NewCertPool()
	switch {
	case c.CAFile != "":
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: bridge_cafile: %w", c.Name, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bridge %s: bridge_cafile %s holds no PEM certificate", c.Name, c.CAFile)
		}
	default:
		entries, err := os.ReadDir(c.CAPath)
		if err != nil {
			return nil, fmt.Errorf("bridge %s: bridge_capath: %w", c.Name, err)
		}
		for _, e := range entries {
			if pem, err := os.ReadFile(filepath.Join(c.CAPath, e.Name())); err == nil {
				pool.AppendCertsFromPEM(pem)
			}
		}
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// localFilter and remoteFilter are a topic line's filters on each side: the
// prefix and the pattern, or the prefix alone for an empty pattern.
func localFilter(t conf.BridgeTopic) string  { return t.LocalPrefix + t.Pattern }
func remoteFilter(t conf.BridgeTopic) string { return t.RemotePrefix + t.Pattern }

// toRemote maps a local topic to the remote's, per a topic line.
func toRemote(t conf.BridgeTopic, topic string) string {
	return t.RemotePrefix + strings.TrimPrefix(topic, t.LocalPrefix)
}

func toLocal(t conf.BridgeTopic, topic string) string {
	return t.LocalPrefix + strings.TrimPrefix(topic, t.RemotePrefix)
}

// start subscribes locally to the outgoing topics and connects.
func (br *bridge) start() error {
	br.ctx, br.cancel = context.WithCancel(context.Background())
	br.setState(false)
	for _, t := range br.cfg.Topics {
		if t.Direction == "in" {
			continue
		}
		id := int(bridgeSubID.Add(1))
		br.subIDs = append(br.subIDs, id)
		err := br.b.srv.Subscribe(localFilter(t), id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			br.forward(t, pk)
		})
		if err != nil {
			return fmt.Errorf("bridge %s: topic %s: %w", br.cfg.Name, localFilter(t), err)
		}
	}
	br.wg.Add(2)
	go func() { defer br.wg.Done(); br.remote.run(br.ctx) }()
	go func() { defer br.wg.Done(); br.send() }()
	return nil
}

// forward queues a local message for the remote. It runs in the
// publisher's goroutine, so it never blocks.
func (br *bridge) forward(t conf.BridgeTopic, pk packets.Packet) {
	if pk.Origin == br.origin.ID || strings.HasPrefix(pk.TopicName, "$SYS/broker/connection/") && pk.Origin == mqtt.InlineClientId {
		return // came from this bridge's remote, or is a bridge state
	}
	out := pk.Copy(false)
	out.TopicName = toRemote(t, pk.TopicName)
	out.FixedHeader.Qos = min(pk.FixedHeader.Qos, t.QoS)
	if out.FixedHeader.Qos == 0 && !br.up.Load() {
		return // QoS 0 is not queued for a disconnected bridge
	}
	select {
	case br.out <- out:
	default:
		br.b.stats.dropped.Add(1)
		br.b.log.logf(logWarning, "Bridge %s: outgoing queue full (max_queued_messages), dropping a message to %s.", br.cfg.Name, out.TopicName)
	}
}

// send publishes queued messages to the remote, retrying QoS 1 and 2 until
// the remote acknowledged them.
func (br *bridge) send() {
	for {
		var pk packets.Packet
		select {
		case <-br.ctx.Done():
			return
		case pk = <-br.out:
		}
		for attempt := 0; ; attempt++ {
			err := br.remote.publish(br.ctx, pk)
			if err == nil || pk.FixedHeader.Qos == 0 || br.ctx.Err() != nil {
				break
			}
			select {
			case <-br.ctx.Done():
				return
			case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second)):
			}
		}
	}
}

// receive publishes a message from the remote here.
func (br *bridge) receive(topic string, payload []byte, qos byte, retain bool) {
	for _, t := range br.cfg.Topics {
		if t.Direction == "out" || !acl.Match(remoteFilter(t), topic) {
			continue
		}
		q := min(qos, t.QoS)
		pk := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: q, Retain: retain},
			TopicName:   toLocal(t, topic),
			Payload:     payload,
		}
		if q > 0 {
			pk.PacketID = 1 // never used: the inline path does not acknowledge
		}
		if err := br.b.srv.InjectPacket(br.origin, pk); err != nil {
			br.b.log.logf(logWarning, "Bridge %s: publishing %s here: %v", br.cfg.Name, pk.TopicName, err)
		}
		return
	}
}

// connected records the connection state, here as Mosquitto does.
func (br *bridge) connected(up bool) {
	if br.up.Swap(up) == up {
		return
	}
	br.setState(up)
	if up {
		br.b.log.logf(logNotice, "Bridge %s connected to %s.", br.cfg.RemoteClientID, strings.Join(br.cfg.Addresses, ", "))
	} else {
		br.b.log.logf(logNotice, "Bridge %s disconnected.", br.cfg.RemoteClientID)
	}
}

func (br *bridge) setState(up bool) {
	v := "0"
	if up {
		v = "1"
	}
	br.b.stats.inline.Add(1)
	br.b.srv.Publish(br.stateTopic(), []byte(v), true, 1)
}

func (br *bridge) stop() {
	if br.cancel == nil {
		return
	}
	br.cancel()
	br.remote.close()
	br.wg.Wait()
	for i, t := range br.outTopics() {
		br.b.srv.Unsubscribe(localFilter(t), br.subIDs[i])
	}
	br.setState(false)
}

func (br *bridge) outTopics() []conf.BridgeTopic {
	var ts []conf.BridgeTopic
	for _, t := range br.cfg.Topics {
		if t.Direction != "in" {
			ts = append(ts, t)
		}
	}
	return ts
}

func (br *bridge) inTopics() []conf.BridgeTopic {
	var ts []conf.BridgeTopic
	for _, t := range br.cfg.Topics {
		if t.Direction != "out" {
			ts = append(ts, t)
		}
	}
	return ts
}

// remote3 is a bridge to an MQTT 3.1 or 3.1.1 broker. Like Mosquitto's
// try_private, it first connects with the bridge flag (protocol level
// 0x83/0x84), which a Mosquitto remote answers by not echoing the bridge's
// own messages back; a remote that refuses it is asked again without.
type remote3 struct {
	br  *bridge
	tls *tls.Config
	mu  sync.Mutex
	c   paho3.Client
}

func (r *remote3) options(pv uint, lost chan<- error) *paho3.ClientOptions {
	br := r.br
	c := br.cfg
	o := paho3.NewClientOptions()
	scheme := "tcp://"
	if r.tls != nil {
		scheme = "ssl://"
		o.SetTLSConfig(r.tls)
	}
	for _, a := range c.Addresses {
		o.AddBroker(scheme + a)
	}
	o.SetClientID(c.RemoteClientID).SetCleanSession(c.CleanSession).SetProtocolVersion(pv)
	if c.RemoteUsername != "" {
		o.SetUsername(c.RemoteUsername)
	}
	if c.HasPassword {
		o.SetPassword(c.RemotePassword)
	}
	o.SetKeepAlive(60 * time.Second).SetPingTimeout(10 * time.Second).SetConnectTimeout(10 * time.Second)
	o.SetAutoReconnect(false).SetConnectRetry(false)
	o.SetWill(br.stateTopic(), "0", 1, true)
	o.SetConnectionLostHandler(func(_ paho3.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	o.SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) {
		br.receive(m.Topic(), m.Payload(), m.Qos(), m.Retained())
	})
	return o
}

func (r *remote3) run(ctx context.Context) {
	br := r.br
	level := uint(4)
	if br.cfg.ProtocolVersion == "mqttv31" {
		level = 3
	}
	private := !br.cfg.NoPrivate
	for attempt := 0; ctx.Err() == nil; {
		pv := level
		if private {
			pv |= 0x80
		}
		lost := make(chan error, 1)
		c := paho3.NewClient(r.options(pv, lost))
		tok := c.Connect()
		if !waitToken(ctx, tok, time.Hour) { // paho's ConnectTimeout ends it
			// Shutting down: the broker must not wait for a remote that
			// does not answer; the attempt ends on its own.
			go func() { <-tok.Done(); c.Disconnect(0) }()
			return
		}
		if err := tok.Error(); err != nil {
			var op *net.OpError
			if private && !(errors.As(err, &op) && op.Op == "dial") {
				private = false // the remote refused the bridge flag: ask plainly
				continue
			}
			br.b.log.logf(logNotice, "Bridge %s: connecting to %s: %v", br.cfg.Name, strings.Join(br.cfg.Addresses, ", "), err)
			if !sleepCtx(ctx, backoff(attempt)) {
				return
			}
			attempt++
			continue
		}
		attempt = 0
		for _, t := range br.inTopics() {
			waitToken(ctx, c.Subscribe(remoteFilter(t), t.QoS, nil), 10*time.Second)
		}
		c.Publish(br.stateTopic(), 1, true, "1")
		r.mu.Lock()
		r.c = c
		r.mu.Unlock()
		br.connected(true)
		select {
		case <-ctx.Done():
			c.Publish(br.stateTopic(), 1, true, "0").WaitTimeout(2 * time.Second)
			c.Disconnect(250)
		case err := <-lost:
			br.b.log.logf(logNotice, "Bridge %s: connection lost: %v", br.cfg.Name, err)
		}
		r.mu.Lock()
		r.c = nil
		r.mu.Unlock()
		br.connected(false)
		if !sleepCtx(ctx, backoff(0)) {
			return
		}
	}
}

// waitToken waits until t completes, d passes or ctx ends, and reports
// whether t completed.
func waitToken(ctx context.Context, t paho3.Token, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.Done():
		return true
	case <-ctx.Done():
	case <-timer.C:
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func (r *remote3) publish(ctx context.Context, pk packets.Packet) error {
	for {
		r.mu.Lock()
		c := r.c
		r.mu.Unlock()
		if c != nil {
			tok := c.Publish(pk.TopicName, pk.FixedHeader.Qos, pk.FixedHeader.Retain, pk.Payload)
			if !waitToken(ctx, tok, 30*time.Second) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("no acknowledgement")
			}
			return tok.Error()
		}
		if pk.FixedHeader.Qos == 0 {
			return nil
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (r *remote3) close() {}

// remote5 is a bridge to an MQTT 5 broker: its subscriptions use No Local
// and Retain As Published, so nothing is echoed back.
type remote5 struct {
	br    *bridge
	tls   *tls.Config
	mu    sync.Mutex
	cm    *autopaho.ConnectionManager
	wasUp atomic.Bool // connected once: reconnections wait the backoff
}

func (r *remote5) run(ctx context.Context) {
	br := r.br
	c := br.cfg
	var urls []*url.URL
	for _, a := range c.Addresses {
		scheme := "mqtt"
		if r.tls != nil {
			scheme = "tls"
		}
		u, err := url.Parse(scheme + "://" + a)
		if err != nil {
			br.b.log.logf(logError, "Bridge %s: address %s: %v", c.Name, a, err)
			return
		}
		urls = append(urls, u)
	}
	expiry := uint32(math.MaxUint32)
	if c.CleanSession {
		expiry = 0
	}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    urls,
		TlsCfg:                        r.tls,
		KeepAlive:                     60,
		CleanStartOnInitialConnection: c.CleanSession,
		SessionExpiryInterval:         expiry,
		ConnectTimeout:                10 * time.Second,
		// autopaho waits ReconnectBackoff(0) before its first attempt too:
		// the first connection goes at once, as remote3's, and one lost
		// waits the backoff, as Mosquitto's restart_timeout.
		ReconnectBackoff: func(attempt int) time.Duration {
			if attempt == 0 && !r.wasUp.Load() {
				return 0
			}
			return backoff(attempt)
		},
		ConnectUsername: c.RemoteUsername,
		WillMessage:     &paho5.WillMessage{Topic: br.stateTopic(), Payload: []byte("0"), QoS: 1, Retain: true},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho5.Connack) {
			r.wasUp.Store(true)
			go func() {
				var subs []paho5.SubscribeOptions
				for _, t := range br.inTopics() {
					subs = append(subs, paho5.SubscribeOptions{Topic: remoteFilter(t), QoS: t.QoS, NoLocal: true, RetainAsPublished: true})
				}
				if len(subs) > 0 {
					if _, err := cm.Subscribe(ctx, &paho5.Subscribe{Subscriptions: subs}); err != nil {
						br.b.log.logf(logWarning, "Bridge %s: subscribing on the remote: %v", c.Name, err)
					}
				}
				cm.Publish(ctx, &paho5.Publish{Topic: br.stateTopic(), Payload: []byte("1"), QoS: 1, Retain: true})
				br.connected(true)
			}()
		},
		OnConnectionDown: func() bool {
			br.connected(false)
			return true
		},
		OnConnectError: func(err error) {
			br.b.log.logf(logNotice, "Bridge %s: connecting to %s: %v", c.Name, strings.Join(c.Addresses, ", "), err)
		},
		ClientConfig: paho5.ClientConfig{
			ClientID: c.RemoteClientID,
			OnPublishReceived: []func(paho5.PublishReceived) (bool, error){func(p paho5.PublishReceived) (bool, error) {
				br.receive(p.Packet.Topic, p.Packet.Payload, p.Packet.QoS, p.Packet.Retain)
				return true, nil
			}},
		},
	}
	if c.HasPassword {
		cfg.ConnectPassword = []byte(c.RemotePassword)
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		br.b.log.logf(logError, "Bridge %s: %v", c.Name, err)
		return
	}
	r.mu.Lock()
	r.cm = cm
	r.mu.Unlock()
	<-ctx.Done()
	dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cm.Disconnect(dctx)
}

func (r *remote5) publish(ctx context.Context, pk packets.Packet) error {
	r.mu.Lock()
	cm := r.cm
	r.mu.Unlock()
	if cm == nil {
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
		return errors.New("not connected")
	}
	if pk.FixedHeader.Qos == 0 && !r.br.up.Load() {
		return nil
	}
	if err := cm.AwaitConnection(ctx); err != nil {
		return err
	}
	_, err := cm.Publish(ctx, &paho5.Publish{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain})
	return err
}

func (r *remote5) close() {}
