package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// ProbeClientID is the client id of Probe, as Mosquitto's healthcheck
// (mosquitto_sub -i mqttgen-healthcheck) uses.
const ProbeClientID = "mqttgen-healthcheck"

// Probe asks the broker at target for a CONNACK: it sends an MQTT 3.1.1
// CONNECT without credentials (clean session, client id ProbeClientID) and
// returns nil on any CONNACK, "not authorised" included, since a refusal
// still proves that the broker reads its files and answers. It is the
// healthcheck of the bundled broker's image, which has no shell and no
// mosquitto_sub.
//
// target is a URL: tcp://HOST:PORT (or mqtt://, or HOST:PORT alone),
// ssl://, tls:// or mqtts:// for MQTT over TLS, ws:// and wss:// for MQTT
// over WebSockets. The server's certificate is not verified: this checks
// liveness, not identity.
func Probe(ctx context.Context, target string, timeout time.Duration) error {
	if !strings.Contains(target, "://") {
		target = "tcp://" + target
	}
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("probe %s: %w", target, err)
	}
	if u.Port() == "" {
		return fmt.Errorf("probe %s: no port", target)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	insecure := &tls.Config{InsecureSkipVerify: true} // liveness only
	var conn io.ReadWriteCloser
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
		d := &net.Dialer{Deadline: deadline}
		var c net.Conn
		if u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" {
			c, err = (&tls.Dialer{NetDialer: d, Config: insecure}).DialContext(ctx, "tcp", u.Host)
		} else {
			c, err = d.DialContext(ctx, "tcp", u.Host)
		}
		if err != nil {
			return fmt.Errorf("probe %s: %w", target, err)
		}
		c.SetDeadline(deadline)
		conn = c
	case "ws", "wss":
		if u.Path == "" {
			u.Path = "/mqtt"
		}
		d := websocket.Dialer{TLSClientConfig: insecure, Subprotocols: []string{"mqtt"}, HandshakeTimeout: time.Until(deadline)}
		ws, _, err := d.DialContext(ctx, u.String(), nil)
		if err != nil {
			return fmt.Errorf("probe %s: %w", target, err)
		}
		ws.NetConn().SetDeadline(deadline)
		conn = &wsConn{Conn: ws.NetConn(), ws: ws}
	default:
		return fmt.Errorf("probe %s: scheme %q is not tcp, ssl, ws or wss", target, u.Scheme)
	}
	defer conn.Close()

	if _, err := conn.Write(connectPacket(ProbeClientID)); err != nil {
		return fmt.Errorf("probe %s: %w", target, err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("probe %s: the connection closed without a CONNACK", target)
		}
		return fmt.Errorf("probe %s: no CONNACK: %w", target, err)
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		return fmt.Errorf("probe %s: the answer is not a CONNACK (% x)", target, ack)
	}
	if ack[3] == 0 {
		conn.Write([]byte{0xe0, 0}) // DISCONNECT: no will, a clean log line
	}
	return nil
}

// connectPacket is an MQTT 3.1.1 CONNECT: clean session, keepalive 10 s,
// no will, no credentials.
func connectPacket(clientID string) []byte {
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 10, byte(len(clientID) >> 8), byte(len(clientID))}
	body = append(body, clientID...)
	return append([]byte{0x10, byte(len(body))}, body...)
}
