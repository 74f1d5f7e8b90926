package broker

import (
	"io"
	"net"
	"testing"
	"time"
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
