// Package verify proves a home's expectations on a real broker, by real
// logins, subscriptions and publishes over MQTT 5: in a sandbox (the engine
// the home deploys, started on loopback from the files the home renders),
// and against the deployed broker, where it sends nothing that could
// actuate a device: logins, writes the acl denies (each must be refused
// with PUBACK 0x87 and reach no subscriber), anonymous logins and TLS
// handshakes. An allowed write is never published to a live broker.
package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqttv3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttgen/mqttgen/aclcheck"
	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/schema"
)

// Listener is one listener of the broker under test, as clients reach it.
type Listener struct {
	Name       string
	Port       int
	TLS        bool
	Websockets bool
	// Anonymous is whether the home says it admits clients without login.
	Anonymous bool
}

// Target is a running broker and how to reach it.
type Target struct {
	// Engine names the broker in the report: "mosquitto", "mqttgen" or
	// "live".
	Engine string
	Host   string
	// Listeners of the home, with the ports the target serves them on.
	Listeners []Listener
	// CA verifies TLS listeners; ServerCert is the certificate (PEM) each
	// must present. Both nil without TLS.
	CA         *x509.CertPool
	ServerCert []byte
	// Live: only what cannot actuate anything is sent.
	Live bool
}

// Check is one line of the report.
type Check struct {
	Engine  string `json:"engine"`
	Account string `json:"account"`
	// What is checked: "login", "anonymous on LISTENER", "tls on
	// LISTENER", or the expectation ("write home/lamp/set: denied").
	What   string `json:"what"`
	Source string `json:"source,omitempty"`
	// Result is "pass", "FAIL" or "skip" (not provable here, say why).
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// Report is every check on one target.
type Report struct {
	Engine string  `json:"engine"`
	Checks []Check `json:"checks"`
}

// OK reports whether no check failed.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if c.Result == "FAIL" {
			return false
		}
	}
	return true
}

// Options tune the timing.
type Options struct {
	// Settle is how long to wait for deliveries after the publishes (1 s
	// when zero); a message not seen by then was not delivered.
	Settle time.Duration
}

// Run checks every account's login, every listener and every expectation
// on the target. passwords holds every account's password.
func Run(ctx context.Context, h *aclcheck.Home, passwords map[string]string, t Target, xs []aclcheck.Expectation, o Options) Report {
	if o.Settle == 0 {
		o.Settle = time.Second
	}
	v := &run{h: h, pw: passwords, t: t, conns: map[string]*conn{}, nonce: nonce()}
	defer v.closeAll()
	rep := Report{Engine: t.Engine}
	rep.Checks = append(rep.Checks, v.listeners(ctx)...)
	rep.Checks = append(rep.Checks, v.logins(ctx)...)
	rep.Checks = append(rep.Checks, v.expectations(ctx, xs, o.Settle)...)
	for i := range rep.Checks {
		rep.Checks[i].Engine = t.Engine
	}
	return rep
}

type run struct {
	h     *aclcheck.Home
	pw    map[string]string
	t     Target
	conns map[string]*conn
	nonce string
}

func nonce() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// conn is one MQTT 5 client and what it received.
type conn struct {
	c    *paho.Client
	mu   sync.Mutex
	got  map[string][]string // payload -> topics
	err  error
	name string
}

func (c *conn) received(payload string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got[payload]) > 0
}

// main is the listener expectations are checked on: the first plain
// MQTT listener, else the first TLS one; for anonymous clients, the first
// of those that admits them.
func (v *run) main(anonymous bool) (Listener, bool) {
	for _, tls := range []bool{false, true} {
		for _, l := range v.t.Listeners {
			if !l.Websockets && l.TLS == tls && (!anonymous || l.Anonymous) {
				return l, true
			}
		}
	}
	return Listener{}, false
}

func (v *run) dial(ctx context.Context, l Listener) (net.Conn, error) {
	addr := net.JoinHostPort(v.t.Host, strconv.Itoa(l.Port))
	d := &net.Dialer{Timeout: 3 * time.Second}
	if l.TLS {
		return tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: v.t.CA, ServerName: v.serverName()})
	}
	return d.DialContext(ctx, "tcp", addr)
}

