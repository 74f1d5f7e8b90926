package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// sendWindow enforces an MQTT 5 client's Receive Maximum: at most max QoS
// 1 and 2 messages sent and not yet acknowledged. mochi's own enforcement
// loses messages (docs/broker.md, Queues), so it is off and this takes its
// place: a delivery past the window waits in OnPacketEncode, where mochi
// holds no lock, and later ones queue behind it in mochi's queue (dropped
// past max_queued_messages, as Mosquitto does).
type sendWindow struct {
	mu   sync.Mutex
	cond sync.Cond
	max  int
	out  map[uint16]struct{}
	// stashed counts a resumed session's messages not sent yet: they go
	// before live ones.
	stashed int
	// reading is set once mochi reads the client's packets: before, it
	// resends a session from the connecting goroutine, which must not wait
	// (no acknowledgement could free the window); the session was cut to
	// the window first.
	reading bool
	closed  bool
}

func newSendWindow(max int) *sendWindow {
	w := &sendWindow{max: max, out: map[uint16]struct{}{}}
	w.cond.L = &w.mu
	return w
}

// acquire waits for room for message id; queued is set for a message of
// the session's queue, which goes before live ones.
func (w *sendWindow) acquire(id uint16, queued bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.out[id]; ok {
		return // a resend of a message in the window
	}
	for !w.closed && w.reading && (len(w.out) >= w.max || !queued && w.stashed > 0) {
		w.cond.Wait()
	}
	w.out[id] = struct{}{}
	if queued && w.stashed > 0 {
		w.stashed--
	}
}

func (w *sendWindow) release(id uint16) {
	w.mu.Lock()
	if _, ok := w.out[id]; ok {
		delete(w.out, id)
		w.cond.Broadcast()
	}
	w.mu.Unlock()
}

func (w *sendWindow) close() {
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
}

// cut takes from a session about to be resumed every message past the
// window, in queueing order, and returns them: mochi resends all it finds
// at once.
func (w *sendWindow) cut(in *mqtt.Inflight) []packets.Packet {
	var rest []packets.Packet
	n := 0
	for _, m := range in.GetAll(false) {
		if m.FixedHeader.Type != packets.Publish && m.FixedHeader.Type != packets.Pubrel {
			continue
		}
		if n < w.max {
			n++
			continue
		}
		if m.FixedHeader.Type == packets.Publish && in.Delete(m.PacketID) {
			rest = append(rest, m)
		}
	}
	w.mu.Lock()
	w.stashed = len(rest)
	w.mu.Unlock()
	return rest
}

// resume runs once mochi has resent a session (or found none) and is
// about to read the client's packets: from now on deliveries wait for the
// window, and the messages cut from a resumed session follow as it lets
// them.
func (w *sendWindow) resume(cl *mqtt.Client, rest []packets.Packet) {
	w.mu.Lock()
	w.reading = true
	w.cond.Broadcast()
	w.mu.Unlock()
	if len(rest) == 0 {
		return
	}
	for i, m := range rest {
		if _, used := cl.State.Inflight.Get(m.PacketID); used {
			// Taken by a delivery in the meantime: a new id.
			id, err := cl.NextPacketID()
			if err != nil {
				continue
			}
			m.PacketID = uint16(id)
		}
		cl.State.Inflight.Set(m)
		rest[i] = m
	}
	go func() {
		for _, m := range rest {
			if cl.Closed() {
				return
			}
			m.FixedHeader.Dup = true // deliver clears it if never sent
			cl.WritePacket(m)
		}
	}()
}
