package integration

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// msg is one message a client received.
type msg struct {
	Topic    string
	Payload  string
	Retained bool
}

// client is an MQTT 3.1.1 client whose every received message goes to one
// channel, in the order the broker sent them.
type client struct {
	mqtt.Client
	id   string
	user string
	msgs chan msg
	// pending are messages read while waiting for another one: a later
	// wait may want them (one SUBSCRIBE of several filters delivers their
	// retained messages in any order).
	pending []msg
}

// dial describes one connection.
type dial struct {
	URL      string // tcp://, tls://, ws://
	User     string // empty: anonymous
	Password string
	ID       string // client id; derived from User when empty
	TLS      *tls.Config
	// Durable keeps the session (clean session false).
	Durable bool
}

var clientSeq atomic.Int64

func (d dial) clientID() string {
	if d.ID != "" {
		return d.ID
	}
	u := d.User
	if u == "" {
		u = "anon"
	}
	return fmt.Sprintf("%s-%d", u, clientSeq.Add(1))
}

// connect opens an MQTT 3.1.1 connection; the error is the broker's refusal
// (e.g. packets.ErrorRefusedNotAuthorised) or a network or TLS error.
func connect(t *testing.T, d dial) (*client, error) {
	t.Helper()
	c := &client{id: d.clientID(), user: d.User, msgs: make(chan msg, 10000)}
	o := mqtt.NewClientOptions().
		AddBroker(d.URL).
		SetClientID(c.id).
		SetProtocolVersion(4).
		SetCleanSession(!d.Durable).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(opTimeout).
		SetKeepAlive(30 * time.Second).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			c.msgs <- msg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained()}
		})
	if d.User != "" {
		o.SetUsername(d.User).SetPassword(d.Password)
	}
	if d.TLS != nil {
		o.SetTLSConfig(d.TLS)
	}
	c.Client = mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(connectTimeout + time.Second) {
		return nil, fmt.Errorf("connect %s as %q: %w", d.URL, d.User, errTimeout)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

func mustConnect(t *testing.T, d dial) *client {
	t.Helper()
	c, err := connect(t, d)
	if err != nil {
		t.Fatalf("connect %s as %q: %v", d.URL, d.User, err)
	}
	return c
}

// refusedNotAuthorised expects the broker to refuse the connection with
// CONNACK code 5, not authorised.
func refusedNotAuthorised(t *testing.T, d dial) {
	t.Helper()
	c, err := connect(t, d)
	if err == nil {
		c.Disconnect(0)
		t.Fatalf("%s as %q with password %q: connected, want CONNACK not authorised", d.URL, d.User, d.Password)
	}
	if !errors.Is(err, packets.ErrorRefusedNotAuthorised) {
		t.Fatalf("%s as %q: %v, want CONNACK not authorised", d.URL, d.User, err)
	}
}

// subscribe subscribes at QoS 1 and waits for the SUBACK. Mosquitto never
// checks a SUBSCRIBE against the acl, so it grants every filter.
func (c *client) subscribe(t *testing.T, filters ...string) {
	t.Helper()
	m := map[string]byte{}
	for _, f := range filters {
		m[f] = 1
	}
	tok := c.SubscribeMultiple(m, nil)
	if !tok.WaitTimeout(opTimeout) {
		t.Fatalf("%s: subscribe %v: no SUBACK within %s", c.id, filters, opTimeout)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: subscribe %v: %v", c.id, filters, err)
	}
	for f, q := range tok.(*mqtt.SubscribeToken).Result() {
		if q != 1 {
			t.Fatalf("%s: subscribe %s granted QoS %d, want 1 (Mosquitto grants every SUBSCRIBE)", c.id, f, q)
		}
	}
}

// publish publishes at QoS 1 and waits for the PUBACK. Mosquitto acks a
// denied 3.1.1 publish too and drops it.
func (c *client) publish(t *testing.T, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(opTimeout) {
		t.Fatalf("%s: publish %s: no PUBACK within %s", c.id, topic, opTimeout)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: publish %s: %v", c.id, topic, err)
	}
}

// fenceTopic is a topic the client may read and write by the pattern
// "readwrite clients/%c/#".
func (c *client) fenceTopic() string { return "clients/" + c.id + "/fence" }

// delivered: pub publishes on topic; sub receives it.
func delivered(t *testing.T, pub *client, topic string, sub *client) {
	t.Helper()
	p := payload("ok")
	pub.publish(t, topic, p, false)
	sub.expect(t, topic, p)
}

// dropped: pub publishes on topic, then a fence on fenceTopic (which pub
// may write and sub may read); sub must receive the fence and not the
// message. sub must be subscribed to both topics.
func dropped(t *testing.T, pub *client, topic, fenceTopic string, sub *client) {
	t.Helper()
	p, f := payload("denied"), payload("fence")
	pub.publish(t, topic, p, false)
	pub.publish(t, fenceTopic, f, false)
	sub.expectFence(t, f, payloadIs(p))
}

// payloadIs matches the message with payload p.
func payloadIs(p string) func(msg) bool { return func(m msg) bool { return m.Payload == p } }

// topicIs matches every message on topic.
func topicIs(topic string) func(msg) bool { return func(m msg) bool { return m.Topic == topic } }

// wait returns the first message that match accepts: one read earlier and
// kept, else the next to arrive. A forbidden message arriving before it is
// an error; kept messages are not checked, as they arrived before whatever
// the caller just published.
func (c *client) wait(t *testing.T, what string, match, forbidden func(msg) bool) msg {
	t.Helper()
	for i, m := range c.pending {
		if match(m) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return m
		}
	}
	timeout := time.After(opTimeout)
	for {
		select {
		case m := <-c.msgs:
			if forbidden != nil && forbidden(m) {
				t.Errorf("%s (user %q): received %q on %s, which should not have been delivered", c.id, c.user, m.Payload, m.Topic)
			}
			if match(m) {
				return m
			}
			c.pending = append(c.pending, m)
		case <-timeout:
			t.Fatalf("%s (user %q): %s not delivered within %s", c.id, c.user, what, opTimeout)
			return msg{}
		}
	}
}

