package broker

import (
	"errors"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
)

// clientState is what the broker keeps about a connection beyond mochi's
// Client.
type clientState struct {
	hasUser     bool
	username    string
	hasPassword bool
	// password is kept, as Mosquitto keeps it, to check the client again
	// against a reloaded password file.
	password string
	authed   bool
	// subscribing counts SUBSCRIBE packets being processed, see OnACLCheck.
	subscribing atomic.Int32
	// dropped is why the broker ended the connection, for the log.
	dropped atomic.Pointer[string]
	// bridge is a Mosquitto bridge (protocol level 0x83 or 0x84): it does
	// not get its own messages back.
	bridge bool
	// ids holds the client's packet ids that the broker's own in-flight
	// messages to it already use, see standIn.
	ids packetIDs
	// window is the client's Receive Maximum (MQTT 5), nil without one.
	window *sendWindow
	// cut holds the messages of a resumed session past the window.
	cut []packets.Packet
	// acls caches the client's access decisions.
	acls aclCache
}

// packetIDs maps packet ids the client chose to stand-ins. MQTT gives
// each direction its own packet ids, but mochi keeps the client's QoS 1
// and 2 PUBLISH, SUBSCRIBE and UNSUBSCRIBE ids and its own deliveries in
// one table: a client whose id is in use by a delivery (a resumed session
// above all) got SUBACK 0x91, or had that delivery deleted by its PUBLISH.
// Such an id is replaced on read by a free one and put back in the
// acknowledgement.
type packetIDs struct {
	mu   sync.Mutex
	n    atomic.Int32 // len(fwd), read without the lock
	fwd  map[uint16]uint16
	back map[uint16]uint16
}

// hook is the broker's own mochi hook: authentication from the password
// file, access control from the acl file with Mosquitto's semantics,
// keepalive and queue limits, delivery order, and statistics.
type hook struct {
	mqtt.HookBase
	b *Broker
}

func (h *hook) ID() string { return "mqttgen" }

func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablish,
		mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnPacketRead, mqtt.OnPublish,
		mqtt.OnSubscribe, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnWill, mqtt.OnQosPublish,
		mqtt.OnPacketEncode, mqtt.OnClientExpired, mqtt.OnPublishDropped, mqtt.OnPacketSent, mqtt.OnRetainMessage:
		return true
	}
	return false
}

// state returns the broker's record of cl, nil for clients restored from
// disk and not connected since.
func (b *Broker) state(cl *mqtt.Client) *clientState {
	st, _ := cl.HookData.Load().(*clientState)
	return st
}

// aclClient is who cl is for the acl file. A client without a username is
// anonymous.
func aclClient(cl *mqtt.Client) acl.Client {
	return acl.Client{Username: string(cl.Properties.Username), ClientID: cl.ID}
}

// sysPrefix marks, from OnPacketRead to OnPublish, a PUBLISH whose topic
// mochi would drop without an acknowledgement because it starts with $SYS:
// Mosquitto acknowledges it and then drops it as an ACL denial.
const sysPrefix = "\x00mqttgen-sys\x00"

// restoreSysTopic undoes OnPacketRead's renaming of a topic.
func restoreSysTopic(topic string) string {
	return strings.TrimPrefix(topic, sysPrefix)
}

// noClientID stands in for the empty client id of an MQTT 3 client that
// wants a persistent session, which OnConnect refuses.
const noClientID = "\x00mqttgen-no-client-id"

// emptyWill stands in for an empty will payload, which MQTT allows and
// mochi refuses; OnConnect puts the empty payload back.
var emptyWill = []byte{0}

// emptyPassword stands in for an empty password, which MQTT allows (the
// password file then decides) and mochi refuses with 0x82, a code MQTT 3
// does not have; OnConnect puts the empty password back.
var emptyPassword = []byte{0}

