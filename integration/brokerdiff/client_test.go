package brokerdiff

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/packets"
)

// rawClient is an MQTT client that works packet by packet, so that the
// differential tests see exactly what each broker answers: CONNACK codes,
// SUBACK codes, PUBACK reason codes, disconnects.
type rawClient struct {
	conn    net.Conn
	version byte
	wmu     sync.Mutex
	nextID  uint16

	mu     sync.Mutex
	msgs   []message
	acks   chan packets.Packet
	closed chan struct{}
	err    error
	// noAck leaves received QoS 1/2 messages unacknowledged, as a slow or
	// crashed subscriber does.
	noAck bool
	// gate pauses reading while held: a stalled subscriber.
	gate sync.Mutex
	// count counts received messages without keeping them.
	countOnly bool
	count     atomic.Int64
	// pubacks counts every PUBACK, even when acks is full.
	pubacks atomic.Int64
}

// message is a received PUBLISH as tests compare it.
type message struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	// Dup is the DUP flag, which only a redelivery may carry.
	Dup bool
	// User holds MQTT 5 user properties as k=v.
	User []string
	// Sub holds MQTT 5 subscription identifiers.
	Sub []int
	// Expiry is MQTT 5's message expiry interval, if any.
	Expiry uint32
	id     uint16
}

func (m message) String() string {
	r := ""
	if m.Retain {
		r = " retained"
	}
	if m.Dup {
		r += " dup"
	}
	if len(m.User) > 0 {
		r += " user[" + strings.Join(m.User, ",") + "]"
	}
	if len(m.Sub) > 0 {
		r += fmt.Sprintf(" sub%v", m.Sub)
	}
	if m.Expiry > 0 {
		r += " expiry"
	}
	return fmt.Sprintf("%s=%q q%d%s", m.Topic, m.Payload, m.QoS, r)
}

// connectOpts are the CONNECT fields tests vary.
type connectOpts struct {
	ClientID  string
	Username  *string
	Password  *string
	Clean     bool
	Keepalive uint16
	Will      *message
	// SessionExpiry is MQTT 5's session expiry interval.
	SessionExpiry uint32
	// TLS dials with TLS; WS over WebSockets.
	TLS *tls.Config
	WS  bool
	// NoAck: see rawClient.noAck.
	NoAck bool
	// ReceiveMaximum is MQTT 5's, 0 for none.
	ReceiveMaximum uint16
	// MaximumPacketSize is MQTT 5's, 0 for none.
	MaximumPacketSize uint32
	// NoProblemInfo sets Request Problem Information to 0.
	NoProblemInfo bool
	// WillDelay is MQTT 5's Will Delay Interval, 0 for none.
	WillDelay uint32
}

func str(s string) *string { return &s }

// dialMQTT connects and returns the client and the CONNACK, or the error
// seen before a CONNACK arrived ("closed" when the broker hung up).
func dialMQTT(addr string, version byte, o connectOpts) (*rawClient, packets.Packet, error) {
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: 3 * time.Second}
	switch {
	case o.WS:
		wd := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 3 * time.Second, TLSClientConfig: o.TLS}
		scheme := "ws"
		if o.TLS != nil {
			scheme = "wss"
		}
		var ws *websocket.Conn
		ws, _, err = wd.Dial(scheme+"://"+addr+"/mqtt", nil)
		if err == nil {
			conn = &wsConn{Conn: ws}
		}
	case o.TLS != nil:
		conn, err = tls.DialWithDialer(d, "tcp", addr, o.TLS)
	default:
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, packets.Packet{}, err
	}
	c := &rawClient{conn: conn, version: version, acks: make(chan packets.Packet, 1024), closed: make(chan struct{}), noAck: o.NoAck}
	ka := o.Keepalive
	if ka == 0 {
		ka = 60
	}
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: version,
		Connect: packets.ConnectParams{
			ProtocolName:     []byte("MQTT"),
			ClientIdentifier: o.ClientID,
			Clean:            o.Clean,
			Keepalive:        ka,
		},
	}
	if o.Keepalive == 0xffff {
		pk.Connect.Keepalive = 0
	}
	if o.Username != nil {
		pk.Connect.UsernameFlag, pk.Connect.Username = true, []byte(*o.Username)
	}
	if o.Password != nil {
		pk.Connect.PasswordFlag, pk.Connect.Password = true, []byte(*o.Password)
	}
	if o.Will != nil {
		pk.Connect.WillFlag = true
		pk.Connect.WillTopic = o.Will.Topic
		pk.Connect.WillPayload = []byte(o.Will.Payload)
		pk.Connect.WillQos = o.Will.QoS
		pk.Connect.WillRetain = o.Will.Retain
		if version == 5 {
			pk.Connect.WillProperties.WillDelayInterval = o.WillDelay
		}
	}
	if version == 5 && o.MaximumPacketSize > 0 {
		pk.Properties.MaximumPacketSize = o.MaximumPacketSize
	}
	if version == 5 && o.NoProblemInfo {
		pk.Properties.RequestProblemInfo, pk.Properties.RequestProblemInfoFlag = 0, true
	}
	if version == 5 && o.ReceiveMaximum > 0 {
		pk.Properties.ReceiveMaximum = o.ReceiveMaximum
	}
	if version == 5 && o.SessionExpiry > 0 {
		pk.Properties.SessionExpiryInterval = o.SessionExpiry
		pk.Properties.SessionExpiryIntervalFlag = true
	}
	if err := c.write(pk); err != nil {
		conn.Close()
		return nil, packets.Packet{}, err
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	ack, err := readPacket(r, version)
	if err != nil {
		conn.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset by peer") {
			return nil, packets.Packet{}, errClosed
		}
		return nil, packets.Packet{}, err
	}
	conn.SetReadDeadline(time.Time{})
	if ack.FixedHeader.Type != packets.Connack {
		conn.Close()
		return nil, ack, fmt.Errorf("got packet type %d, not CONNACK", ack.FixedHeader.Type)
	}
	if ack.ReasonCode != 0 {
		conn.Close()
		return nil, ack, nil
	}
	go c.readLoop(r)
	return c, ack, nil
}

