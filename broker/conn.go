package broker

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// coalescingConn is a client connection whose small writes leave together.
// mochi writes every packet with its own Write: a publisher sending ten
// QoS 1 messages in one TCP segment gets ten PUBACKs in ten system calls,
// which was a third of the broker's CPU under load (bench/README.md).
//
// Writes made while the connection's reader is handling what it read (the
// acknowledgements, SUBACKs and retained messages mochi writes from the
// reading goroutine) wait in a buffer until the reader next calls Read,
// which writes them out first. Writes made while the reader waits in Read
// (deliveries from mochi's write loop, a DISCONNECT from Reload) go out at
// once, together with anything written meanwhile by others. No goroutine
// of its own, so an idle connection costs no more than before.
//
// A buffer handed to the socket is never appended to until the write
// returns: writers append to the other one.
type coalescingConn struct {
	net.Conn

	mu sync.Mutex
	// idle is signalled when a flush ends (Close waits for it).
	idle sync.Cond
	// buf holds bytes written and not yet handed to the socket; spare is
	// the buffer the last flush returned, reused for the next one.
	buf, spare []byte
	// flushing is set while a goroutine writes to the socket; it writes
	// until buf is empty.
	flushing bool
	// reading is set while the reader waits in Read.
	reading bool
	closed  bool
	err     error
	// pending is what was read before mochi got the connection (its first
	// packet, see Broker.establish); Read returns it first.
	pending []byte
	// readBuf is the pooled buffer pending lies in, if any; readN and
	// readErr are the result of the last read into it (readFd).
	readBuf *[readChunk]byte
	readN   int
	readErr error
	// hold is set by the hook for the next write when mochi has more
	// deliveries queued for this client: that write waits for them, as
	// mochi's own write buffer did (which copied every packet once more
	// into a buffer allocated for each burst), and the last one of the
	// burst writes them all.
	hold atomic.Bool
	// holdTimer writes out a held write that no delivery followed within
	// holdLimit (mochi dropped the rest of the queue after the hook looked
	// at it): holding saves system calls, it must never delay a message.
	holdTimer *time.Timer
	holdArmed bool
}

// holdLimit bounds how long a held write waits for the rest of its burst.
const holdLimit = 2 * time.Millisecond

// freeList keeps up to max buffers for reuse by any connection. Not a
// sync.Pool: the garbage collector empties those, which under load (a
// collection every few milliseconds) made every burst allocate and zero
// a fresh buffer again.
type freeList[T any] struct {
	mu   sync.Mutex
	free []T
	max  int
	make func() T
}

func (l *freeList[T]) get() T {
	l.mu.Lock()
	if n := len(l.free); n > 0 {
		b := l.free[n-1]
		l.free = l.free[:n-1]
		l.mu.Unlock()
		return b
	}
	l.mu.Unlock()
	return l.make()
}

func (l *freeList[T]) put(b T) {
	l.mu.Lock()
	if len(l.free) < l.max {
		l.free = append(l.free, b)
	}
	l.mu.Unlock()
}

// bigBuffers recycles the buffers of bursts: a burst takes a buffer from
// here instead of growing one from nothing. At most 2 MiB is kept for the
// whole broker.
var bigBuffers = &freeList[[]byte]{max: 32, make: func() []byte { return make([]byte, 0, coalesceLimit) }}

// smallBuffers recycles the small buffers (idleBuffer bytes) connections
// write a few packets with: a connection waiting for input gives its own
// back, so an idle client holds none. At most 128 KiB is kept.
var smallBuffers = &freeList[[]byte]{max: 256, make: func() []byte { return make([]byte, 0, idleBuffer) }}

