package integration

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// The expectations of the acl tests come from the rendered acl file, read
// here independently of mqttgen's own acl package, with Mosquitto's
// semantics as FACTS.md states them; the broker must then behave exactly so.
// What the file should contain for a home is checked separately, by
// scenarios written out by hand.

// access is what a rule grants or denies.
type access int

const (
	read access = 1 << iota
	write
	deny
	readwrite = read | write
)

type rule struct {
	Access access
	Topic  string
}

type section struct {
	User  string
	Rules []rule
}

// aclFile is a parsed Mosquitto acl file.
type aclFile struct {
	Anonymous []rule
	Users     []section
	Patterns  []rule
}

// parseACL reads an acl file as Mosquitto 2.0 does: topic lines before the
// first user line are for anonymous clients, sections of one user merge,
// no access word means readwrite, '#' in column 1 starts a comment.
func parseACL(r io.Reader) (*aclFile, error) {
	words := map[string]access{"read": read, "write": write, "readwrite": readwrite, "deny": deny}
	f := &aclFile{}
	index := map[string]int{}
	cur := -1
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch kw {
		case "user":
			i, ok := index[rest]
			if !ok {
				i = len(f.Users)
				index[rest] = i
				f.Users = append(f.Users, section{User: rest})
			}
			cur = i
		case "topic", "pattern":
			word, topic, _ := strings.Cut(rest, " ")
			a, ok := words[word]
			if !ok {
				a, topic = readwrite, rest
			}
			r := rule{Access: a, Topic: strings.TrimSpace(topic)}
			switch {
			case kw == "pattern":
				f.Patterns = append(f.Patterns, r)
			case cur < 0:
				f.Anonymous = append(f.Anonymous, r)
			default:
				f.Users[cur].Rules = append(f.Users[cur].Rules, r)
			}
		default:
			return nil, fmt.Errorf("line %d: unknown keyword %q", n, kw)
		}
	}
	return f, sc.Err()
}

// rulesOf are the rules that apply to a client: the anonymous section or the
// user's sections, and every pattern with %c and %u filled in (%u patterns
// never apply to anonymous clients).
func rulesOf(f *aclFile, user, clientID string) []rule {
	var rules []rule
	if user == "" {
		rules = append(rules, f.Anonymous...)
	}
	for _, s := range f.Users {
		if user != "" && s.User == user {
			rules = append(rules, s.Rules...)
		}
	}
	for _, p := range f.Patterns {
		if strings.Contains(p.Topic, "%u") && user == "" {
			continue
		}
		topic := strings.ReplaceAll(p.Topic, "%c", clientID)
		topic = strings.ReplaceAll(topic, "%u", user)
		rules = append(rules, rule{Access: p.Access, Topic: topic})
	}
	return rules
}

// may reports whether the client may read or write (want) topic: some rule
// grants it and no deny rule matches. Publishing to $SYS is always denied.
func may(f *aclFile, user, clientID, topic string, want access) bool {
	if want == write && strings.HasPrefix(topic, "$SYS") {
		return false
	}
	granted := false
	for _, r := range rulesOf(f, user, clientID) {
		if !matches(r.Topic, topic) {
			continue
		}
		if r.Access == deny {
			return false
		}
		if r.Access&want != 0 {
			granted = true
		}
	}
	return granted
}

// matches is MQTT topic matching: '+' one level, '#' the rest (the parent
// included), and a filter not starting with '$' never matches a '$' topic.
func matches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") != strings.HasPrefix(filter, "$") {
		return false
	}
	fl, tl := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(tl) {
			return false
		}
		if f != "+" && f != tl[i] {
			return false
		}
	}
	return len(fl) == len(tl)
}

// concrete is a topic a filter matches, to publish on: wildcards become
// plain levels. "$SYS/#" becomes $SYS/broker/version, a retained topic the
// broker publishes at start.
func concrete(filter, clientID, user string) string {
	filter = strings.ReplaceAll(filter, "%c", clientID)
	filter = strings.ReplaceAll(filter, "%u", user)
	if filter == "$SYS/#" {
		return "$SYS/broker/version"
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		switch l {
		case "+":
			levels[i] = "any"
		case "#":
			levels[i] = "probe"
		}
	}
	return strings.Join(levels, "/")
}
