package broker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// tcpPair returns the server side (wrapped) and the client side of a
// loopback TCP connection.
func tcpPair(t *testing.T) (*coalescingConn, *countingConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingConn{Conn: server}
	cc := newCoalescingConn(counted)
	t.Cleanup(func() { cc.Close(); client.Close() })
	return cc, counted, client
}

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

// waitConn waits until cond, called with cc.mu held, is true.
func waitConn(t *testing.T, cc *coalescingConn, never string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		cc.mu.Lock()
		ok := cond()
		cc.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(never)
		}
	}
}

// The reader's own writes (acknowledgements) wait for its next Read and
// leave in one system call.
func TestCoalescingConnBatchesReaderWrites(t *testing.T) {
	cc, counted, client := tcpPair(t)
	for i := range 10 {
		if _, err := cc.Write([]byte{0x40, 2, 0, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := counted.writes.Load(); n != 0 {
		t.Fatalf("%d writes reached the socket before the reader's next Read, want 0", n)
	}
	client.Write([]byte{1})
	if _, err := cc.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if n := counted.writes.Load(); n != 1 {
		t.Fatalf("%d writes reached the socket, want 1", n)
	}
	got := readN(t, client, 40)
	for i := range 10 {
		if want := []byte{0x40, 2, 0, byte(i)}; !bytes.Equal(got[4*i:4*i+4], want) {
			t.Fatalf("packet %d = % x, want % x", i, got[4*i:4*i+4], want)
		}
	}
}

// While the reader waits in Read, a write (a delivery) leaves at once.
func TestCoalescingConnWritesAtOnceWhileReading(t *testing.T) {
	cc, _, client := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := cc.Read(make([]byte, 1))
		done <- err
	}()
	waitConn(t, cc, "the reader never reached Read", func() bool { return cc.reading })
	if _, err := cc.Write([]byte("delivery")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, client, 8); string(got) != "delivery" {
		t.Fatalf("client got %q", got)
	}
	client.Close()
	if err := <-done; err == nil {
		t.Fatal("Read after the peer closed returned no error")
	}
}

// A write over the limit does not wait for the reader.
func TestCoalescingConnFlushesLargeBuffer(t *testing.T) {
	cc, _, client := tcpPair(t)
	big := bytes.Repeat([]byte{7}, coalesceLimit)
	go cc.Write(big)
	if got := readN(t, client, len(big)); !bytes.Equal(got, big) {
		t.Fatal("large write corrupted")
	}
}

// Close writes what waits (a refusing CONNACK) before closing.
func TestCoalescingConnCloseFlushes(t *testing.T) {
	cc, _, client := tcpPair(t)
	cc.Write([]byte{0x20, 2, 0, 5})
	if err := cc.Close(); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x20, 2, 0, 5}; !bytes.Equal(got, want) {
		t.Fatalf("client got % x, want % x", got, want)
	}
	if _, err := cc.Write([]byte{1}); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// Close gives up on a client that does not read, even when the reader sets
// the connection's deadlines meanwhile, as mochi does for every packet.
func TestCoalescingConnCloseBoundedWithStalledPeer(t *testing.T) {
	cc, _, _ := tcpPair(t) // the client side never reads
	go cc.Write(make([]byte, 64<<20))
	waitConn(t, cc, "the write never started", func() bool { return cc.flushing })
	closed := make(chan struct{})
	start := time.Now()
	go func() { cc.Close(); close(closed) }()
	time.Sleep(100 * time.Millisecond)
	cc.SetDeadline(time.Now().Add(time.Hour))
	select {
	case <-closed:
		if d := time.Since(start); d < closeFlushTimeout/2 {
			t.Fatalf("Close returned after %v: it did not try to write what waits", d)
		}
	case <-time.After(closeFlushTimeout + 5*time.Second):
		t.Fatal("Close waits for a client that does not read")
	}
}

// Concurrent writers, a reader and the peer: every write arrives whole, in
// each writer's order, nothing lost or repeated.
func TestCoalescingConnConcurrentWriters(t *testing.T) {
	cc, _, client := tcpPair(t)
	const writers, perWriter = 4, 5000
	// The reader reads what the client sends and writes an answer for each
	// byte, as mochi's reading goroutine writes acknowledgements.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		seq := uint32(0)
		for {
			n, err := cc.Read(buf)
			if err != nil {
				return
			}
			for range n {
				cc.Write(frame(writers, seq, 4))
				seq++
			}
		}
	}()
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			client.Write([]byte{byte(i)})
			time.Sleep(50 * time.Microsecond)
		}
	}()
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Add(1)
		go func() {
			defer writersWG.Done()
			for i := range perWriter {
				if _, err := cc.Write(frame(w, uint32(i), 8+(i%7)*300)); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}

	next := make([]uint32, writers)
	r := bufio.NewReader(client)
	client.SetReadDeadline(time.Now().Add(30 * time.Second))
	for done := 0; done < writers; {
		var hdr [9]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			t.Fatalf("reading: %v", err)
		}
		w, seq, size := int(hdr[0]), binary.BigEndian.Uint32(hdr[1:5]), binary.BigEndian.Uint32(hdr[5:9])
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatalf("reading: %v", err)
		}
		if !bytes.Equal(body, bytes.Repeat([]byte{byte(seq)}, int(size))) {
			t.Fatalf("writer %d message %d corrupted", w, seq)
		}
		if w == writers {
			continue // an answer of the reader
		}
		if seq != next[w] {
			t.Fatalf("writer %d: got message %d, want %d", w, seq, next[w])
		}
		next[w]++
		if next[w] == perWriter {
			done++
		}
	}
	writersWG.Wait()
	close(stop)
	cc.Close()
	wg.Wait()
}

