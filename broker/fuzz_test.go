package broker

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

func gzipJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return gzipBytes(b)
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func jsonOf(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeSnapshot: the database loader (issue 11) never panics, and
// whatever it accepts mochi takes without panicking, survives a save and
// load unchanged, and holds only messages and subscriptions a client
// could have made.
func FuzzDecodeSnapshot(f *testing.F) {
	good := snapshot{Version: storeVersion, Seq: seqBase + 3, Clients: []storedClient{{
		ID: "c1", Listener: "l1", Username: []byte("alice"), ProtocolVersion: 5,
		Subscriptions: []packets.Subscription{{Filter: "alice/#", Qos: 1}, {Filter: "$SYS/#"}},
		Inflight: []storedMessage{
			{Type: packets.Publish, QoS: 1, PacketID: 1, Topic: "alice/x", Payload: []byte("1"), Created: seqBase + 1},
			{Type: packets.Pubrel, PacketID: 2, Created: seqBase + 2 | sentBit},
		},
	}}, Retained: []storedMessage{{Type: packets.Publish, Retain: true, Topic: "r/1", Payload: []byte("x")}}}
	// The second argument says whether data is the file itself; else it
	// is the JSON inside, which the fuzzer mutates better than its gzip.
	f.Add(jsonOf(f, good), false)
	bad := good
	bad.Clients = []storedClient{good.Clients[0], good.Clients[0]}
	f.Add(jsonOf(f, bad), false)
	f.Add(jsonOf(f, map[string]any{"version": storeVersion, "retained": []map[string]any{{"type": 3, "topic": "a/+"}}}), false)
	f.Add(jsonOf(f, map[string]any{"version": storeVersion, "clients": []map[string]any{{"id": "x", "protocol_version": 4, "inflight": []map[string]any{{"type": 3, "qos": 3, "packet_id": 1, "topic": "t"}}}}}), false)
	f.Add([]byte("not gzip"), true)
	f.Add(gzipJSON(f, good)[:20], true)
	f.Add([]byte{}, true)
	// One server for every input (mochi's New is slow under the fuzzer's
	// instrumentation); a client id loaded again replaces the previous.
	b := &Broker{log: &logger{}, srv: mqtt.New(nil)}
	f.Fuzz(func(t *testing.T, data []byte, file bool) {
		parse := parseSnapshot
		if file {
			parse = decodeSnapshot
		}
		snap, err := parse(data)
		if err != nil {
			return
		}
		for _, c := range snap.Clients {
			for _, m := range c.Inflight {
				if m.PacketID == 0 || m.Type == packets.Publish && (m.QoS == 0 || strings.ContainsAny(m.Topic, "+#")) {
					t.Fatalf("accepted an impossible message in flight: %+v", m)
				}
			}
		}
		again, err := parseSnapshot(jsonOf(t, snap))
		if err != nil {
			t.Fatalf("a saved snapshot does not load: %v", err)
		}
		if !reflect.DeepEqual(normal(snap), normal(again)) {
			t.Fatalf("a snapshot changes when saved and loaded:\n%+v\n%+v", snap, again)
		}
		s := &store{b: b}
		s.load(snap)
		s.snapshot()
	})
}

// normal makes nil and empty slices alike, as JSON does.
func normal(s snapshot) string {
	b, _ := json.Marshal(s)
	var v any
	json.Unmarshal(b, &v)
	out, _ := json.Marshal(v)
	return string(out)
}

// FuzzSysTopics: whatever topic a client publishes to, the hook's $SYS
// handling (renamed on read, so that mochi does not drop a $SYS PUBLISH
// without an answer, and restored before the acl decision) gives back
// exactly the topic the client sent, and mochi never sees a $SYS topic.
func FuzzSysTopics(f *testing.F) {
	for _, s := range []string{"$SYS/broker/x", "$sys/x", "$SYS", "$SY", "home/x", "", "$SYS/broker/connection/a/state", sysPrefix + "x", sysPrefix + "$SYS/x", "$SYS\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		h := &hook{b: &Broker{}}
		pk, err := h.OnPacketRead(&mqtt.Client{}, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic})
		if err != nil {
			t.Fatal(err)
		}
		if got := restoreSysTopic(pk.TopicName); got != topic {
			t.Fatalf("topic %q came back as %q", topic, got)
		}
		if len(pk.TopicName) >= 4 && strings.EqualFold(pk.TopicName[:4], "$SYS") {
			t.Fatalf("mochi sees the $SYS topic %q", pk.TopicName)
		}
	})
}
