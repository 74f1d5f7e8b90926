// Package discovery publishes a home's Home Assistant discovery configs to
// the running broker, retained, and clears the configs of entities mqttgen
// declared before that the home no longer has.
package discovery

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqttgen/mqttgen/generators"
)

// Options say how to reach the broker.
type Options struct {
	// Broker is a paho URL: tcp://host:port, ssl://host:port or ws://host:port.
	Broker             string
	Username, Password string
	TLS                *tls.Config
	Timeout            time.Duration
}

// Report is what Publish did.
type Report struct {
	Published []string
	Cleared   []string
}

// Publish sends msgs retained with QoS 1 and clears, with an empty retained
// message, every retained config under prefix whose unique_id mqttgen made
// and that msgs no longer hold. Configs of other programs are never touched.
func Publish(opts Options, prefix string, msgs []generators.Discovery) (Report, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	id := "mqttgen-discovery-" + hex.EncodeToString(suffix)
	fence := prefix + "/mqttgen/fence/" + id

	var mu sync.Mutex
	var retained []string
	fenced := make(chan struct{})
	var once sync.Once
	handler := func(_ mqtt.Client, m mqtt.Message) {
		if m.Topic() == fence {
			once.Do(func() { close(fenced) })
			return
		}
		if !m.Retained() || len(m.Payload()) == 0 {
			return
		}
		var c struct {
			UniqueID string `json:"unique_id"`
		}
		if json.Unmarshal(m.Payload(), &c) == nil && generators.IsOwnUniqueID(c.UniqueID) {
			mu.Lock()
			retained = append(retained, m.Topic())
			mu.Unlock()
		}
	}

	co := mqtt.NewClientOptions().AddBroker(opts.Broker).SetClientID(id).
		SetUsername(opts.Username).SetPassword(opts.Password).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(opts.Timeout).
		// In order: the fence must reach the handler after every retained
		// config (unordered, paho runs each handler in its own goroutine).
		SetTLSConfig(opts.TLS).SetOrderMatters(true)
	c := mqtt.NewClient(co)
	if err := wait(c.Connect(), opts.Timeout, "connect to "+opts.Broker); err != nil {
		return Report{}, err
	}
	defer c.Disconnect(250)

	filters := map[string]byte{prefix + "/+/+/config": 1, prefix + "/+/+/+/config": 1, fence: 1}
	if err := wait(c.SubscribeMultiple(filters, handler), opts.Timeout, "subscribe"); err != nil {
		return Report{}, err
	}
	// The broker queues the retained configs at SUBSCRIBE, before this
	// message: once it is back, every retained config has arrived.
	if err := wait(c.Publish(fence, 1, false, "fence"), opts.Timeout, "publish"); err != nil {
		return Report{}, err
	}
	select {
	case <-fenced:
	case <-time.After(opts.Timeout):
		return Report{}, fmt.Errorf("the broker did not echo mqttgen's own message on %s: does %s may read and write %s/#?", fence, opts.Username, prefix)
	}

	var rep Report
	want := map[string]bool{}
	for _, m := range msgs {
		want[m.Topic] = true
	}
	mu.Lock()
	stale := slices.Clone(retained)
	mu.Unlock()
	slices.Sort(stale)
	for _, topic := range slices.Compact(stale) {
		if want[topic] {
			continue
		}
		if err := wait(c.Publish(topic, 1, true, []byte{}), opts.Timeout, "clear "+topic); err != nil {
			return rep, err
		}
		rep.Cleared = append(rep.Cleared, topic)
	}
	for _, m := range msgs {
		if err := wait(c.Publish(m.Topic, 1, true, m.Payload), opts.Timeout, "publish "+m.Topic); err != nil {
			return rep, err
		}
		rep.Published = append(rep.Published, m.Topic)
	}
	return rep, nil
}

func wait(t mqtt.Token, timeout time.Duration, what string) error {
	if !t.WaitTimeout(timeout) {
		return fmt.Errorf("%s: no answer within %s", what, timeout)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