// appendBuf appends p to c.buf, growing it from the spare buffer or the
// pool. c.mu is held.
func (c *coalescingConn) appendBuf(p []byte) {
	need := len(c.buf) + len(p)
	if need > cap(c.buf) {
		var nb []byte
		switch {
		case need <= idleBuffer && cap(c.spare) >= need:
			nb, c.spare = c.spare[:0], nil
		case need <= idleBuffer:
			nb = smallBuffers.get()[:0]
		case need <= coalesceLimit:
			nb = bigBuffers.get()[:0]
		default: // a flush is running and the client reads slowly
			nb = make([]byte, 0, max(need, 2*cap(c.buf)))
		}
		nb = append(nb, c.buf...)
		c.recycle(c.buf)
		c.buf = nb
	}
	c.buf = append(c.buf, p...)
}

// recycle keeps b as the spare buffer if it is small, or gives it back to
// the pool. c.mu is held, and nothing else refers to b.
func (c *coalescingConn) recycle(b []byte) {
	switch {
	case cap(b) == 0:
	case cap(b) <= idleBuffer:
		if cap(b) > cap(c.spare) {
			c.spare = b[:0]
		}
	case cap(b) == coalesceLimit:
		bigBuffers.put(b[:0])
	}
}

// coalesceLimit is how much may wait for the reader before a Write flushes
// on its own; it is also the largest buffer kept for reuse.
const coalesceLimit = 64 << 10

// idleBuffer is the size of the small buffers (a few dozen
// acknowledgements).
const idleBuffer = 512

// closeFlushTimeout bounds how long Close tries to write what waits.
const closeFlushTimeout = time.Second

var errConnClosed = errors.New("use of closed network connection")

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c}
	cc.idle.L = &cc.mu
	return cc
}

// open reports whether writes may still reach the client.
func (c *coalescingConn) open() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && c.err == nil
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.closed || c.err != nil {
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = errConnClosed
		}
		return 0, err
	}
	hold := c.hold.Swap(false)
	if c.flushing || ((!c.reading || hold) && len(c.buf)+len(p) < coalesceLimit) {
		// The goroutine flushing, the reader before its next Read, or the
		// last write of a burst writes it.
		c.appendBuf(p)
		if hold && c.reading && !c.flushing && !c.holdArmed {
			c.holdArmed = true
			if c.holdTimer == nil {
				c.holdTimer = time.AfterFunc(holdLimit, c.releaseHeld)
			} else {
				c.holdTimer.Reset(holdLimit)
			}
		}
		c.mu.Unlock()
		return len(p), nil
	}
	// mochi writes holding the client's lock, which every publisher to
	// this client takes for a packet id: a write that blocks because the
	// client stopped reading would block them all. So the socket is only
	// written without blocking here; what it does not take is written by
	// a goroutine alive only while bytes wait, and deliveries wait for
	// room in waitRoom, where mochi holds no lock.
	c.flushing = true
	// Nothing waits: p itself is written, no copy. A burst: what waits and
	// p leave in one system call.
	out, burst := p, len(c.buf) > 0
	if burst {
		c.appendBuf(p)
		out, c.buf = c.buf, nil
	}
	c.mu.Unlock()
	n, err := c.tryWrite(out)
	c.mu.Lock()
	if err != nil {
		c.err = err
		c.flushing = false
		c.idle.Broadcast()
		c.mu.Unlock()
		return 0, err
	}
	// Others may have appended meanwhile: the rest of out goes first.
	others := c.buf
	c.buf = nil
	if n < len(out) {
		c.appendBuf(out[n:])
	}
	if burst {
		c.recycle(out)
	}
	if len(c.buf) == 0 && len(others) == 0 {
		c.flushing = false
		c.idle.Broadcast()
		c.mu.Unlock()
		return len(p), nil
	}
	c.appendBuf(others)
	c.recycle(others)
	c.mu.Unlock()
	go c.flush()
	return len(p), nil
}

// tryWrite writes what the socket takes without blocking: all of p when
// the connection cannot tell (TLS, WebSockets), which the flushing
// goroutine then writes.
func (c *coalescingConn) tryWrite(p []byte) (int, error) {
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok {
		return 0, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, nil
	}
	var n int
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), p)
		return true // never wait for the socket
	})
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN || werr == syscall.EINTR:
		return 0, nil
	case werr != nil:
		return 0, werr
	}
	return n, nil
}