func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if len(pk.TopicName) >= 4 && strings.EqualFold(pk.TopicName[:4], "$SYS") || strings.HasPrefix(pk.TopicName, sysPrefix) {
			pk.TopicName = sysPrefix + pk.TopicName // OnPublish takes it off
		}
		if pk.FixedHeader.Qos > 0 {
			pk.PacketID = h.b.standIn(cl, pk.PacketID, true)
		}
	case packets.Pubrel:
		pk.PacketID = h.b.standIn(cl, pk.PacketID, false)
	case packets.Puback, packets.Pubcomp, packets.Pubrec:
		if st := h.b.state(cl); st != nil && st.window != nil && (pk.FixedHeader.Type != packets.Pubrec || pk.ReasonCode >= 0x80) {
			st.window.release(pk.PacketID)
		}
	case packets.Subscribe, packets.Unsubscribe:
		pk.PacketID = h.b.standIn(cl, pk.PacketID, true)
	case packets.Connect:
		if pk.ProtocolVersion == 0x83 || pk.ProtocolVersion == 0x84 {
			// A Mosquitto bridge (try_private): MQTT 3.1 or 3.1.1 whose
			// subscriptions do not echo its own messages back.
			pk.ProtocolVersion &^= 0x80
			h.b.bridgeConns.Store(cl, true)
		}
		if pk.Connect.WillFlag && len(pk.Connect.WillPayload) == 0 {
			pk.Connect.WillPayload = emptyWill
		}
		if pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
			pk.Connect.Password = emptyPassword
		}
		if pk.ProtocolVersion < 5 && !pk.Connect.Clean && pk.Connect.ClientIdentifier == "" {
			// mochi refuses this with 0x80, which MQTT 3 does not have;
			// OnConnect refuses it with "identifier rejected", as Mosquitto.
			pk.Connect.ClientIdentifier = noClientID
		}
	}
	return pk, nil
}

// OnConnect checks the keepalive and authenticates, before mochi answers
// the CONNECT: refusals get Mosquitto's CONNACK codes.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	b := h.b
	if p := cl.Properties.Will.Payload; len(p) == 1 && &p[0] == &emptyWill[0] {
		cl.Properties.Will.Payload = []byte{}
	}
	st := &clientState{
		hasUser:     pk.Connect.UsernameFlag,
		username:    string(pk.Connect.Username),
		hasPassword: pk.Connect.PasswordFlag,
		password:    string(pk.Connect.Password),
	}
	if p := pk.Connect.Password; len(p) == 1 && &p[0] == &emptyPassword[0] {
		st.password = ""
	}
	v5 := cl.Properties.ProtocolVersion == 5
	if cl.ID == noClientID {
		cl.ID = ""
		b.refuse(cl, packets.ErrClientIdentifierNotValid, "client id is empty and clean session false")
		return packets.ErrClientIdentifierNotValid
	}

	// max_keepalive, as Mosquitto 2.0: an MQTT 5 client asking for more (or
	// for none) is told the server's keepalive; MQTT 3 clients keep theirs.
	if max := b.cfg.MaxKeepalive; v5 && max > 0 && (int(pk.Connect.Keepalive) > max || pk.Connect.Keepalive == 0) {
		cl.State.Keepalive = uint16(max)
		cl.State.ServerKeepalive = true
	}

	// accept_protocol_versions (Mosquitto 2.1), checked before the login
	// as Mosquitto does: CONNACK 0x84, or 1 for MQTT 3.
	if l := b.listenerConf(cl.Net.Listener); l != nil && !l.Accepts(cl.Properties.ProtocolVersion) {
		b.refuse(cl, packets.ErrUnsupportedProtocolVersion, "protocol version not accepted on this listener")
		return packets.ErrUnsupportedProtocolVersion
	}

	addr := remoteOf(cl)
	if st.hasUser {
		b.logins.wait(addr, b.done)
	}
	sec := b.sec.Load().byListener[cl.Net.Listener]
	if sec == nil || !sec.authenticate(b.cache, st.hasUser, st.username, st.hasPassword, st.password) {
		b.bridgeConns.Delete(cl)
		b.refuse(cl, packets.ErrNotAuthorized, "not authorised")
		if st.hasUser {
			if n, d := b.logins.failed(addr); d > 0 {
				b.log.logf(logNotice, "%d failed logins from %s: its next login waits %v.", n, hostOf(addr), d)
			}
		}
		return packets.ErrNotAuthorized
	}
	if st.hasUser {
		b.logins.succeeded(addr)
	}
	st.authed = true
	_, st.bridge = b.bridgeConns.LoadAndDelete(cl)
	cl.HookData.Store(st)

	// Flow control: mochi's own outbound quota loses messages once the
	// client's Receive Maximum is reached (queued messages are removed from
	// the inflight store when sent, and their acknowledgements no longer
	// return quota), so it is off; the outbound queue of
	// max_queued_messages + max_inflight_messages takes its place.
	cl.State.Inflight.ResetSendQuota(0)
	// No topic aliases towards the client, as Mosquitto 2.0: mochi keeps
	// an aliased message in flight without its topic, which a resumed
	// session (new aliases) cannot resend and the read rules cannot check.
	cl.Properties.Props.TopicAliasMaximum = 0
	if rm := int(cl.Properties.Props.ReceiveMaximum); v5 && rm > 0 && rm < queueDepth(b.cfg) {
		st.window = newSendWindow(rm)
	}
	return nil
}

