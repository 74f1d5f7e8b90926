package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// ProbeClientID is the client id of Probe, as Mosquitto's healthcheck
// (mosquitto_sub -i mqttgen-healthcheck) uses.
const ProbeClientID = "mqttgen-healthcheck"

// Login is a username and password a probe sends.
type Login struct{ User, Password string }

// MaxProbeLogin bounds the options file ReadProbeLogin reads.
const MaxProbeLogin = 4096

// ReadProbeLogin reads the healthcheck's login from a mosquitto_sub options
// file, as mosquitto_sub reads $XDG_CONFIG_HOME/mosquitto_sub: a `-u USER`
// and a `-P PASSWORD` line (the password is the rest of its line); blank
// lines and lines starting with # are skipped, other options refused. The
// password is in a file, never on the command line of the healthcheck.
// A missing or empty file (a restored archive older than the probe's login
// left it so) is no login: the probe goes anonymous, a refusal still being
// an answer.
func ReadProbeLogin(path string) (*Login, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxProbeLogin+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxProbeLogin {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxProbeLogin)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	var l Login
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		opt, val, _ := strings.Cut(line, " ")
		switch opt {
		case "-u", "--username":
			l.User = val
		case "-P", "--pw":
			l.Password = val
		default:
			return nil, fmt.Errorf("%s:%d: want -u USER or -P PASSWORD", path, i+1)
		}
	}
	if l.User == "" || l.Password == "" {
		return nil, fmt.Errorf("%s: want a -u USER and a -P PASSWORD line", path)
	}
	return &l, nil
}

// Probe asks the broker at target for a CONNACK: it sends an MQTT 3.1.1
// CONNECT (clean session, client id ProbeClientID) with login's username
// and password, or none when login is nil, and returns nil on any CONNACK,
// "not authorised" included, since a refusal still proves that the broker
// reads its files and answers; with the healthcheck's own login it is not
// refused, so neither engine logs a refusal for it. It is the healthcheck
// of the bundled broker's image, which has no shell and no mosquitto_sub.
//
// target is a URL: tcp://HOST:PORT (or mqtt://, or HOST:PORT alone),
// ssl://, tls:// or mqtts:// for MQTT over TLS, ws:// and wss:// for MQTT
// over WebSockets. The server's certificate is not verified: this checks
// liveness, not identity.
func Probe(ctx context.Context, target string, login *Login, timeout time.Duration) error {
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

	if _, err := conn.Write(connectPacket(ProbeClientID, login)); err != nil {
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
// no will, the login's username and password when there is one.
func connectPacket(clientID string, login *Login) []byte {
	flags := byte(0x02)
	if login != nil {
		flags |= 0xc0
	}
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, flags, 0, 10}
	str := func(s string) { body = append(body, byte(len(s)>>8), byte(len(s))); body = append(body, s...) }
	str(clientID)
	if login != nil {
		str(login.User)
		str(login.Password)
	}
	// The remaining length, MQTT's variable-length integer.
	head := []byte{0x10}
	for n := len(body); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		head = append(head, b)
		if n == 0 {
			break
		}
	}
	return append(head, body...)
}