// flush writes what waits, in a goroutine of its own.
// releaseHeld writes what a held write left waiting, if nothing has.
func (c *coalescingConn) releaseHeld() {
	c.mu.Lock()
	c.holdArmed = false
	if len(c.buf) == 0 || c.flushing || !c.reading || c.closed || c.err != nil {
		// Written already, or the flush or the reader's next Read writes it.
		c.mu.Unlock()
		return
	}
	c.flushing = true
	c.flushLocked()
	c.mu.Unlock()
}

func (c *coalescingConn) flush() {
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
}

// waitRoom waits while more than coalesceLimit bytes wait for a client
// that does not read (a flush is then running), so that its deliveries
// queue in mochi, which drops them past max_queued_messages, and not here.
func (c *coalescingConn) waitRoom() {
	c.mu.Lock()
	for len(c.buf) >= coalesceLimit && c.flushing && !c.closed && c.err == nil {
		c.idle.Wait()
	}
	c.mu.Unlock()
}

// flushLocked writes buf until it stays empty; c.flushing is set and c.mu
// held, and both are so again on return. It clears flushing.
func (c *coalescingConn) flushLocked() error {
	for len(c.buf) > 0 && c.err == nil {
		out := c.buf
		c.buf = nil
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		if err != nil {
			c.err = err
		}
		c.recycle(out)
		c.idle.Broadcast() // room for waitRoom
	}
	c.flushing = false
	c.idle.Broadcast()
	if c.err != nil {
		c.buf = nil
	}
	return c.err
}

func (c *coalescingConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 { // only the reader touches it
		return c.takePending(p), nil
	}
	if err := c.beginRead(); err != nil {
		return 0, err
	}
	n, err := c.read(p)
	c.endRead()
	return n, err
}

// WaitsForInput reports whether WaitReadable waits for input: only on a
// TCP connection; TLS and WebSockets connections wait in Read.
func (c *coalescingConn) WaitsForInput() bool {
	_, ok := c.Conn.(*net.TCPConn)
	return ok
}

// WaitReadable waits until the connection has input, which the next Read
// returns. The engine's read loop (third_party/mochi, Client.Read) calls it
// when its buffered reader is empty: an idle connection's goroutine waits
// here, a few calls deep, rather than under the buffered reader, so that
// its stack shrinks to the runtime's 4 KiB (docs/broker.md, Memory per idle
// connection).
func (c *coalescingConn) WaitReadable() error {
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok || len(c.pending) > 0 {
		return nil
	}
	if err := c.beginRead(); err != nil {
		return err
	}
	err := c.readPending(tc)
	c.endRead()
	return err
}

// beginRead writes out what waits for the reader before it blocks, and
// marks the connection as reading.
func (c *coalescingConn) beginRead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.flushing && len(c.buf) > 0 {
		c.flushing = true
		c.flushLocked()
	}
	// A connection waiting for input keeps no buffer: a burst to one
	// client, or the few acknowledgements of the last packets, must not
	// stay allocated while it idles.
	if len(c.buf) == 0 {
		c.recycle(c.buf)
		if cap(c.spare) == idleBuffer {
			smallBuffers.put(c.spare)
		}
		c.buf, c.spare = nil, nil
	}
	// Set under the same lock as the flush's end: nothing written from here
	// on waits for the reader.
	c.reading = true
	return c.err
}

func (c *coalescingConn) endRead() {
	c.mu.Lock()
	c.reading = false
	c.mu.Unlock()
}

// takePending moves what was read ahead into p.
func (c *coalescingConn) takePending(p []byte) int {
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
		if c.readBuf != nil {
			readBuffers.put(c.readBuf)
			c.readBuf = nil
		}
	}
	return n
}

// readChunk is how much the wrapper reads from the socket at once for
// mochi's small reads (its 2 KiB buffer took two reads for every 4 KiB
// PUBLISH): what mochi did not ask for yet waits in pending.
const readChunk = 16 << 10