func (v *run) serverName() string {
	if v.t.CA == nil {
		return ""
	}
	return v.h.Config.Broker.Hostname
}

// connect logs in on listener l as name ("anonymous" for none) with the
// client id; the returned error says why the broker refused.
func (v *run) connect(ctx context.Context, l Listener, name, clientID string) (*conn, error) {
	nc, err := v.dial(ctx, l)
	if err != nil {
		return nil, err
	}
	c := &conn{got: map[string][]string{}, name: name}
	c.c = paho.NewClient(paho.ClientConfig{
		Conn:          nc,
		PacketTimeout: 3 * time.Second,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(p paho.PublishReceived) (bool, error) {
			c.mu.Lock()
			c.got[string(p.Packet.Payload)] = append(c.got[string(p.Packet.Payload)], p.Packet.Topic)
			c.mu.Unlock()
			return true, nil
		}},
		OnClientError: func(err error) { c.mu.Lock(); c.err = err; c.mu.Unlock() },
	})
	cp := &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true}
	if name != schema.AnonymousName {
		cp.Username, cp.UsernameFlag = name, true
		cp.Password, cp.PasswordFlag = []byte(v.pw[name]), true
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ack, err := c.c.Connect(cctx, cp)
	if err != nil {
		nc.Close()
		if ack != nil {
			return nil, fmt.Errorf("CONNACK 0x%02x", ack.ReasonCode)
		}
		return nil, err
	}
	return c, nil
}

// as is the client verify connects as for who: who itself in the sandbox;
// on a live broker, with a client id of verify's own, so that no client of
// the household is taken over (a broker disconnects the older of two
// connections with one client id).
func (v *run) as(who aclcheck.Who) aclcheck.Who {
	if !v.t.Live {
		return who
	}
	return aclcheck.Who{Name: who.Name, ClientID: "mqttgen-verify-" + v.nonce + "-" + who.Name}
}

// client is the shared connection of who on the main listener.
func (v *run) client(ctx context.Context, who aclcheck.Who) (*conn, error) {
	key := who.Name + "\x00" + who.ClientID
	if c, ok := v.conns[key]; ok {
		return c, nil
	}
	l, ok := v.main(who.Anonymous())
	if !ok {
		return nil, fmt.Errorf("no MQTT listener")
	}
	id := who.ClientID
	if id == "" {
		id = "mqttgen-verify-" + v.nonce + "-" + strconv.Itoa(len(v.conns))
	}
	c, err := v.connect(ctx, l, who.Name, id)
	if err != nil {
		return nil, err
	}
	v.conns[key] = c
	return c, nil
}

func (v *run) closeAll() {
	for _, c := range v.conns {
		c.c.Disconnect(&paho.Disconnect{})
	}
}

// listeners checks each listener's anonymous setting and, for TLS, the
// certificate it presents.
func (v *run) listeners(ctx context.Context) []Check {
	var out []Check
	for _, l := range v.t.Listeners {
		if l.TLS {
			out = append(out, v.certificate(l))
		}
		var err error
		if l.Websockets {
			err = v.websocketsLogin(l)
		} else {
			var c *conn
			c, err = v.connect(ctx, l, schema.AnonymousName, "mqttgen-verify-anon-"+v.nonce)
			if c != nil {
				c.c.Disconnect(&paho.Disconnect{})
			}
		}
		admitted := err == nil
		chk := Check{Account: schema.AnonymousName, What: "anonymous on " + l.Name, Result: "pass"}
		switch {
		case admitted && l.Anonymous:
			chk.Detail = "admitted, as the home says"
		case !admitted && !l.Anonymous:
			chk.Detail = "refused (" + err.Error() + "), as the home says"
		case admitted:
			chk.Result, chk.Detail = "FAIL", "admitted, but the home refuses anonymous clients here"
		default:
			chk.Result, chk.Detail = "FAIL", "refused ("+err.Error()+"), but the home admits anonymous clients here"
		}
		out = append(out, chk)
	}
	return out
}

