package broker

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// connectIdle connects n authenticated MQTT 3.1.1 clients (keepalive 10
// minutes) that then stay idle; they are closed at the end of the test.
// It returns the memory statistics from before the first, after a
// collection.
func connectIdle(t *testing.T, tb *testBroker, n int) (before runtime.MemStats) {
	t.Helper()
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		c, err := net.Dial("tcp", tb.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "idle-" + strconv.Itoa(i), Clean: true, Keepalive: 600,
				UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true, Password: []byte("alice-pw")}}
		var b bytes.Buffer
		if err := pk.ConnectEncode(&b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
		ack := make([]byte, 4)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, ack); err != nil || ack[3] != 0 {
			t.Fatalf("CONNACK %x %v", ack, err)
		}
	}
	return before
}

// skipUnderRace skips a test of stack sizes under the race detector, whose
// instrumentation enlarges every frame.
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("stack sizes under the race detector are not the broker's: run without -race")
	}
}

// perConn is the growth of the heap and of the goroutine stacks from
// before to after, per connection.
func perConn(before, after *runtime.MemStats, n int) (heap, stack int64) {
	return (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(n), (int64(after.StackInuse) - int64(before.StackInuse)) / int64(n)
}

// What an idle authenticated connection costs the broker in this process
// (make bench measures RSS against Mosquitto): one goroutine, parked with
// a stack small enough to shrink to the runtime's 4 KiB, no writer
// goroutine, no read or write buffer, and about 3 KB of heap, the test's
// own sockets included (docs/broker.md, Memory per idle connection).
func TestIdleConnectionCost(t *testing.T) {
	skipUnderRace(t)
	const n = 1000
	before := connectIdle(t, newTestBroker(t, "user alice\ntopic readwrite #\n", "max_queued_messages 1000\n"), n)
	// A collection halves a stack at most once.
	for range 3 {
		runtime.GC()
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap, stack := perConn(&before, &after, n)
	t.Logf("per idle authenticated connection: heap %d B, stacks %d B", heap, stack)
	if stack > 4096+256 {
		t.Errorf("goroutine stacks %d B per idle connection, want one 4 KiB stack", stack)
	}
	if heap > 4096 {
		t.Errorf("heap %d B per idle connection, want at most 4 KiB", heap)
	}
	if w := writers(); w != 0 {
		t.Errorf("%d writer goroutines with every client idle", w)
	}
}

// The broker gives memory back by itself once clients stop connecting:
// without a collection of the test's, the stacks that grew while the
// clients connected shrink (trimLoop).
func TestTrimAfterBurst(t *testing.T) {
	skipUnderRace(t)
	const n = 1000
	before := connectIdle(t, newTestBroker(t, "user alice\ntopic readwrite #\n", ""), n)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	_, grown := perConn(&before, &after, n)
	var stack int64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		runtime.ReadMemStats(&after)
		if _, stack = perConn(&before, &after, n); stack <= 4096+256 {
			t.Logf("stacks per connection: %d B after connecting, %d B once quiet", grown, stack)
			return
		}
	}
	t.Fatalf("stacks per connection: %d B after connecting, still %d B 10 s later", grown, stack)
}
