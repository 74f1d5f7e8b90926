package broker

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// halfOpenCost measures what n connections that never send CONNECT cost
// the broker: heap and goroutine stacks, per connection.
func halfOpenCost(t *testing.T, tb *testBroker, n int) uint64 {
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
	for range n {
		c, err := net.Dial("tcp", tb.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// Every connection reached the broker.
	for deadline := time.Now().Add(10 * time.Second); tb.b.stats.sockets.Load() < int64(n) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := func(m *runtime.MemStats) uint64 { return m.HeapAlloc + m.StackInuse }
	if used(&after) < used(&before) {
		return 0
	}
	return (used(&after) - used(&before)) / uint64(n)
}

// TestHalfOpenConnections (issue 11): a connection that sends no CONNECT
// costs the broker a small buffer, not a client (mochi allocates a client,
// its queue and its write loop at once). The test client's own sockets are
// in the same process: they are counted too, so the bound is loose.
func TestHalfOpenConnections(t *testing.T) {
	tb := newTestBroker(t, "", "max_queued_messages 1000\n")
	per := halfOpenCost(t, tb, 300)
	t.Logf("%d bytes per connection without CONNECT", per)
	if per > 6<<10 {
		t.Errorf("a connection without CONNECT costs %d bytes", per)
	}
}
