package broker

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// idleCost connects n authenticated MQTT 3.1.1 clients that then stay idle
// and returns the heap and goroutine stack they cost the broker, per
// connection (the test's own sockets included: they are in this process).
func idleCost(t *testing.T, tb *testBroker, n int) (heap, stack int64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", tb.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "idle-" + string(rune('a'+i%26)) + itoa(i), Clean: true, Keepalive: 600,
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
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(n), (int64(after.StackInuse) - int64(before.StackInuse)) / int64(n)
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

// TestIdleConnectionCost measures what an idle authenticated connection
// costs the broker in this process (make bench measures RSS).
func TestIdleConnectionCost(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "max_queued_messages 1000\n")
	heap, stack := idleCost(t, tb, 1000)
	t.Logf("per idle authenticated connection: heap %d B, stacks %d B", heap, stack)
}