var errClosed = errors.New("closed")

func readPacket(r *bufio.Reader, version byte) (packets.Packet, error) {
	var pk packets.Packet
	b, err := r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = version
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(buf)
	case packets.Publish:
		err = pk.PublishDecode(buf)
	case packets.Puback:
		err = pk.PubackDecode(buf)
	case packets.Pubrec:
		err = pk.PubrecDecode(buf)
	case packets.Pubrel:
		err = pk.PubrelDecode(buf)
	case packets.Pubcomp:
		err = pk.PubcompDecode(buf)
	case packets.Suback:
		err = pk.SubackDecode(buf)
	case packets.Unsuback:
		err = pk.UnsubackDecode(buf)
	case packets.Pingresp:
	case packets.Disconnect:
		err = pk.DisconnectDecode(buf)
	default:
		err = fmt.Errorf("unexpected packet type %d", pk.FixedHeader.Type)
	}
	return pk, err
}

func (c *rawClient) write(pk packets.Packet) error {
	var buf bytes.Buffer
	pk.ProtocolVersion = c.version
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrec:
		err = pk.PubrecEncode(&buf)
	case packets.Pubrel:
		err = pk.PubrelEncode(&buf)
	case packets.Pubcomp:
		err = pk.PubcompEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Unsubscribe:
		err = pk.UnsubscribeEncode(&buf)
	case packets.Pingreq:
		err = pk.PingreqEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	}
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = c.conn.Write(buf.Bytes())
	return err
}

func (c *rawClient) readLoop(r *bufio.Reader) {
	defer close(c.closed)
	for {
		c.gate.Lock()
		c.gate.Unlock()
		pk, err := readPacket(r, c.version)
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		switch pk.FixedHeader.Type {
		case packets.Publish:
			c.count.Add(1)
			if !c.countOnly {
				c.mu.Lock()
				m := message{Topic: pk.TopicName, Payload: string(pk.Payload), QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain, Dup: pk.FixedHeader.Dup, id: pk.PacketID}
				for _, u := range pk.Properties.User {
					m.User = append(m.User, u.Key+"="+u.Val)
				}
				m.Sub = pk.Properties.SubscriptionIdentifier
				m.Expiry = pk.Properties.MessageExpiryInterval
				c.msgs = append(c.msgs, m)
				c.mu.Unlock()
			}
			if c.noAck {
				continue
			}
			switch pk.FixedHeader.Qos {
			case 1:
				c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID})
			case 2:
				c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pk.PacketID})
			}
		case packets.Pubrel:
			c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubcomp}, PacketID: pk.PacketID})
		case packets.Disconnect:
			c.acks <- pk
			c.mu.Lock()
			c.err = fmt.Errorf("DISCONNECT 0x%02x", pk.ReasonCode)
			c.mu.Unlock()
			return
		default:
			if pk.FixedHeader.Type == packets.Puback {
				c.pubacks.Add(1)
			}
			select {
			case c.acks <- pk:
			default:
			}
		}
	}
}

