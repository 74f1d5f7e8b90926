package broker

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The engine's per-client queue (third_party/mochi, outboundQueue): it
// holds at most MaximumClientWritesPending packets, keeps their order, and
// its writer goroutine runs only while something is queued, so an idle
// client costs no goroutine of its own for writing.
func TestOutboundQueue(t *testing.T) {
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
	if n := cl.QueuedWrites(); n != 0 {
		t.Fatalf("a new client has %d queued", n)
	}
	srv.Clients.Add(cl)
	srv.Topics.Subscribe(cl.ID, packets.Subscription{Filter: "q/#"})

	// The first message's writer blocks in the pipe (nobody reads yet);
	// the next four wait in the queue, the sixth is dropped.
	publish := func(topic string) {
		t.Helper()
		if err := srv.Publish(topic, []byte("m"), false, 0); err != nil {
			t.Fatal(err)
		}
	}
	publish("q/0")
	waitFor(t, "the writer took the first message", func() bool { return cl.QueuedWrites() == 0 })
	if n := writers(); n != 1 {
		t.Fatalf("%d writer goroutines while writing, want 1", n)
	}
	for _, topic := range []string{"q/1", "q/2", "q/3", "q/4", "q/5"} {
		publish(topic)
	}
	if n := cl.QueuedWrites(); n != 4 {
		t.Fatalf("queued = %d, want 4 (the limit)", n)
	}
	if d := srv.Info.MessagesDropped; d != 1 {
		t.Fatalf("dropped = %d, want 1", d)
	}
	// The engine's own reading, on the other end of the pipe.
	r := srv.NewClient(peer, "t", "reader", false)
	for _, want := range []string{"q/0", "q/1", "q/2", "q/3", "q/4"} {
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		var fh packets.FixedHeader
		if err := r.ReadFixedHeader(&fh); err != nil {
			t.Fatal(err)
		}
		pk, err := r.ReadPacket(&fh)
		if err != nil {
			t.Fatal(err)
		}
		if pk.TopicName != want {
			t.Fatalf("got %q, want %q", pk.TopicName, want)
		}
	}
	waitFor(t, "the writer ended with the queue empty", func() bool { return writers() == 0 })
	if n := cl.QueuedWrites(); n != 0 {
		t.Fatalf("queued = %d after all were read", n)
	}
}

// writers counts the goroutines running the engine's writer.
func writers() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "v2.(*Client).writeOutbound(")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
	}
}

// allowAll lets every client read every topic.
type allowAll struct{ mqtt.HookBase }

func (allowAll) ID() string                                 { return "allow" }
func (allowAll) Provides(b byte) bool                       { return b == mqtt.OnACLCheck }
func (allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
