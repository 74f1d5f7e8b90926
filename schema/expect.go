package schema

import (
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
)

// Expect is one entry of expect: what an account may or may not do. Package
// aclcheck evaluates it against the rendered acl; here only its form is
// checked.
type Expect struct {
	As       string `json:"as"`
	Read     string `json:"read,omitempty"`
	Write    string `json:"write,omitempty"`
	Allowed  bool   `json:"allowed"`
	ClientID string `json:"client_id,omitempty"`
}

// AnonymousName is the name expectations use for clients without a login.
const AnonymousName = "anonymous"

// Topic returns the expectation's topic and whether it is about writing.
func (e Expect) Topic() (topic string, write bool) {
	if e.Write != "" {
		return e.Write, true
	}
	return e.Read, false
}

// Position returns where the value at path stands in the user's files, or
// the nearest enclosing value that does.
func (c *Config) Position(path string) string {
	if c.pos == nil {
		return ""
	}
	p := c.pos.of(path)
	if !p.IsValid() {
		return ""
	}
	c.pos.mu.Lock()
	name, ok := c.pos.names[p.Filename]
	if !ok {
		name = displayName(p.Filename)
		if c.pos.names == nil {
			c.pos.names = map[string]string{}
		}
		c.pos.names[p.Filename] = name
	}
	c.pos.mu.Unlock()
	return name + ":" + itoa(p.Line) + ":" + itoa(p.Column)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func (c *checker) expectations() {
	cfg := c.cfg
	for i, e := range cfg.Expect {
		p := Path("expect", i)
		_, user := cfg.Users[e.As]
		_, device := cfg.Devices[e.As]
		if e.As != AnonymousName && !user && !device {
			c.errorf(Path("expect", i, "as"), "%q is no user or device of this home: name one, or \"anonymous\"", e.As)
		}
		if e.As == AnonymousName && user {
			c.warnf(Path("expect", i, "as"), "\"anonymous\" here means clients without a login, not the user named anonymous")
		}
		switch {
		case (e.Read == "") == (e.Write == ""):
			c.errorf(p, "an expectation names one topic, as read: TOPIC or write: TOPIC")
			continue
		}
		topic, write := e.Topic()
		field := "read"
		if write {
			field = "write"
		}
		if err := acl.CheckFilter(topic, false); err != nil {
			c.errorf(Path("expect", i, field), "%v", err)
		} else if strings.ContainsAny(topic, "+#") {
			c.errorf(Path("expect", i, field), "%q holds a wildcard: an expectation names one topic, as a client publishes it (e.g. %q)", topic, strings.NewReplacer("+", "x", "#", "x").Replace(topic))
		}
		if e.ClientID != "" && strings.ContainsAny(e.ClientID, "+#/") {
			c.errorf(Path("expect", i, "client_id"), "%q: a client id with '+', '#' or '/' is not one a client can use here", e.ClientID)
		}
	}
}