// refuse answers a CONNECT with code and logs it as Mosquitto does. A
// refused login is logged as Mosquitto 2.0.11 logs it, without a client id
// (measured: "Client <unknown> disconnected, not authorised.").
func (b *Broker) refuse(cl *mqtt.Client, code packets.Code, why string, args ...any) {
	id := cl.ID
	if code == packets.ErrNotAuthorized {
		id = "<unknown>"
		if cl.Properties.ProtocolVersion < 5 {
			code = packets.Err3NotAuthorized // mochi maps 0x87 to nothing MQTT 3 knows
		}
	}
	b.srv.SendConnack(cl, code, false, nil)
	if b.connMsgs.Load() {
		b.log.logf(logNotice, "Client %s disconnected, "+why+".", append([]any{id}, args...)...)
	}
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	st := h.b.state(cl)
	return st != nil && st.authed
}

// OnSessionEstablish runs before mochi takes over an existing session: it
// drops every queued and in-flight message the new connection may not
// read now (another user with the same client id, or rules changed by a
// reload), as Mosquitto does, and puts the rest in the order they were
// queued, so that mochi resends them in that order.
func (h *hook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	if pk.Connect.Clean {
		return
	}
	old, ok := h.b.srv.Clients.Get(cl.ID)
	if !ok || old == cl {
		return
	}
	now := time.Now().Unix()
	for _, m := range old.State.Inflight.GetAll(false) {
		if m.FixedHeader.Type == packets.Publish && (!h.b.canRead(cl, m.TopicName) || expired(m, now)) {
			h.b.dropInflight(old, m.PacketID)
		}
	}
	h.b.renumber(old.State.Inflight)
	if st := h.b.state(cl); st != nil && st.window != nil {
		st.cut = st.window.cut(old.State.Inflight)
	}
}

// expired reports whether an MQTT 5 message's expiry interval has passed:
// mochi resends a queued message however old (with expiry 1).
func expired(pk packets.Packet, now int64) bool {
	return pk.FixedHeader.Type == packets.Publish && pk.Expiry > 0 && pk.Expiry <= now
}

// dropInflight removes the message id from cl's messages in flight.
func (b *Broker) dropInflight(cl *mqtt.Client, id uint16) {
	if cl.State.Inflight.Delete(id) {
		atomic.AddInt64(&b.srv.Info.Inflight, -1)
	}
}

