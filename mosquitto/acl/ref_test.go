package acl

import "strings"

// A second, naive implementation of the semantics Check documents, written
// from the MQTT specification and from what the real broker was seen to do
// (TestBroker keeps checking that against Mosquitto 2.0). It splits strings
// and allocates freely: it is an oracle for the tests, not for production.

// refMatch matches a topic filter against a topic level by level (MQTT 3.1.1
// section 4.7). Invalid filters and topics never match.
func refMatch(filter, topic string) bool {
	if !validFilter(filter) || topic == "" || strings.ContainsAny(topic, "+#") {
		return false
	}
	if strings.HasPrefix(topic, "$") != strings.HasPrefix(filter, "$") {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true // also matches the parent level: "a/#" matches "a"
		}
		if i >= len(tl) || (f != "+" && f != tl[i]) {
			return false
		}
	}
	return len(fl) == len(tl)
}

// refCheck walks the client's own rules, then the patterns, as Check's doc
// comment says, with no index.
func refCheck(f *File, c Client, topic string, access Access) bool {
	if (access != Read && access != Write) || topic == "" || strings.ContainsAny(topic, "+#") {
		return false
	}
	if strings.HasPrefix(topic, "$share") {
		return false
	}
	if strings.HasPrefix(topic, "$SYS") && access == Write && !refMatch("$SYS/broker/connection/+/state", topic) {
		return false
	}
	decide := func(rules []Rule) (decided, allowed bool) {
		for _, r := range rules {
			if r.Access == Deny && refMatch(r.Topic, topic) {
				return true, false
			}
		}
		for _, r := range rules {
			if r.Access&access != 0 && refMatch(r.Topic, topic) {
				return true, true
			}
		}
		return false, false
	}
	var own []Rule
	if c.Username == "" {
		own = f.Anonymous
	} else {
		for _, s := range f.Users {
			if s.User == c.Username {
				own = append(own, s.Rules...)
			}
		}
	}
	if decided, allowed := decide(own); decided {
		return allowed
	}
	if len(f.Patterns) == 0 || strings.ContainsAny(c.Username+c.ClientID, "+#") {
		return false
	}
	var expanded []Rule
	for _, p := range f.Patterns {
		if strings.Contains(p.Topic, "%u") && c.Username == "" {
			continue
		}
		t := strings.NewReplacer("%u", c.Username, "%c", c.ClientID).Replace(p.Topic)
		expanded = append(expanded, Rule{Access: p.Access, Topic: t})
	}
	_, allowed := decide(expanded)
	return allowed
}
