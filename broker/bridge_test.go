package broker

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// fakeRemote listens on a loopback port and runs session on every
// connection it accepts: a remote broker as a test wants it.
func fakeRemote(t *testing.T, session func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go session(c)
		}
	}()
	return ln.Addr().String()
}

// silentSession never answers: a remote that is slow or gone.
func silentSession(net.Conn) {}

// Close does not wait for a bridge's connection attempt (10 s to a remote
// that does not answer): Docker would kill the broker before it saved.
func TestCloseWhileBridgeConnects(t *testing.T) {
	for _, version := range []string{"mqttv311", "mqttv50"} {
		t.Run(version, func(t *testing.T) {
			tb := newTestBroker(t, "user alice\ntopic readwrite #\n",
				"connection up\naddress "+fakeRemote(t, silentSession)+"\nbridge_protocol_version "+version+"\ntopic # both 1\n")
			time.Sleep(300 * time.Millisecond) // the bridge is connecting
			tb.closeWithin(3*time.Second, "while the bridge connects")
		})
	}
}

// muteSession answers CONNECT, SUBSCRIBE and PINGREQ and acknowledges the
// bridge's state, then nothing: a remote broker that stopped acknowledging
// what the bridge forwards.
func muteSession(c net.Conn) {
	r := bufio.NewReader(c)
	version := byte(4)
	for {
		typ, err := r.ReadByte()
		if err != nil {
			return
		}
		n, _, err := packets.DecodeLength(r)
		if err != nil {
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		switch typ >> 4 {
		case packets.Connect:
			version = body[6] &^ 0x80 // after the protocol name "MQTT"
			if version == 5 {
				c.Write([]byte{0x20, 3, 0, 0, 0})
			} else {
				c.Write([]byte{0x20, 2, 0, 0})
			}
		case packets.Subscribe:
			ack := []byte{0x90, 3, body[0], body[1], 1}
			if version == 5 {
				ack = []byte{0x90, 4, body[0], body[1], 0, 1}
			}
			c.Write(ack)
		case packets.Pingreq:
			c.Write([]byte{0xd0, 0})
		case packets.Publish:
			topic := string(body[2 : 2+(int(body[0])<<8|int(body[1]))])
			if typ&0x06 != 0 && strings.HasPrefix(topic, "$SYS/broker/connection/") {
				id := body[2+len(topic) : 4+len(topic)]
				c.Write([]byte{0x40, 2, id[0], id[1]})
			}
		}
	}
}

// Close does not wait for a QoS 1 message the remote never acknowledges
// (30 s before the bridge gives up on it).
func TestCloseWhileBridgePublishes(t *testing.T) {
	for _, version := range []string{"mqttv311", "mqttv50"} {
		t.Run(version, func(t *testing.T) {
			tb := newTestBroker(t, "user alice\ntopic readwrite #\n",
				"connection up\naddress "+fakeRemote(t, muteSession)+"\nbridge_protocol_version "+version+"\ntopic out/# out 1\n")
			if !tb.waitLog("Bridge up connected") {
				t.Fatalf("the bridge did not connect\n%s", tb.log())
			}
			tb.publishAs("out/x", "to the remote", false)
			time.Sleep(300 * time.Millisecond) // the bridge waits for the remote's PUBACK
			tb.closeWithin(5*time.Second, "while the bridge waits for a PUBACK")
		})
	}
}

// A bridge connects as soon as the broker starts, whatever its protocol
// (autopaho waits its backoff before a first attempt unless told not to).
func TestBridgeConnectsAtOnce(t *testing.T) {
	for _, version := range []string{"mqttv311", "mqttv50"} {
		t.Run(version, func(t *testing.T) {
			remote := fakeRemote(t, muteSession)
			start := time.Now()
			tb := newTestBroker(t, "user alice\ntopic readwrite #\n",
				"connection up\naddress "+remote+"\nbridge_protocol_version "+version+"\ntopic out/# out 1\n")
			if !tb.waitLog("Bridge up connected") {
				t.Fatalf("the bridge did not connect within 3 s\n%s", tb.log())
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Fatalf("the bridge connected after %v", d)
			}
		})
	}
}
