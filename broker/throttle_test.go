package broker

import (
	"strings"
	"testing"
	"time"
)

// TestLoginThrottle (issue 11): failed logins from one address are slowed,
// twice as long after each failure past the first loginFree, and logged;
// anonymous refusals do not count; a good login forgets the failures.
func TestLoginThrottle(t *testing.T) {
	const base = 200 * time.Millisecond
	tb := newTestBroker(t, "user alice\ntopic readwrite #\n", "", func(o *Options) { o.loginDelay = base })
	failures := func() int {
		tb.b.logins.mu.Lock()
		defer tb.b.logins.mu.Unlock()
		if f := tb.b.logins.m["127.0.0.1"]; f != nil {
			return f.n
		}
		return 0
	}
	for range loginFree {
		if _, err := tb.client("alice", "guess", "g"); err == nil {
			t.Fatal("a wrong password was accepted")
		}
	}
	if n := failures(); n != loginFree {
		t.Fatalf("%d failures counted, want %d", n, loginFree)
	}
	for i, want := range []time.Duration{base, 2 * base} {
		start := time.Now()
		if _, err := tb.client("alice", "guess", "g"); err == nil {
			t.Fatal("a wrong password was accepted")
		}
		if took := time.Since(start); took < want {
			t.Errorf("guess %d past the free ones was answered after %v, not delayed %v", i+1, took, want)
		}
	}
	if !tb.waitLog("12 failed logins from 127.0.0.1: its next login waits 800ms.") {
		t.Errorf("the delay is not logged:\n%s", tb.log())
	}
	if _, err := tb.client("", "", "anon"); err == nil {
		t.Fatal("anonymous login accepted")
	}
	if n := failures(); n != loginFree+2 {
		t.Errorf("an anonymous refusal counted as a guess: %d failures", n)
	}
	if _, err := tb.client("alice", "alice-pw", "ok"); err != nil {
		t.Fatalf("the right password after failures: %v", err)
	}
	if n := failures(); n != 0 {
		t.Errorf("a good login left %d failures", n)
	}
	if strings.Contains(tb.log(), "alice-pw") || strings.Contains(tb.log(), "guess") {
		t.Errorf("a password is in the log:\n%s", tb.log())
	}
}
