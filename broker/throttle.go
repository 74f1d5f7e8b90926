package broker

import (
	"net"
	"sync"
	"time"
)

// loginThrottle slows password guessing: after loginFree failed logins
// from one address (a username and a wrong or missing password, or an
// unknown user), each further CONNECT from it waits, twice as long after
// each failure, up to loginMaxDelay; parallel connections wait in turn.
// A successful login, or loginWindow without a failure, forgets the
// address. Anonymous refusals do not count: they guess nothing (and the
// image's healthcheck makes one every 30 s).
type loginThrottle struct {
	base time.Duration // the first delay; 0 turns the throttle off
	mu   sync.Mutex
	m    map[string]*loginFailures
}

type loginFailures struct {
	n    int
	last time.Time
	// next is when the next attempt from the address may be checked.
	next time.Time
}

const (
	loginFree     = 10
	loginMaxDelay = 10 * time.Second
	loginWindow   = 10 * time.Minute
	// loginTracked bounds the addresses remembered.
	loginTracked = 10000
)

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// delay is the wait after n failures.
func (t *loginThrottle) delay(n int) time.Duration {
	if n < loginFree || t.base <= 0 {
		return 0
	}
	d := t.base
	for i := loginFree; i < n && d < loginMaxDelay; i++ {
		d *= 2
	}
	return min(d, loginMaxDelay)
}

// wait holds a login attempt from addr as long as its failures ask, or
// until done is closed.
func (t *loginThrottle) wait(addr string, done <-chan struct{}) {
	t.mu.Lock()
	f := t.m[hostOf(addr)]
	now := time.Now()
	if f == nil || now.Sub(f.last) > loginWindow {
		t.mu.Unlock()
		return
	}
	d := t.delay(f.n)
	if d == 0 {
		t.mu.Unlock()
		return
	}
	if f.next.Before(now) {
		f.next = now
	}
	f.next = f.next.Add(d)
	until := f.next
	t.mu.Unlock()
	timer := time.NewTimer(time.Until(until))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-done:
	}
}

// failed counts a failed login from addr and returns how many there have
// been and the delay the next attempt will wait.
func (t *loginThrottle) failed(addr string) (int, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	host := hostOf(addr)
	now := time.Now()
	if t.m == nil {
		t.m = map[string]*loginFailures{}
	}
	f := t.m[host]
	if f == nil || now.Sub(f.last) > loginWindow {
		if len(t.m) >= loginTracked {
			for h, g := range t.m {
				if now.Sub(g.last) > loginWindow {
					delete(t.m, h)
				}
			}
			if len(t.m) >= loginTracked {
				return 0, 0
			}
		}
		f = &loginFailures{}
		t.m[host] = f
	}
	f.n++
	f.last = now
	return f.n, t.delay(f.n)
}

// succeeded forgets addr's failures.
func (t *loginThrottle) succeeded(addr string) {
	t.mu.Lock()
	delete(t.m, hostOf(addr))
	t.mu.Unlock()
}
