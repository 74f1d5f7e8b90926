// Package discovery publishes a home's Home Assistant device discovery
// configs to the running broker, retained; migrates the per-component
// configs mqttgen published before (migrate_discovery keeps the entity
// ids); and removes what mqttgen declared before that the home no longer
// has: an entity by its cmps entry, a device by an empty retained config.
// Configs mqttgen did not make are never touched.
package discovery

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	// Migrated are per-component configs moved into a device config.
	Migrated []string
	// Cleared are configs emptied: devices removed, and per-component
	// configs of entities removed.
	Cleared []string
	// Removed are components dropped from a device config ("topic cmp").
	Removed []string
}

// retained is what the broker holds of mqttgen's own configs.
type retained struct {
	// perComponent: topic -> unique_id of a per-component config.
	perComponent map[string]string
	// devices: topic -> cmps id -> platform, of a device config whose
	// components carry unique ids (a component reduced to its platform is
	// already removed).
	devices map[string]map[string]string
}

// Publish sends the device configs msgs retained with QoS 1, after it
//   - sends {"migrate_discovery": true} to each per-component config of
//     mqttgen whose unique_id a device config now holds, and clears it
//     after the device config is out (HA keeps the entity and its id);
//   - adds {"platform": P} to a device config for each component its
//     retained config had and msgs no longer have (HA removes it);
//   - clears the device configs of mqttgen's devices msgs no longer have,
//     and the per-component configs of entities no longer declared.
//
// Configs are mqttgen's when their unique_id, or a device config's
// device identifier, was made by generators.UniqueID or DeviceID.
func Publish(opts Options, prefix string, msgs []generators.Discovery) (Report, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	id := "mqttgen-discovery-" + hex.EncodeToString(suffix)
	fence := prefix + "/mqttgen/fence/" + id

	var mu sync.Mutex
	old := retained{perComponent: map[string]string{}, devices: map[string]map[string]string{}}
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
		mu.Lock()
		defer mu.Unlock()
		old.add(prefix, m.Topic(), m.Payload())
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

	mu.Lock()
	defer mu.Unlock()
	var rep Report
	owner := map[string]string{} // unique_id -> device config topic
	want := map[string]bool{}
	for _, m := range msgs {
		want[m.Topic] = true
		for _, id := range m.UniqueIDs {
			owner[id] = m.Topic
		}
	}
	pub := func(topic string, payload []byte) error {
		return wait(c.Publish(topic, 1, true, payload), opts.Timeout, "publish "+topic)
	}

	var migrate, stale []string
	for _, topic := range slices.Sorted(maps.Keys(old.perComponent)) {
		if _, ok := owner[old.perComponent[topic]]; ok {
			migrate = append(migrate, topic)
		} else {
			stale = append(stale, topic)
		}
	}
	for _, topic := range migrate {
		if err := pub(topic, []byte(`{"migrate_discovery": true}`)); err != nil {
			return rep, err
		}
	}
	for _, m := range msgs {
		payload, removed, err := withRemovals(m.Payload, old.devices[m.Topic])
		if err != nil {
			return rep, err
		}
		if err := pub(m.Topic, payload); err != nil {
			return rep, err
		}
		rep.Published = append(rep.Published, m.Topic)
		for _, cmp := range removed {
			rep.Removed = append(rep.Removed, m.Topic+" "+cmp)
		}
	}
	// Once the device config holds the migrated entities, their old
	// topics are emptied: no stale config stays retained.
	for _, topic := range migrate {
		if err := pub(topic, []byte{}); err != nil {
			return rep, err
		}
		rep.Migrated = append(rep.Migrated, topic)
	}
	for _, topic := range stale {
		if err := pub(topic, []byte{}); err != nil {
			return rep, err
		}
		rep.Cleared = append(rep.Cleared, topic)
	}
	for _, topic := range slices.Sorted(maps.Keys(old.devices)) {
		if want[topic] {
			continue
		}
		if err := pub(topic, []byte{}); err != nil {
			return rep, err
		}
		rep.Cleared = append(rep.Cleared, topic)
	}
	return rep, nil
}

// add records a retained config if mqttgen made it.
func (r *retained) add(prefix, topic string, payload []byte) {
	var c struct {
		UniqueID string `json:"unique_id"`
		Device   struct {
			Identifiers []string `json:"identifiers"`
		} `json:"device"`
		Cmps map[string]struct {
			Platform  string `json:"platform"`
			P         string `json:"p"`
			UniqueID  string `json:"unique_id"`
			UniqueID2 string `json:"uniq_id"`
		} `json:"cmps"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return
	}
	if strings.HasPrefix(topic, prefix+"/device/") {
		if len(c.Device.Identifiers) == 0 || !generators.IsOwnDeviceID(c.Device.Identifiers[0]) {
			return
		}
		cmps := map[string]string{}
		for id, cmp := range c.Cmps {
			if cmp.UniqueID != "" || cmp.UniqueID2 != "" {
				cmps[id] = cmp.Platform + cmp.P
			}
		}
		r.devices[topic] = cmps
		return
	}
	if generators.IsOwnUniqueID(c.UniqueID) {
		r.perComponent[topic] = c.UniqueID
	}
}

// withRemovals adds {"platform": P} to payload's cmps for each component
// of the retained config (id -> platform) that payload no longer has.
func withRemovals(payload []byte, old map[string]string) ([]byte, []string, error) {
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, nil, err
	}
	cmps, _ := c["cmps"].(map[string]any)
	var removed []string
	for _, id := range slices.Sorted(maps.Keys(old)) {
		if _, ok := cmps[id]; !ok {
			cmps[id] = map[string]any{"platform": old[id]}
			removed = append(removed, id)
		}
	}
	if len(removed) == 0 {
		return payload, nil, nil
	}
	out, err := json.Marshal(c)
	return out, removed, err
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
