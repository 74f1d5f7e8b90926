package bench

import (
	"bufio"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// maxBuffered is how much a connection holds before Write blocks, so that
// a broker that stops reading still pushes back on the publisher.
const maxBuffered = 256 << 10

// bufConn is the connection paho gets (through SetCustomOpenConnectionFn)
// so that the load generator, on one core, costs less than the brokers it
// measures. paho.mqtt.golang reads every packet in at least three read
// calls (the first byte, the length byte by byte, the rest) and writes
// every packet with its own write call. Here reads go through a
// bufio.Reader, and Write copies the packet into a buffer that a flusher
// goroutine writes out: packets written while a write system call is under
// way leave together in the next one. At low rates every packet is written
// at once, as before.
type bufConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	cond    *sync.Cond
	buf     []byte
	spare   []byte
	err     error
	closed  bool
	kick    chan struct{}
	done    chan struct{}
	wmu     sync.Mutex // serialises writes to the connection
	flushed chan struct{}
}

// writeCheck, when set, sees every packet paho writes (debugging).
var writeCheck func(p []byte)

func newBufConn(c net.Conn) *bufConn {
	b := &bufConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), kick: make(chan struct{}, 1), done: make(chan struct{}), flushed: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.flusher()
	return b
}

// dialBuffered opens paho's connections.
func dialBuffered(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", uri.Host, 20*time.Second)
	if err != nil {
		return nil, err
	}
	return newBufConn(c), nil
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *bufConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.buf) > maxBuffered && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	switch {
	case b.err != nil:
		err := b.err
		b.mu.Unlock()
		return 0, err
	case b.closed:
		b.mu.Unlock()
		return 0, net.ErrClosed
	}
	if writeCheck != nil {
		writeCheck(p)
	}
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

// flush writes out what is buffered.
func (b *bufConn) flush() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	if len(b.buf) == 0 {
		b.mu.Unlock()
		return
	}
	// out belongs to this flush until written: Write appends to the spare
	// array meanwhile, and no one else holds out's.
	out := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.mu.Unlock()
	_, err := b.Conn.Write(out)
	b.mu.Lock()
	b.spare = out[:0]
	if err != nil && b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *bufConn) flusher() {
	defer close(b.flushed)
	for {
		select {
		case <-b.kick:
			b.flush()
		case <-b.done:
			return
		}
	}
}

// Close writes what is still buffered (paho closes right after its
// DISCONNECT) and closes the connection.
func (b *bufConn) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("already closed")
	}
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	close(b.done)
	<-b.flushed
	b.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	b.flush()
	return b.Conn.Close()
}