// standIn returns the packet id mochi is to see for id, chosen by the
// client, see packetIDs. A new stand-in is made only when fresh is true
// (the packet starts a flow) and a delivery to the client uses id.
func (b *Broker) standIn(cl *mqtt.Client, id uint16, fresh bool) uint16 {
	st := b.state(cl)
	if st == nil {
		return id
	}
	p := &st.ids
	if p.n.Load() == 0 && !fresh {
		return id
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if y, ok := p.fwd[id]; ok {
		return y
	}
	if !fresh {
		return id
	}
	m, busy := cl.State.Inflight.Get(id)
	if !busy || m.FixedHeader.Type == packets.Pubrec {
		return id // free, or the client's own QoS 2 flow: mochi's to judge
	}
	// Stand-ins come from the top of the range, which mochi's own ids,
	// counting up from 1, reach last.
	for y := uint16(math.MaxUint16); y > 0; y-- {
		if _, used := cl.State.Inflight.Get(y); used || y == id {
			continue
		}
		if _, used := p.back[y]; used {
			continue
		}
		if p.fwd == nil {
			p.fwd, p.back = map[uint16]uint16{}, map[uint16]uint16{}
		}
		p.fwd[id], p.back[y] = y, id
		p.n.Store(int32(len(p.fwd)))
		return y
	}
	return id
}

// clientID puts the client's own packet id back into an acknowledgement
// of a stand-in; done ends the flow.
func (b *Broker) clientID(cl *mqtt.Client, y uint16, done bool) uint16 {
	st := b.state(cl)
	if st == nil || st.ids.n.Load() == 0 {
		return y
	}
	p := &st.ids
	p.mu.Lock()
	defer p.mu.Unlock()
	id, ok := p.back[y]
	if !ok {
		return y
	}
	if done {
		delete(p.back, y)
		delete(p.fwd, id)
		p.n.Store(int32(len(p.fwd)))
	}
	return id
}

// seqBase starts the sequence numbers OnQosPublish writes into Created:
// above any Unix time, so they are told apart from mochi's own values.
const seqBase = int64(1) << 40

// renumber rewrites Created of every inflight message to its rank in
// queueing order. Mochi resends inflight messages sorted by the low 16 bits
// of Created (meant as seconds, so same-second messages come in random
// order); ranks make that sort the queueing order.
func (b *Broker) renumber(in *mqtt.Inflight) {
	all := in.GetAll(false)
	if len(all) == 0 {
		return
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Created&^sentBit < all[j].Created&^sentBit })
	v := b.seq.Add(1 << 17)
	hi := ((v - 1<<17) | 0xffff) + 1
	for i, pk := range all {
		pk.Created = hi + int64(i) | pk.Created&sentBit
		in.Set(pk)
	}
}

// sentBit marks, in Created of a message in flight, that it has been
// written to the client: only then does a resend carry DUP (mochi sets
// DUP on every message of a resumed session, queued ones included).
const sentBit = int64(1) << 62

// OnQosPublish stamps each newly queued outbound message with a sequence
// number, the order renumber restores.
func (h *hook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Dup || pk.Created >= seqBase {
		return
	}
	pk.Created = h.b.seq.Add(1)
	delayedWill(&pk)
	cl.State.Inflight.Set(pk)
}

// delayedWill clears the expiry mochi gives a will sent after its Will
// Delay Interval: it holds the time the will was due, not a message
// expiry, so mochi's own expiry of queued messages and the hook's check
// at delivery dropped every delayed will (and mochi told subscribers a
// message expiry interval of 1 s). Such a will carries the interval in
// its Connect properties.
func delayedWill(pk *packets.Packet) {
	if pk.Connect.WillProperties.WillDelayInterval > 0 {
		pk.Expiry = 0
		pk.Properties.MessageExpiryInterval = 0
		pk.Connect.WillProperties = packets.Properties{}
	}
}

// OnRetainMessage stores a retained delayed will without the due time
// mochi keeps in its expiry (see delayedWill).
func (h *hook) OnRetainMessage(_ *mqtt.Client, pk packets.Packet, r int64) {
	if r <= 0 || pk.Connect.WillProperties.WillDelayInterval == 0 {
		return
	}
	fixed := pk.Copy(false)
	delayedWill(&fixed)
	h.b.srv.Topics.RetainMessage(fixed)
}