func (c *rawClient) id() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

// await returns the next acknowledgement of type typ, or "closed" or
// "timeout".
func (c *rawClient) await(typ byte, d time.Duration) (packets.Packet, string) {
	t := time.NewTimer(d)
	defer t.Stop()
	ended := false
	for {
		// Once the reader has ended, what it queued before still counts,
		// a DISCONNECT above all (select picks either when both are ready).
		if ended && len(c.acks) == 0 {
			return packets.Packet{}, "closed"
		}
		select {
		case pk := <-c.acks:
			if pk.FixedHeader.Type == packets.Disconnect {
				return pk, fmt.Sprintf("DISCONNECT 0x%02x", pk.ReasonCode)
			}
			if pk.FixedHeader.Type == typ {
				return pk, ""
			}
		case <-c.closed:
			ended = true
		case <-t.C:
			return packets.Packet{}, "timeout"
		}
	}
}

// publish sends a message and returns how the broker answered: "sent" for
// QoS 0, "puback 0x00", "pubrec 0x87 ..." and so on, or "closed".
func (c *rawClient) publish(topic, payload string, qos byte, retain bool) string {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos, Retain: retain}, TopicName: topic, Payload: []byte(payload)}
	if qos > 0 {
		pk.PacketID = c.id()
	}
	if err := c.write(pk); err != nil {
		return "closed"
	}
	switch qos {
	case 0:
		return "sent"
	case 1:
		ack, bad := c.await(packets.Puback, 3*time.Second)
		if bad != "" {
			return bad
		}
		return fmt.Sprintf("puback 0x%02x", ack.ReasonCode)
	}
	rec, bad := c.await(packets.Pubrec, 3*time.Second)
	if bad != "" {
		return bad
	}
	if rec.ReasonCode >= 0x80 {
		return fmt.Sprintf("pubrec 0x%02x", rec.ReasonCode)
	}
	if err := c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: pk.PacketID}); err != nil {
		return "closed"
	}
	comp, bad := c.await(packets.Pubcomp, 3*time.Second)
	if bad != "" {
		return "pubrec then " + bad
	}
	return fmt.Sprintf("pubcomp 0x%02x", comp.ReasonCode)
}

// publishWith sends pk, a QoS 1 or 2 PUBLISH to which it gives a packet
// id, and returns the broker's first answer (PUBACK or PUBREC) as it came,
// or "closed" or "timeout"; a QoS 2 flow is completed.
func (c *rawClient) publishWith(pk packets.Packet) (packets.Packet, string) {
	pk.FixedHeader.Type = packets.Publish
	pk.PacketID = c.id()
	if err := c.write(pk); err != nil {
		return packets.Packet{}, "closed"
	}
	typ := byte(packets.Puback)
	if pk.FixedHeader.Qos == 2 {
		typ = packets.Pubrec
	}
	ack, bad := c.await(typ, 3*time.Second)
	if bad == "" && typ == packets.Pubrec && ack.ReasonCode < 0x80 {
		c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel, Qos: 1}, PacketID: pk.PacketID})
		c.await(packets.Pubcomp, 3*time.Second)
	}
	return ack, bad
}

// publishN sends n QoS 1 messages without waiting between them and
// returns once every PUBACK arrived, or reports how many did.
func (c *rawClient) publishN(topic string, n int, d time.Duration) int {
	return c.publishSized(topic, n, 0, d)
}

// publishSized is publishN with payloads of size bytes (at least the
// message's number).
func (c *rawClient) publishSized(topic string, n, size int, d time.Duration) int {
	go func() {
		for i := range n {
			payload := []byte(strconv.Itoa(i))
			if len(payload) < size {
				payload = append(payload, make([]byte, size-len(payload))...)
			}
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: topic, Payload: payload}
			pk.PacketID = uint16(i%65535) + 1
			if c.write(pk) != nil {
				return
			}
		}
	}()
	base := c.pubacks.Load()
	for deadline := time.Now().Add(d); c.pubacks.Load()-base < int64(n) && time.Now().Before(deadline); {
		select {
		case <-c.closed:
			return int(c.pubacks.Load() - base)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return int(c.pubacks.Load() - base)
}

// subscribeWith sends one SUBSCRIBE with these subscriptions (and a
// subscription identifier when id > 0) and returns the SUBACK codes.
func (c *rawClient) subscribeWith(id int, subs ...packets.Subscription) string {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: c.id(), Filters: subs}
	if id > 0 {
		pk.Properties.SubscriptionIdentifier = []int{id}
	}
	if err := c.write(pk); err != nil {
		return "closed"
	}
	ack, bad := c.await(packets.Suback, 3*time.Second)
	if bad != "" {
		return bad
	}
	var codes []string
	for _, b := range ack.ReasonCodes {
		codes = append(codes, fmt.Sprintf("0x%02x", b))
	}
	return strings.Join(codes, ",")
}