func (v *run) certificate(l Listener) Check {
	chk := Check{What: "tls on " + l.Name, Result: "pass"}
	addr := net.JoinHostPort(v.t.Host, strconv.Itoa(l.Port))
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		chk.Result, chk.Detail = "FAIL", err.Error()
		return chk
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	want := firstCert(v.t.ServerCert)
	switch {
	case len(certs) == 0:
		chk.Result, chk.Detail = "FAIL", "no certificate presented"
	case want != nil && !bytes.Equal(certs[0].Raw, want):
		chk.Result, chk.Detail = "FAIL", fmt.Sprintf("presents %q (serial %s), not the certificate the home renders", certs[0].Subject.CommonName, certs[0].SerialNumber)
	default:
		chk.Detail = "presents the rendered certificate"
	}
	return chk
}

func firstCert(pemData []byte) []byte {
	for len(pemData) > 0 {
		c, rest, ok := cutPEM(pemData)
		if !ok {
			return nil
		}
		if cert, err := x509.ParseCertificate(c); err == nil {
			return cert.Raw
		}
		pemData = rest
	}
	return nil
}

// logins checks that every account logs in with its password.
func (v *run) logins(ctx context.Context) []Check {
	var out []Check
	for _, a := range v.h.Config.Accounts() {
		chk := Check{Account: a.Name, What: "login", Result: "pass"}
		if _, err := v.client(ctx, v.as(aclcheck.Who{Name: a.Name, ClientID: a.Name})); err != nil {
			chk.Result, chk.Detail = "FAIL", "refused: "+err.Error()
		}
		out = append(out, chk)
	}
	return out
}

// probe is one expectation in flight.
type probe struct {
	x        aclcheck.Expectation
	check    Check
	payload  string
	actor    *conn   // publisher
	watchers []*conn // subscribers that may read the topic
	reader   *conn   // for reads: the account under test
	puback   byte
	done     bool
}