func (h *hook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	b := h.b
	// Taking over a session brings mochi's quota back: switch it off again
	// and send anything mochi parked behind it.
	cl.State.Inflight.ResetSendQuota(0)
	if st := b.state(cl); st != nil && st.window != nil {
		st.window.resume(cl, st.cut)
		st.cut = nil
	}
	for _, m := range cl.State.Inflight.GetAll(true) {
		m.Expiry = 0
		cl.State.Inflight.Set(m)
		m.FixedHeader.Dup = true // OnPacketEncode clears it if never sent
		cl.WritePacket(m)
	}
	if b.connMsgs.Load() {
		st := b.state(cl)
		p := map[byte]string{3: "p1", 4: "p2", 5: "p5"}[cl.Properties.ProtocolVersion]
		c := 0
		if pk.Connect.Clean {
			c = 1
		}
		u := ""
		if st != nil && st.hasUser {
			u = ", u'" + st.username + "'"
		}
		b.log.logf(logNotice, "New client connected from %s as %s (%s, c%d, k%d%s).", remoteOf(cl), cl.ID, p, c, cl.State.Keepalive, u)
	}
	b.stats.connections.Add(1)
}

func remoteOf(cl *mqtt.Client) string {
	if cl.Net.Conn != nil {
		return connAddr(cl.Net.Conn.RemoteAddr())
	}
	return cl.Net.Remote
}

func (h *hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	b := h.b
	st := b.state(cl)
	cl.HookData.Store((*clientState)(nil))
	if st != nil && st.window != nil {
		st.window.close()
	}
	if st == nil || !st.authed || !b.connMsgs.Load() {
		return
	}
	cause := cl.StopCause()
	var ne net.Error
	switch {
	case st.dropped.Load() != nil:
		if why := *st.dropped.Load(); why != "" {
			b.log.logf(logNotice, "Client %s disconnected, %s.", cl.ID, why)
		}
	case errors.Is(cause, packets.ErrSessionTakenOver):
		b.log.logf(logNotice, "Client %s already connected, closing old connection.", cl.ID)
	case errors.Is(cause, packets.ErrServerShuttingDown):
	case errors.Is(cause, packets.ErrNotAuthorized):
		b.log.logf(logNotice, "Client %s disconnected, not authorised.", cl.ID)
	case err == nil || errors.Is(cause, packets.CodeDisconnect):
		b.log.logf(logNotice, "Client %s disconnected.", cl.ID)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		b.log.logf(logNotice, "Client %s has exceeded timeout, disconnecting.", cl.ID)
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
		b.log.logf(logNotice, "Client %s closed its connection.", cl.ID)
	case errors.Is(err, packets.ErrPacketTooLarge):
		b.log.logf(logNotice, "Client %s disconnected due to oversize packet.", cl.ID)
	default:
		b.log.logf(logNotice, "Client %s disconnected due to protocol error (%v).", cl.ID, err)
	}
}

// OnPublish decides every client PUBLISH against the acl file. It runs
// after mochi resolved topic aliases, unlike mochi's own ACL check for
// writes, and answers a denial as Mosquitto does: QoS 0 dropped silently,
// MQTT 3 acknowledged as if delivered, MQTT 5 acknowledged with reason
// 0x87 (not authorised).
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	b := h.b
	pk.TopicName = restoreSysTopic(pk.TopicName)
	if cl.Net.Inline {
		return pk, nil
	}
	b.stats.publishBytesIn.Add(int64(len(pk.Payload)))
	sec := b.sec.Load().byListener[cl.Net.Listener]
	if sec != nil && b.mayWrite(cl, b.state(cl), sec, pk.TopicName) {
		return pk, nil
	}
	if b.log.enabled(logDebug) {
		b.log.logf(logDebug, "Denied PUBLISH from %s (d%d, q%d, r%d, m%d, '%s', ... (%d bytes))", cl.ID, b2i(pk.FixedHeader.Dup), pk.FixedHeader.Qos, b2i(pk.FixedHeader.Retain), pk.PacketID, pk.TopicName, len(pk.Payload))
	}
	v5 := cl.Properties.ProtocolVersion == 5
	switch {
	case pk.FixedHeader.Qos == 0:
		return pk, packets.ErrRejectPacket
	case !v5:
		// mochi acknowledges and completes the flow, then drops it.
		return pk, packets.CodeSuccessIgnore
	}
	typ := byte(packets.Puback)
	if pk.FixedHeader.Qos == 2 {
		typ = packets.Pubrec
	}
	cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: typ}, PacketID: pk.PacketID, ReasonCode: packets.ErrNotAuthorized.Code})
	return pk, packets.ErrRejectPacket
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}