func frame(w int, seq uint32, size int) []byte {
	b := make([]byte, 9, 9+size)
	b[0] = byte(w)
	binary.BigEndian.PutUint32(b[1:], seq)
	binary.BigEndian.PutUint32(b[5:], uint32(size))
	return append(b, bytes.Repeat([]byte{byte(seq)}, size)...)
}

// After a burst, a connection whose reader waits for input keeps no large
// buffer.
func TestCoalescingConnReleasesBuffersWhenIdle(t *testing.T) {
	cc, _, client := tcpPair(t)
	go io.Copy(io.Discard, client)
	for range 100 {
		cc.Write(make([]byte, 1000)) // buffered: the reader is not reading
	}
	done := make(chan struct{})
	go func() {
		cc.Read(make([]byte, 1))
		close(done)
	}()
	kept := 0
	waitConn(t, cc, "the reader never reached Read", func() bool {
		kept = cap(cc.buf) + cap(cc.spare)
		return cc.reading
	})
	if kept > 0 {
		t.Fatalf("%d bytes of buffers kept while idle", kept)
	}
	client.Close()
	<-done
}

// A connection that sends no CONNECT is closed after the connect timeout,
// logged as Mosquitto does; a client's keepalive replaces that deadline.
func TestConnectTimeout(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "", func(o *Options) { o.connectTimeout = 300 * time.Millisecond })
	silent, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c, err := tb.client("alice", "alice-pw", "a1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(0)
	start := time.Now()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("silent connection: read %d bytes, %v; want the broker to close it", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("silent connection closed after %v, want about 300ms", d)
	}
	if !tb.waitLog("Client <unknown> has exceeded timeout, disconnecting.") {
		t.Fatalf("log:\n%s", tb.log())
	}
	time.Sleep(500 * time.Millisecond) // past the connect timeout
	if tok := c.Publish("x", 1, false, "still here"); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil || !c.IsConnected() {
		t.Fatalf("a connected client was cut at the connect timeout: %v\n%s", tok.Error(), tb.log())
	}
}

// Close ends connections that have not sent their CONNECT (mochi's own
// Close waits for them).
func TestCloseWithSilentConnection(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "")
	silent, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for deadline := time.Now().Add(5 * time.Second); tb.b.stats.sockets.Load() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the broker never took the connection")
		}
	}
	tb.closeWithin(3*time.Second, "with a connection that sent no CONNECT")
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the silent connection is still open after Close: %v", err)
	}
}

// A burst of deliveries (the hook holds each while mochi has more queued)
// leaves in one system call with the last one, in order, while the reader
// waits in Read; and nothing is held once the burst ends.
func TestCoalescingConnHoldsBurst(t *testing.T) {
	cc, counted, client := tcpPair(t)
	go cc.Read(make([]byte, 1))
	waitConn(t, cc, "the reader never reached Read", func() bool { return cc.reading })
	var want []byte
	for i := range 10 {
		p := bytes.Repeat([]byte{byte('a' + i)}, 700) // past idleBuffer: a pooled buffer
		want = append(want, p...)
		cc.hold.Store(i < 9)
		if _, err := cc.Write(p); err != nil {
			t.Fatal(err)
		}
		if i < 9 && counted.writes.Load() != 0 {
			t.Fatalf("delivery %d of the burst was written before the last", i+1)
		}
	}
	if got := readN(t, client, len(want)); !bytes.Equal(got, want) {
		t.Fatal("the burst arrived changed")
	}
	if n := counted.writes.Load(); n != 1 {
		t.Fatalf("the burst took %d writes, want 1", n)
	}
	// A held write that no delivery follows (the hook dropped the rest of
	// the queue) leaves with the empty write the hook then makes.
	cc.hold.Store(true)
	cc.Write([]byte("held"))
	cc.Write(nil)
	if got := readN(t, client, 4); string(got) != "held" {
		t.Fatalf("client got %q", got)
	}
	waitConn(t, cc, "a write stayed held", func() bool { return len(cc.buf) == 0 && !cc.flushing })
	// A held write that nothing follows at all (mochi dropped the queued
	// delivery after the hook counted it) still leaves, after holdLimit.
	cc.hold.Store(true)
	cc.Write([]byte("alone"))
	if got := readN(t, client, 5); string(got) != "alone" {
		t.Fatalf("client got %q", got)
	}
	waitConn(t, cc, "a held write was never written", func() bool { return len(cc.buf) == 0 && !cc.flushing })
}