// unsubscribeCodes returns the UNSUBACK's reason codes (MQTT 5).
func (c *rawClient) unsubscribeCodes(filters ...string) string {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe, Qos: 1}, PacketID: c.id()}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f})
	}
	if err := c.write(pk); err != nil {
		return "closed"
	}
	ack, bad := c.await(packets.Unsuback, 3*time.Second)
	if bad != "" {
		return bad
	}
	var codes []string
	for _, b := range ack.ReasonCodes {
		codes = append(codes, fmt.Sprintf("0x%02x", b))
	}
	return strings.Join(codes, ",")
}

// subscribe returns the SUBACK codes, one per filter, like "0x01".
func (c *rawClient) subscribe(qos byte, filters ...string) string {
	subs := make([]packets.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = packets.Subscription{Filter: f, Qos: qos}
	}
	return c.subscribeWith(0, subs...)
}

// unsubscribe returns "ok" once UNSUBACK arrived, or what came instead.
func (c *rawClient) unsubscribe(filters ...string) string {
	r := c.unsubscribeCodes(filters...)
	if r == "closed" || r == "timeout" || strings.HasPrefix(r, "DISCONNECT") {
		return r
	}
	return "ok"
}

// ping sends PINGREQ and reports "pong", "closed" or "timeout".
func (c *rawClient) ping() string {
	if err := c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}); err != nil {
		return "closed"
	}
	if _, bad := c.await(packets.Pingresp, 3*time.Second); bad != "" {
		return bad
	}
	return "pong"
}

// disconnect ends the session cleanly: no will. It returns once the
// broker has closed the connection, so that it has processed the
// DISCONNECT before the test goes on (what is published next is queued).
func (c *rawClient) disconnect() {
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}})
	select {
	case <-c.closed:
	case <-time.After(2 * time.Second):
	}
	c.conn.Close()
	<-c.closed
}

// drop closes the connection without DISCONNECT: the will is sent.
func (c *rawClient) drop() {
	c.conn.Close()
	<-c.closed
}

// isClosed reports whether the broker closed the connection within d.
func (c *rawClient) isClosed(d time.Duration) bool {
	select {
	case <-c.closed:
		return true
	case <-time.After(d):
		return false
	}
}

// received waits until n messages arrived or d passed, then returns them
// all in arrival order.
func (c *rawClient) received(n int, d time.Duration) []message {
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		got := len(c.msgs)
		c.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]message(nil), c.msgs...)
}

// quiet waits d and returns what arrived: to check nothing else comes.
func (c *rawClient) quiet(d time.Duration) []message {
	time.Sleep(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]message(nil), c.msgs...)
}

// ackAll acknowledges every QoS 1 message received so far (for a client
// made with NoAck).
func (c *rawClient) ackAll() {
	c.mu.Lock()
	msgs := append([]message(nil), c.msgs...)
	c.mu.Unlock()
	for _, m := range msgs {
		if m.QoS == 1 {
			c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: m.id})
		}
	}
}

func (c *rawClient) reset() {
	c.mu.Lock()
	c.msgs = nil
	c.mu.Unlock()
}

func fmtMsgs(ms []message) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

func sortedMsgs(ms []message) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = m.String()
	}
	sort.Strings(s)
	return "[" + strings.Join(s, " ") + "]"
}

// wsConn is a WebSocket connection as a byte stream.
type wsConn struct {
	*websocket.Conn
	r io.Reader
}

func (w *wsConn) Read(p []byte) (int, error) {
	for {
		if w.r == nil {
			_, r, err := w.NextReader()
			if err != nil {
				return 0, err
			}
			w.r = r
		}
		n, err := w.r.Read(p)
		if errors.Is(err, io.EOF) {
			w.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (w *wsConn) Write(p []byte) (int, error) {
	if err := w.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *wsConn) SetDeadline(t time.Time) error {
	w.SetReadDeadline(t)
	return w.SetWriteDeadline(t)
}