// expect waits for the message with payload and checks its topic.
func (c *client) expect(t *testing.T, topic, payload string) msg {
	t.Helper()
	m := c.wait(t, fmt.Sprintf("%q on %s", payload, topic), payloadIs(payload), nil)
	if m.Topic != topic {
		t.Fatalf("%s: %q arrived on %s, want %s", c.id, payload, m.Topic, topic)
	}
	return m
}

// expectTopic waits for any message on topic (e.g. a retained $SYS one).
func (c *client) expectTopic(t *testing.T, topic string) msg {
	t.Helper()
	return c.wait(t, "a message on "+topic, topicIs(topic), nil)
}

// expectFence waits for the fence payload and fails if a forbidden message
// arrived before it. Mosquitto keeps the order of the messages it queues
// for one subscriber (QoS 1), so a message published before the fence and
// not received before it was dropped.
func (c *client) expectFence(t *testing.T, fence string, forbidden func(msg) bool) {
	t.Helper()
	c.wait(t, "fence "+fence, payloadIs(fence), forbidden)
}

// client5 is an MQTT 5 client (paho.golang).
type client5 struct {
	*paho.Client
}

// connect5 opens an MQTT 5 connection. The CONNACK is returned even when
// the broker refuses.
func connect5(t *testing.T, addr, user, password, id string) (*client5, *paho.Connack, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, connectTimeout)
	if err != nil {
		return nil, nil, err
	}
	c := &client5{Client: paho.NewClient(paho.ClientConfig{Conn: conn, PacketTimeout: opTimeout})}
	cp := &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}
	if user != "" {
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = []byte(password), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		return nil, ca, err
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{ReasonCode: 0}) })
	return c, ca, nil
}

// publish5 publishes at QoS 1 and returns the PUBACK's reason code.
func (c *client5) publish5(t *testing.T, topic, payload string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	resp, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
	if resp == nil {
		t.Fatalf("publish %s over MQTT 5: %v", topic, err)
	}
	return resp.ReasonCode
}
