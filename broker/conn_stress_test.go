package broker

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// connectPacket is an MQTT 3.1.1 CONNECT with a username and password.
func loginPacket(user, pw string) []byte {
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	body := append(str("MQTT"), 4, 0xC2, 0, 60)
	body = append(body, str("")...)
	body = append(body, str(user)...)
	body = append(body, str(pw)...)
	return append([]byte{0x10, byte(len(body))}, body...)
}

// Under max_connections, with writes coalesced: every admitted client gets
// its CONNACK (written by the reading goroutine, flushed by its next Read),
// the one over the limit is closed, and every connection is counted off
// when it ends.
func TestConnackUnderMaxConnections(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "max_connections 3\n")
	ln := tb.b.lns[0]
	// waitZero waits until the broker has taken the sockets-th connection
	// and counted every connection off.
	sockets := int64(0)
	waitZero := func() {
		for deadline := time.Now().Add(5 * time.Second); ln.conns.Load() != 0 || tb.b.stats.sockets.Load() < sockets; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections still counted, %d of %d taken", ln.conns.Load(), tb.b.stats.sockets.Load(), sockets)
			}
		}
	}
	for i := range 200 {
		probe, err := net.Dial("tcp", tb.addr)
		if err != nil {
			t.Fatal(err)
		}
		probe.Close()
		sockets++
		// The broker counts the probe until it has read its end: connecting
		// at once races with that (in Mosquitto too).
		waitZero()
		var open []net.Conn
		for j := range 4 {
			c, err := net.Dial("tcp", tb.addr)
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, c)
			if j < 3 {
				sockets++
			}
			c.Write(loginPacket("alice", "alice-pw"))
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			ack := make([]byte, 4)
			_, err = io.ReadFull(c, ack)
			if j < 3 && (err != nil || ack[3] != 0) {
				t.Fatalf("iteration %d, connection %d: CONNACK % x, %v\n%s", i, j+1, ack, err, tb.log())
			}
			if j == 3 && err == nil {
				t.Fatalf("iteration %d: connection 4 over max_connections 3 admitted", i)
			}
		}
		for _, c := range open {
			c.Close()
		}
		waitZero()
	}
}

// stalledSubscriber logs in as alice with MQTT version, subscribes to
// topic and never reads.
func stalledSubscriber(t *testing.T, addr string, version byte, id, topic string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.(*net.TCPConn).SetReadBuffer(4096)
	var buf bytes.Buffer
	conn := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: id, Keepalive: 60,
			UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true, Password: []byte("alice-pw")}}
	sub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: version, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: topic}}}
	if err := conn.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if err := sub.SubscribeEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	return c
}

// Close with subscribers that stopped reading while deliveries were being
// written to them (MQTT 5 ones wait for a DISCONNECT behind mochi's write
// lock): every connection is ended in parallel, each within about two
// seconds, so the broker stops well inside Docker's 10 s grace period.
func TestCloseWithStalledSubscribers(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "")
	for i := range 8 {
		stalledSubscriber(t, tb.addr, byte(4+i%2), fmt.Sprintf("stalled-%d", i), "flood")
	}
	time.Sleep(300 * time.Millisecond) // the subscriptions are in place
	pub, err := tb.client("alice", "alice-pw", "pub")
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 32<<10)
	for range 400 { // 12.5 MiB to each subscriber: more than the sockets hold
		pub.Publish("flood", 0, false, payload).WaitTimeout(time.Second)
	}
	time.Sleep(time.Second) // the write loops block
	pub.Disconnect(0)
	tb.closeWithin(6*time.Second, "with 8 stalled subscribers")
}

// Should a connection not end at shutdown (none is known to, since every
// socket is closed), Close still writes the database and returns, so a
// container is not killed before it saved.
func TestCloseSavesDespiteStuckConnection(t *testing.T) {
	data := t.TempDir()
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "persistence true\npersistence_location "+data+"/\n",
		func(o *Options) { o.shutdownWait = 300 * time.Millisecond })
	tb.publishAs("kept", "across the restart", true)
	// A connection that never ends: counted, never removed.
	server, client := net.Pipe()
	defer client.Close()
	tb.b.conns.add(&coalescingConn{Conn: stuckConn{server}})
	tb.closeWithin(3*time.Second, "with a connection that does not end")
	if !strings.Contains(tb.log(), "Warning: connections still open 300ms into the shutdown; stopping without them.") {
		t.Errorf("no warning in the log:\n%s", tb.log())
	}
	if _, err := os.Stat(filepath.Join(data, storeFile)); err != nil {
		t.Fatalf("the database was not written: %v", err)
	}
	again := newTestBroker(t, "user alice\ntopic readwrite #\n", "persistence true\npersistence_location "+data+"/\n")
	if !strings.Contains(again.log(), "Restored 0 sessions and 1 retained messages") {
		t.Fatalf("the retained message was not saved:\n%s", again.log())
	}
}

// stuckConn ignores Close.
type stuckConn struct{ net.Conn }

func (stuckConn) Close() error { return nil }
