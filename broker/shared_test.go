package broker

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// The subscribers of a shared subscription group take turns (the engine's
// SelectShared, third_party/mochi): mochi took the first of a map iteration,
// which gave one of two subscribers seven messages in eight, and testmqtt's
// load-balancing check failed one run in four.
func TestSharedSubscribersTakeTurns(t *testing.T) {
	const group = "$share/g/home/+/state"
	counts := map[string]int{}
	for range 30 {
		s := &mqtt.Subscribers{Shared: map[string]map[string]packets.Subscription{group: {
			"a": {Filter: group}, "b": {Filter: group}, "c": {Filter: group},
		}}}
		s.SelectShared()
		if len(s.SharedSelected) != 1 {
			t.Fatalf("%d subscribers selected for one group, want 1", len(s.SharedSelected))
		}
		for id := range s.SharedSelected {
			counts[id]++
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		if counts[id] != 10 {
			t.Errorf("30 messages to a group of three: %v, want 10 each", counts)
			break
		}
	}
}
