package broker

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The cached access decisions are the ones the rules in force give,
// before and after a reload (SIGHUP's), and a failed reload changes none;
// deliveries follow the reloaded rules at once.
func TestACLCache(t *testing.T) {
	tb := newTestBroker(t, "user alice\ntopic read a/#\ntopic write w/#\nuser bob\ntopic write #\n", "")
	var mu sync.Mutex
	var got []string
	sub, err := tb.client("alice", "alice-pw", "a")
	if err != nil {
		t.Fatal(err)
	}
	if tok := sub.Subscribe("#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		got = append(got, m.Topic())
		mu.Unlock()
	}); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	pub, err := tb.client("bob", "bob-pw", "b")
	if err != nil {
		t.Fatal(err)
	}
	publish := func(topics ...string) {
		t.Helper()
		for _, topic := range topics {
			if tok := pub.Publish(topic, 1, false, "m"); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
		}
	}
	received := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			mu.Lock()
			g := append([]string(nil), got...)
			mu.Unlock()
			if len(g) >= len(want) || time.Now().After(deadline) {
				time.Sleep(100 * time.Millisecond)
				mu.Lock()
				g = append([]string(nil), got...)
				got = nil
				mu.Unlock()
				if len(g) != len(want) || (len(want) > 0 && g[0] != want[0]) {
					t.Fatalf("alice received %v, want %v", g, want)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cl, ok := tb.b.srv.Clients.Get("a")
	if !ok {
		t.Fatal("client a is not connected")
	}
	topics := []string{"a/x", "b/x", "w/x", "a/x", "a/y", "w/x"}
	agree := func(when string) {
		t.Helper()
		sec := tb.b.sec.Load().byListener[cl.Net.Listener]
		for range 2 { // the second round is answered from the cache
			for _, topic := range topics {
				if g, w := tb.b.canRead(cl, topic), sec.canRead(aclClient(cl), topic); g != w {
					t.Errorf("%s: read %s: cached %v, rules %v", when, topic, g, w)
				}
				if g, w := tb.b.mayWrite(cl, tb.b.state(cl), sec, topic), sec.canWrite(aclClient(cl), topic); g != w {
					t.Errorf("%s: write %s: cached %v, rules %v", when, topic, g, w)
				}
			}
		}
	}
	agree("first rules")
	publish("a/1", "b/1")
	received("a/1")

	writeFile(t, filepath.Join(tb.dir, "acl"), "user alice\ntopic read b/#\ntopic write a/#\nuser bob\ntopic write #\n")
	if err := tb.b.Reload(); err != nil {
		t.Fatal(err)
	}
	agree("after the reload")
	if tb.b.canRead(cl, "a/x") || !tb.b.canRead(cl, "b/x") {
		t.Error("the reload did not change alice's read rights")
	}
	publish("a/2", "b/2")
	received("b/2")

	writeFile(t, filepath.Join(tb.dir, "acl"), "user alice\ntopic readwrite #\nnonsense\n")
	if err := tb.b.Reload(); err == nil {
		t.Fatal("a broken acl file reloaded")
	}
	agree("after a failed reload")
	publish("a/3", "b/3")
	received("b/3")
}