// OnACLCheck is called by mochi for three things: a PUBLISH (write), each
// filter of a SUBSCRIBE, and each delivery to a subscriber. Writes are
// decided in OnPublish. Mosquitto never refuses a SUBSCRIBE for access
// (the SUBACK grants it, and read rules filter what is delivered), so a
// SUBSCRIBE check passes and a delivery check applies the read rules.
//
// A filter with a wildcard can only come from a SUBSCRIBE. A filter
// without one looks like a topic: it is a SUBSCRIBE only while the client
// has one in progress and the call comes from mochi's SUBSCRIBE handler
// (checked on the call stack, so a delivery racing with the SUBSCRIBE is
// still filtered).
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return true
	}
	if strings.ContainsAny(topic, "+#") {
		return true
	}
	st := h.b.state(cl)
	if st != nil && st.subscribing.Load() > 0 && calledFromSubscribe() {
		return true
	}
	sec := h.b.sec.Load().byListener[cl.Net.Listener]
	return sec != nil && h.b.mayRead(cl, st, sec, topic)
}

// canRead reports whether cl may receive a message on topic now.
func (b *Broker) canRead(cl *mqtt.Client, topic string) bool {
	sec := b.sec.Load().byListener[cl.Net.Listener]
	return sec != nil && b.mayRead(cl, b.state(cl), sec, topic)
}

const subscribeFunc = "github.com/mochi-mqtt/server/v2.(*Server).processSubscribe"

var pcPool = sync.Pool{New: func() any { return new([16]uintptr) }}

// calledFromSubscribe reports whether mochi's SUBSCRIBE handler is on the
// call stack.
func calledFromSubscribe() bool {
	pcs := pcPool.Get().(*[16]uintptr)
	defer pcPool.Put(pcs)
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if f.Function == subscribeFunc {
			return true
		}
		if !more {
			return false
		}
	}
}

func (h *hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	b := h.b
	if st := b.state(cl); st != nil {
		st.subscribing.Add(1)
		if st.bridge {
			filters := append(packets.Subscriptions(nil), pk.Filters...)
			for i := range filters {
				filters[i].NoLocal = true
				filters[i].RetainAsPublished = true
			}
			pk.Filters = filters
		}
	}
	if b.log.enabled(logSubscribe) {
		for _, f := range pk.Filters {
			b.log.logf(logSubscribe, "%s %d %s", cl.ID, f.Qos, f.Filter)
		}
	}
	return pk
}

func (h *hook) OnSubscribed(cl *mqtt.Client, _ packets.Packet, _ []byte) {
	if st := h.b.state(cl); st != nil {
		st.subscribing.Add(-1)
	}
}

func (h *hook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	b := h.b
	if pk.PacketID == 0 || !b.log.enabled(logUnsubscribe) {
		return // mochi's own cleanup of a session, not a client's UNSUBSCRIBE
	}
	for _, f := range pk.Filters {
		b.log.logf(logUnsubscribe, "%s %s", cl.ID, f.Filter)
	}
}

// OnWill keeps a will the client may not publish from being sent: its
// topic is emptied, which no read rule grants, so nobody receives it.
func (h *hook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	sec := h.b.sec.Load().byListener[cl.Net.Listener]
	if sec != nil && sec.canWrite(aclClient(cl), will.TopicName) {
		return will, nil
	}
	h.b.log.logf(logDebug, "Will of %s to %s denied by the acl file.", cl.ID, will.TopicName)
	will.TopicName = ""
	will.Retain = false
	return will, nil
}

