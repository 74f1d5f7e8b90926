package bench

import (
	"fmt"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Login is one client's connection parameters.
type Login struct {
	Addr, ClientID, Username, Password string
	KeepAlive                          time.Duration
}

// PlainConn leaves paho its own connection (no bufConn): for checking
// that a finding is not the load generator's.
var PlainConn bool

// connLost counts connections a broker closed during a run: none should be.
var connLost atomic.Int64

// Connect opens an MQTT 3.1.1 connection with paho.mqtt.golang: clean
// session, no reconnection (a lost connection is a failure of the run), the
// handler of each subscription called in order on the client's own
// goroutine, no write timeout (paho would set a socket deadline around
// every packet), buffered reads and coalesced writes (bufConn).
func Connect(l Login) (mqtt.Client, error) {
	if l.KeepAlive == 0 {
		l.KeepAlive = 60 * time.Second
	}
	o := mqtt.NewClientOptions().
		AddBroker("tcp://" + l.Addr).
		SetClientID(l.ClientID).
		SetUsername(l.Username).
		SetPassword(l.Password).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(l.KeepAlive).
		SetPingTimeout(30 * time.Second).
		SetConnectTimeout(20 * time.Second).
		SetOrderMatters(true).
		SetCustomOpenConnectionFn(dialBuffered).
		SetConnectionLostHandler(func(mqtt.Client, error) { connLost.Add(1) })
	if PlainConn {
		o.CustomOpenConnectionFn = nil // the setter ignores nil
	}
	c := mqtt.NewClient(o)
	t := c.Connect()
	if !t.WaitTimeout(30 * time.Second) {
		return nil, fmt.Errorf("%s: CONNECT as %s: no CONNACK within 30 s", l.Addr, l.Username)
	}
	if err := t.Error(); err != nil {
		return nil, fmt.Errorf("%s: CONNECT as %s: %w", l.Addr, l.Username, err)
	}
	return c, nil
}

// Subscribe subscribes c to filter and waits for the SUBACK.
func Subscribe(c mqtt.Client, filter string, qos byte, h mqtt.MessageHandler) error {
	t := c.Subscribe(filter, qos, h)
	if !t.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("SUBSCRIBE %s: no SUBACK within 10 s", filter)
	}
	return t.Error()
}