// readBuffers keeps at most 512 KiB of read buffers for the broker.
var readBuffers = &freeList[*[readChunk]byte]{max: 32, make: func() *[readChunk]byte { return new([readChunk]byte) }}

// read reads into p, or for a small p as much as the socket has, up to
// readChunk (readPending).
func (c *coalescingConn) read(p []byte) (int, error) {
	tc, ok := c.Conn.(*net.TCPConn)
	if !ok || len(p) >= readChunk {
		return c.Conn.Read(p)
	}
	if err := c.readPending(tc); err != nil {
		return 0, err
	}
	return c.takePending(p), nil
}

// readPending waits for input and reads as much as the socket has, up to
// readChunk, into pending: a pooled buffer taken only once data has
// arrived, so that a connection waiting for input holds none. It returns
// with nothing pending only on an error, or after an interrupted read.
func (c *coalescingConn) readPending(tc *net.TCPConn) error {
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	if err := rc.Read(c.readFd); err != nil { // deadline, closed
		if c.readBuf != nil {
			readBuffers.put(c.readBuf)
			c.readBuf = nil
		}
		return err
	}
	return c.readDone()
}

// readFd is readPending's read of the socket: false (wait) while it has no
// input. The result is left in readBuf, readN and readErr.
func (c *coalescingConn) readFd(fd uintptr) bool {
	c.readBuf = readBuffers.get()
	c.readN, c.readErr = syscall.Read(int(fd), c.readBuf[:])
	if c.readErr == syscall.EAGAIN {
		readBuffers.put(c.readBuf)
		c.readBuf = nil
		return false // wait for input, holding no buffer
	}
	return true
}

// readDone makes what readFd read pending, or returns its error.
func (c *coalescingConn) readDone() error {
	buf, n, rerr := c.readBuf, c.readN, c.readErr
	c.readErr = nil
	switch {
	case rerr == syscall.EINTR:
	case rerr != nil:
		err := &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
		readBuffers.put(buf)
		c.readBuf = nil
		return err
	case n == 0:
		readBuffers.put(buf)
		c.readBuf = nil
		return io.EOF
	default:
		c.pending = buf[:n]
		return nil
	}
	readBuffers.put(buf)
	c.readBuf = nil
	return nil
}

// Close writes what waits (a CONNACK refusing the client, a DISCONNECT),
// for at most closeFlushTimeout, then closes the connection.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.Conn.Close()
	}
	c.closed = true
	if c.flushing || len(c.buf) > 0 {
		// A timer, not a write deadline: mochi sets the connection's
		// deadlines whenever it reads a packet, which would replace ours
		// and leave Close waiting on a client that does not read for as
		// long as its keepalive allows. Closing the socket ends any write.
		t := time.AfterFunc(closeFlushTimeout, c.abort)
		defer t.Stop()
	}
	for c.flushing {
		c.idle.Wait()
	}
	if len(c.buf) > 0 && c.err == nil {
		c.flushing = true
		c.flushLocked()
	}
	c.buf, c.spare = nil, nil
	c.mu.Unlock()
	return c.Conn.Close()
}

// abort closes the socket at once, ending any write in progress.
func (c *coalescingConn) abort() { c.Conn.Close() }

// connSet holds every connection handed to mochi until it ends, so that
// Close can end the ones mochi does not know yet: a connection is mochi's
// client only once its CONNECT is read, and mochi's own Close waits for
// every connection, known or not.
type connSet struct {
	mu     sync.Mutex
	conns  map[*coalescingConn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// add records c; after closeAll it closes c instead and returns false.
// Every c added is removed once it has ended.
func (s *connSet) add(c *coalescingConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	if s.conns == nil {
		s.conns = map[*coalescingConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *connSet) remove(c *coalescingConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// closeAll closes every connection, in parallel (each may take up to
// closeFlushTimeout), and every one added from now on.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	all := make([]*coalescingConn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range all {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
}

// wait waits until every connection added has been removed.
func (s *connSet) wait() { s.wg.Wait() }
