package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// aclCache keeps a connected client's access decisions per topic, so that
// a subscriber's deliveries and a publisher's messages do not walk the acl
// file each time. A decision depends only on the rules (the listener's
// *security, replaced as a whole by every reload, SIGHUP included), the
// client's username and client id (fixed for a connection) and the topic:
// entries are kept for one *security and dropped when the client is next
// checked under another, so a cached decision is always the one the rules
// in force give (TestACLCache).
type aclCache struct {
	mu  sync.Mutex
	sec *security
	m   map[string]uint8
}

// aclCacheSize bounds the topics remembered per client: a client that
// publishes on ever new topics costs no more than this.
const aclCacheSize = 64

const (
	readKnown uint8 = 1 << iota
	readAllowed
	writeKnown
	writeAllowed
)

// check returns the decision of sec for cl on topic (read or write),
// computing it with decide once per rules, client and topic.
func (c *aclCache) check(sec *security, topic string, write bool, decide func() bool) bool {
	known, allowed := readKnown, readAllowed
	if write {
		known, allowed = writeKnown, writeAllowed
	}
	c.mu.Lock()
	if c.sec != sec {
		c.sec, c.m = sec, nil
	}
	if v, ok := c.m[topic]; ok && v&known != 0 {
		c.mu.Unlock()
		return v&allowed != 0
	}
	c.mu.Unlock()
	ok := decide()
	c.mu.Lock()
	if c.sec == sec {
		if c.m == nil {
			c.m = make(map[string]uint8, 4)
		}
		if v, in := c.m[topic]; in || len(c.m) < aclCacheSize {
			v |= known
			if ok {
				v |= allowed
			}
			c.m[topic] = v
		}
	}
	c.mu.Unlock()
	return ok
}

// mayRead reports whether sec lets cl read topic, cached in st.
func (b *Broker) mayRead(cl *mqtt.Client, st *clientState, sec *security, topic string) bool {
	if st == nil || sec.acl == nil {
		return sec.canRead(aclClient(cl), topic)
	}
	return st.acls.check(sec, topic, false, func() bool { return sec.canRead(aclClient(cl), topic) })
}

// mayWrite reports whether sec lets cl write topic, cached in st.
func (b *Broker) mayWrite(cl *mqtt.Client, st *clientState, sec *security, topic string) bool {
	if st == nil || sec.acl == nil {
		return sec.canWrite(aclClient(cl), topic)
	}
	return st.acls.check(sec, topic, true, func() bool { return sec.canWrite(aclClient(cl), topic) })
}