// OnPacketEncode tells MQTT 5 clients max_packet_size in the CONNACK, as
// Mosquitto does; puts the client's own packet ids back into
// acknowledgements (see packetIDs); and checks a message against the read
// rules at delivery, see deliver.
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	b := h.b
	switch pk.FixedHeader.Type {
	case packets.Publish:
		return b.deliver(cl, pk)
	case packets.Connack:
		if pk.ReasonCode == 0 && b.cfg.MaxPacketSize > 0 {
			pk.Properties.MaximumPacketSize = b.cfg.MaxPacketSize
		}
	case packets.Puback, packets.Suback, packets.Unsuback, packets.Pubcomp:
		pk.PacketID = b.clientID(cl, pk.PacketID, true)
		if pk.FixedHeader.Type == packets.Puback && pk.ReasonCode == packets.CodeGrantedQos1.Code {
			pk.ReasonCode = 0 // mochi's "granted QoS 1", not a PUBACK reason code
		}
	case packets.Pubrec:
		done := pk.ReasonCode >= 0x80 && pk.ReasonCode != packets.ErrPacketIdentifierInUse.Code
		pk.PacketID = b.clientID(cl, pk.PacketID, done)
	}
	return pk
}

// deliver is the last look at a message before it is written to cl. A
// message that waited — resent from a session, or routed before the last
// reload — is checked against the read rules in force now, as Mosquitto
// checks at delivery; a denied one is dropped (mochi's write fails on the
// packet type 0 and goes on with the next). A QoS 1 or 2 message is
// marked sent in the session, and carries DUP only if it was sent before.
func (b *Broker) deliver(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk
	}
	cc, _ := cl.Net.Conn.(*coalescingConn)
	if cc != nil {
		cc.waitRoom() // mochi holds no lock here, see coalescingConn.Write
	}
	delayedWill(&pk)
	resent := pk.Created >= seqBase
	if expired(pk, time.Now().Unix()) || (resent || pk.Created <= b.reloaded.Load()) && pk.TopicName != "" && !b.canRead(cl, pk.TopicName) {
		if pk.FixedHeader.Qos > 0 {
			b.dropInflight(cl, pk.PacketID)
		}
		pk.FixedHeader.Type = 0
		if cc != nil && cl.QueuedWrites() == 0 {
			cc.Write(nil) // what the previous deliveries held leaves now
		}
		return pk
	}
	if cc != nil {
		// More deliveries queued: this one waits for them in the
		// connection and the last writes them all. Not for a client with
		// a Maximum Packet Size, where mochi may still refuse to write a
		// packet after this point (and no write would follow).
		cc.hold.Store(cl.Properties.Props.MaximumPacketSize == 0 && cl.QueuedWrites() > 0)
	}
	if pk.FixedHeader.Qos == 0 {
		return pk
	}
	if resent && pk.Created&sentBit == 0 {
		pk.FixedHeader.Dup = false
	}
	if st := b.state(cl); st != nil && st.window != nil {
		st.window.acquire(pk.PacketID, resent)
	}
	// Marked before the write: the client cannot have acknowledged it yet,
	// so the entry is still this message. A connection already closing
	// (mochi closes the socket before it marks the client closed) sends
	// nothing.
	if cc != nil && !cc.open() {
		return pk
	}
	if m, ok := cl.State.Inflight.Get(pk.PacketID); ok && m.FixedHeader.Type == packets.Publish && m.Created >= seqBase && m.Created&sentBit == 0 && m.TopicName == pk.TopicName {
		m.Created |= sentBit
		cl.State.Inflight.Set(m)
	}
	return pk
}

// OnClientExpired removes an expired session's subscriptions and queued
// messages, which mochi leaves in its topic index (a new client with the
// same id would otherwise receive them).
func (h *hook) OnClientExpired(cl *mqtt.Client) {
	h.b.srv.UnsubscribeClient(cl)
	cl.ClearInflights()
	h.b.stats.expired.Add(1)
	h.b.log.logf(logNotice, "Expiring client %s.", cl.ID)
}

func (h *hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.b.stats.dropped.Add(1)
	h.b.noteDrop(cl.ID)
}

// noteDrop logs, as Mosquitto does, that messages to a client whose queue
// is full are dropped: once every thousand, not for each.
func (b *Broker) noteDrop(client string) {
	if b.stats.dropLog.Add(1)%1000 == 1 {
		b.log.logf(logNotice, "Outgoing messages are being dropped for client %s.", client)
	}
}
