package broker

import (
	"net"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// queued reads mochi's per-client queue: this fails when mochi's layout
// changes under the hook (and writes are then no longer held, see
// coalescingConn.hold).
func TestOutboundQueue(t *testing.T) {
	if !outboundKnown {
		t.Fatal("mochi's ClientState has no field outbound of type chan *packets.Packet any more")
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClientWritesPending = 4
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, InlineClient: true})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	conn, peer := net.Pipe()
	defer conn.Close()
	defer peer.Close()
	cl := srv.NewClient(conn, "t", "c", false)
	if n := queued(cl); n != 0 {
		t.Fatalf("a new client has %d queued", n)
	}
	// mochi's own enqueueing: a message published to a subscriber whose
	// write loop is not running stays in its queue.
	srv.Clients.Add(cl)
	srv.Topics.Subscribe(cl.ID, packets.Subscription{Filter: "q/#"})
	for range 3 {
		if err := srv.Publish("q/x", []byte("m"), false, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := queued(cl); n != 3 {
		t.Fatalf("queued = %d after 3 messages to a client that does not write, want 3", n)
	}
}

// allowAll lets every client read every topic.
type allowAll struct{ mqtt.HookBase }

func (allowAll) ID() string                                 { return "allow" }
func (allowAll) Provides(b byte) bool                       { return b == mqtt.OnACLCheck }
func (allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