// expectations checks each expectation by real subscribe and publish:
// every subscription first, then every publish (QoS 1), then one wait.
func (v *run) expectations(ctx context.Context, xs []aclcheck.Expectation, settle time.Duration) []Check {
	f := v.h.ACL.File
	var ps []*probe
	for i, x := range xs {
		p := &probe{x: x, payload: fmt.Sprintf("mqttgen-verify %s %d", v.nonce, i)}
		p.check = Check{Account: x.As, What: fmt.Sprintf("%s %s: %s", x.Access(), x.Topic, word(x.Allowed)), Source: x.Source}
		ps = append(ps, p)
		who := v.as(x.Who())
		switch {
		case v.t.Live && !x.Write:
			p.check.Result, p.check.Detail, p.done = "skip", "reads are proved in the sandbox (verify without --live)", true
			continue
		case v.t.Live && (x.Allowed || f.Check(who.Client(), x.Topic, acl.Write)):
			// Live, only writes that the home denies are sent.
			p.check.Result, p.check.Detail, p.done = "skip", "allowed writes are never sent to a live broker", true
			continue
		case f.Check(who.Client(), x.Topic, access(x)) != f.Check(x.Who().Client(), x.Topic, access(x)):
			p.check.Result, p.check.Detail, p.done = "skip", "decided by the client id (%c), which verify does not take from a live client; proved in the sandbox", true
			continue
		}
		if _, ok := v.main(who.Anonymous()); who.Anonymous() && !ok {
			p.check.Result, p.done = "pass", true
			p.check.Detail = "no listener admits anonymous clients"
			if x.Allowed {
				p.check.Result = "FAIL"
			}
			continue
		}
		actor, err := v.client(ctx, who)
		if err != nil {
			p.check.Result, p.check.Detail, p.done = "FAIL", "login refused: "+err.Error(), true
			continue
		}
		if x.Write {
			p.actor = actor
			// Watch as every other account the home lets read the topic,
			// and as the writer itself when it may.
			for _, a := range v.h.Config.Accounts() {
				w := v.as(aclcheck.Who{Name: a.Name, ClientID: a.Name})
				if f.Check(w.Client(), x.Topic, acl.Read) {
					if c, err := v.client(ctx, w); err == nil {
						p.watchers = append(p.watchers, c)
					}
				}
			}
			continue
		}
		p.reader = actor
		if strings.HasPrefix(x.Topic, "$SYS") {
			continue // the broker publishes $SYS itself, retained
		}
		for _, a := range v.h.Config.Accounts() {
			w := v.as(aclcheck.Who{Name: a.Name, ClientID: a.Name})
			if f.Check(w.Client(), x.Topic, acl.Write) {
				if c, err := v.client(ctx, w); err == nil {
					p.actor = c
					break
				}
			}
		}
		if p.actor == nil {
			p.check.Result, p.check.Detail, p.done = "skip", "no account may write "+x.Topic+" to prove it", true
		}
	}
	subscribed := map[*conn]map[string]bool{}
	sub := func(c *conn, filter string) {
		if subscribed[c] == nil {
			subscribed[c] = map[string]bool{}
		}
		if subscribed[c][filter] {
			return
		}
		subscribed[c][filter] = true
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		c.c.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	}
	for _, p := range ps {
		if p.done {
			continue
		}
		for _, w := range p.watchers {
			sub(w, wildcard(p.x.Topic))
		}
		if p.reader != nil {
			sub(p.reader, p.x.Topic)
		}
	}
	for _, p := range ps {
		if p.done || p.actor == nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := p.actor.c.Publish(pctx, &paho.Publish{Topic: p.x.Topic, QoS: 1, Retain: !v.t.Live && p.reader == nil, Payload: []byte(p.payload)})
		cancel()
		if resp == nil {
			p.check.Result, p.check.Detail, p.done = "FAIL", "publish: "+err.Error(), true
			continue
		}
		p.puback = resp.ReasonCode
	}
	time.Sleep(settle)
	for _, p := range ps {
		if p.done {
			continue
		}
		var allowed bool
		switch {
		case p.x.Write:
			var seen []string
			for _, w := range p.watchers {
				if w.received(p.payload) {
					seen = append(seen, w.name)
				}
			}
			allowed = p.puback < 0x80 || len(seen) > 0
			p.check.Detail = fmt.Sprintf("PUBACK 0x%02x", p.puback)
			switch {
			case len(seen) > 0:
				p.check.Detail += ", received by " + strings.Join(seen, ", ")
			case len(p.watchers) > 0:
				p.check.Detail += fmt.Sprintf(", received by none of %d subscriber(s) that may read it", len(p.watchers))
			}
		default:
			allowed = p.reader.received(p.payload)
			if strings.HasPrefix(p.x.Topic, "$SYS") {
				allowed = p.reader.receivedTopic(p.x.Topic)
			}
			p.check.Detail = map[bool]string{true: "received", false: "not received"}[allowed]
		}
		p.check.Result = "pass"
		if allowed != p.x.Allowed {
			p.check.Result = "FAIL"
			p.check.Detail += "; the broker " + map[bool]string{true: "allowed", false: "denied"}[allowed] + " it"
		}
	}
	var out []Check
	for _, p := range ps {
		out = append(out, p.check)
	}
	return out
}

func (c *conn) receivedTopic(topic string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ts := range c.got {
		if slices.Contains(ts, topic) {
			return true
		}
	}
	return false
}

// wildcard is the filter watchers subscribe with: the topic's first level
// and #, so that delivery through a wildcard subscription is what is
// tested; a $ topic is subscribed as it is ('#' never matches it).
func wildcard(topic string) string {
	if strings.HasPrefix(topic, "$") {
		return topic
	}
	first, _, ok := strings.Cut(topic, "/")
	if !ok {
		return topic
	}
	return first + "/#"
}

func access(x aclcheck.Expectation) acl.Access {
	if x.Write {
		return acl.Write
	}
	return acl.Read
}

func word(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

// websocketsLogin logs in anonymously on a websockets listener (MQTT 3.1.1
// over ws:// or wss://, path /mqtt as clients use it).
func (v *run) websocketsLogin(l Listener) error {
	scheme := "ws"
	if l.TLS {
		scheme = "wss"
	}
	opts := mqttv3.NewClientOptions().
		AddBroker(fmt.Sprintf("%s://%s/mqtt", scheme, net.JoinHostPort(v.t.Host, strconv.Itoa(l.Port)))).
		SetClientID("mqttgen-verify-ws-" + v.nonce).
		SetConnectTimeout(3 * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false)
	if l.TLS {
		opts.SetTLSConfig(&tls.Config{RootCAs: v.t.CA, ServerName: v.serverName()})
	}
	c := mqttv3.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("no CONNACK within 5 s")
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(100)
	return nil
}
