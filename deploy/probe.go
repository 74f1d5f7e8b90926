package deploy

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// ProbeLogin logs in to one listener as apply's readiness check does, and
// out again cleanly.
func ProbeLogin(host string, t ProbeTarget, cred Credentials) error {
	return probeTarget(host, t, cred, true)
}

// errRefused says the broker answered but refused the login.
var errRefused = errors.New("refused the login")

// probeTarget connects to one listener and logs in. With auth false, a
// broker that answers CONNACK but refuses the login passes too (used after a
// rollback, when the previous passwd may not know the probe's password).
func probeTarget(host string, t ProbeTarget, cred Credentials, auth bool) error {
	addr := net.JoinHostPort(targetHost(host, t), strconv.Itoa(t.Port))
	if t.ClientCert {
		// No client certificate here: a TLS handshake is all we can check.
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return fmt.Errorf("listener %s (%s): %w", t.Listener, addr, err)
		}
		return conn.Close()
	}
	scheme := "tcp"
	switch {
	case t.Websockets && t.TLS:
		scheme = "wss"
	case t.Websockets:
		scheme = "ws"
	case t.TLS:
		scheme = "ssl"
	}
	url := scheme + "://" + addr
	if t.Websockets {
		url += "/mqtt"
	}
	id := make([]byte, 6)
	rand.Read(id)
	opts := mqtt.NewClientOptions().
		AddBroker(url).
		SetClientID("mqttgen-probe-" + hex.EncodeToString(id)).
		SetCleanSession(true).
		SetProtocolVersion(4).
		SetConnectTimeout(2 * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetTLSConfig(&tls.Config{InsecureSkipVerify: true}) // liveness, not identity: certs are compared separately
	if cred.Username != "" {
		opts.SetUsername(cred.Username).SetPassword(cred.Password)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(3 * time.Second) {
		return fmt.Errorf("listener %s (%s): no CONNACK within 3s", t.Listener, addr)
	}
	if err := tok.Error(); err != nil {
		refused := errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword)
		if refused && !auth {
			return nil
		}
		who := "anonymous login"
		if cred.Username != "" {
			who = "login of " + cred.Username
		}
		if refused {
			return fmt.Errorf("listener %s (%s): the broker %w (%s): %v", t.Listener, addr, errRefused, who, err)
		}
		return fmt.Errorf("listener %s (%s): %v", t.Listener, addr, err)
	}
	// A moment for paho to send DISCONNECT before it closes the socket:
	// without it the WebSocket ends with no close frame and no DISCONNECT,
	// which the broker logs as a protocol error at every apply.
	c.Disconnect(250)
	return nil
}

func targetHost(host string, t ProbeTarget) string {
	if t.HostIP != "" && t.HostIP != "0.0.0.0" && t.HostIP != "::" {
		return t.HostIP
	}
	return host
}

// servedCertificate returns the leaf certificate a TLS listener presents.
func servedCertificate(host string, t ProbeTarget) ([]byte, error) {
	addr := net.JoinHostPort(targetHost(host, t), strconv.Itoa(t.Port))
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate")
	}
	return certs[0].Raw, nil
}

// leafDER is the first certificate of a PEM file.
func leafDER(pemData []byte) []byte {
	b, _ := pem.Decode(pemData)
	if b == nil {
		return nil
	}
	return b.Bytes
}

// checkCertificates compares what each TLS listener serves with the
// certificate of the files: Mosquitto keeps serving the old certificate when
// it cannot load a new one at SIGHUP, logging an error nobody reads.
func checkCertificates(host string, targets []ProbeTarget, crtPEM []byte) error {
	want := leafDER(crtPEM)
	if want == nil {
		return nil
	}
	for _, t := range targets {
		if !t.TLS {
			continue
		}
		got, err := servedCertificate(host, t)
		if err != nil {
			return fmt.Errorf("listener %s: %w", t.Listener, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("listener %s still serves the previous certificate: Mosquitto could not load the new one", t.Listener)
		}
	}
	return nil
}

// ProbeTarget is one listener as this host reaches it.
type ProbeTarget struct {
	Listener   string `json:"listener"`
	HostIP     string `json:"host_ip,omitempty"`
	Port       int    `json:"port"`
	TLS        bool   `json:"tls,omitempty"`
	Websockets bool   `json:"websockets,omitempty"`
	// ClientCert: the listener requires a client certificate, which the
	// probe does not have; it checks the TLS handshake only.
	ClientCert bool `json:"client_cert,omitempty"`
}

// ProbeTargets reads the listeners of a mosquitto.conf and finds the port
// each is published on, so that the files and spec of any container, the
// previous one included, say how to reach it.
func ProbeTargets(files []generators.File, sp *Spec) []ProbeTarget {
	var data []byte
	for _, f := range files {
		if f.Path == "mosquitto.conf" {
			data = f.Data
		}
	}
	var out []ProbeTarget
	for _, sec := range conf.Read("mosquitto.conf", data).Sections {
		if !sec.Listener() {
			continue
		}
		port, err := strconv.Atoi(sec.Name())
		if err != nil || port == 0 {
			continue
		}
		t := ProbeTarget{Listener: strconv.Itoa(port), Port: port}
		published := false
		if sp != nil {
			for _, p := range sp.Ports {
				if p.Target == port {
					t.Port, t.HostIP, published = p.Published, p.HostIP, true
					t.Listener = strconv.Itoa(p.Published)
				}
			}
		}
		if !published {
			continue
		}
		for _, d := range sec.Directives {
			switch {
			case d.Key == "protocol" && d.Value == "websockets":
				t.Websockets = true
			case d.Key == "certfile" || d.Key == "psk_hint":
				t.TLS = true
			case d.Key == "require_certificate" && d.Value == "true":
				t.ClientCert = true
			}
		}
		out = append(out, t)
	}
	return out
}
