package acl

import "strings"

// Client is who asks for access.
type Client struct {
	Username string // "" means anonymous
	ClientID string
}

// Check reports whether the client may read (receive) or write (publish) on
// topic, with the semantics of Mosquitto 2.0's acl_file:
//
//   - Publishing to a topic that starts with "$SYS" is denied, except
//     "$SYS/broker/connection/+/state" (bridge status), which the rules
//     decide. Any read or write on a topic starting with "$share" is denied.
//   - The client's own list comes first: the rules before the first user
//     line for an anonymous client, the user's sections (merged) for one with
//     a username. A matching deny rule there denies; otherwise a matching
//     rule granting the access allows.
//   - Then, if there are patterns, a client whose username or client id
//     holds '+' or '#' is denied. Patterns are read with %u replaced by the
//     username and %c by the client id; patterns using %u never apply to
//     anonymous clients. A matching deny pattern denies; otherwise a matching
//     pattern granting the access allows.
//   - Nothing matched: denied.
//
// So a deny wins over grants in the same list, but a grant in the client's
// own list wins over a deny pattern. A filter not starting with '$' never
// matches a topic starting with '$' ('#' does not cover $SYS). access must
// be Read or Write; anything else, and a topic that is empty or holds a
// wildcard, is denied.
//
// Check indexes the file on its first call and keeps the index: a File must
// not be changed once Check has been called on it (parse or build a new one
// instead). Check is safe for concurrent use and does not allocate, except
// for pattern filters that expand to more than 256 bytes.
func (f *File) Check(c Client, topic string, access Access) bool {
	if (access != Read && access != Write) || topic == "" || strings.ContainsAny(topic, "+#") {
		return false
	}
	if topic[0] == '$' {
		switch {
		case strings.HasPrefix(topic, "$SYS"):
			if access == Write && !matchFilter("$SYS/broker/connection/+/state", topic) {
				return false
			}
		case strings.HasPrefix(topic, "$share"):
			return false
		}
	}
	x := f.index()
	var own []Rule
	if c.Username == "" {
		own = x.anonymous
	} else {
		own = x.users[c.Username]
	}
	for i := range own {
		r := &own[i]
		if r.Access&Deny == 0 && r.Access&access == 0 {
			continue
		}
		if matchFilter(r.Topic, topic) {
			return r.Access&Deny == 0
		}
	}
	if len(x.patterns) == 0 ||
		strings.ContainsAny(c.Username, "+#") || strings.ContainsAny(c.ClientID, "+#") {
		return false
	}
	for i := range x.patterns {
		p := &x.patterns[i]
		if (p.access&Deny == 0 && p.access&access == 0) || (p.user && c.Username == "") {
			continue
		}
		var match bool
		if len(p.parts) == 1 {
			match = matchFilter(p.parts[0], topic)
		} else {
			var buf [256]byte
			match = matchFilter(p.expand(buf[:0], c), topic)
		}
		if match {
			return p.access&Deny == 0
		}
	}
	return false
}

// index is a File prepared for Check: rules by username, deny rules first
// in every list (as Mosquitto orders them), patterns split at %u and %c.
type index struct {
	anonymous []Rule
	users     map[string][]Rule
	patterns  []pattern
}

// pattern is a pattern rule split at its placeholders: parts alternates
// literal text and placeholders ("%u" or "%c"), starting and ending with
// literal text, so a pattern without placeholders has one part.
type pattern struct {
	access Access
	parts  []string
	user   bool // uses %u, so never applies to anonymous clients
}

// expand appends the pattern's filter for client c to buf.
func (p *pattern) expand(buf []byte, c Client) []byte {
	for i, s := range p.parts {
		switch {
		case i%2 == 0:
			buf = append(buf, s...)
		case s == "%u":
			buf = append(buf, c.Username...)
		default:
			buf = append(buf, c.ClientID...)
		}
	}
	return buf
}

// index returns the file's index, building it on first use.
func (f *File) index() *index {
	if x, ok := f.idx.Load().(*index); ok {
		return x
	}
	x := f.buildIndex()
	f.idx.CompareAndSwap(nil, x)
	return f.idx.Load().(*index)
}

func (f *File) buildIndex() *index {
	x := &index{anonymous: denyFirst(nil, f.Anonymous), users: map[string][]Rule{}}
	for _, s := range f.Users {
		// Sections for one user merge; deny rules move to the front of the
		// merged list, grants keep their order behind them.
		x.users[s.User] = denyFirst(x.users[s.User], s.Rules)
	}
	for _, r := range denyFirst(nil, f.Patterns) {
		x.patterns = append(x.patterns, splitPattern(r))
	}
	return x
}

// denyFirst adds rules to list, putting deny rules before the grants.
func denyFirst(list, rules []Rule) []Rule {
	var deny, grant []Rule
	for _, r := range list {
		if r.Access&Deny != 0 {
			deny = append(deny, r)
		} else {
			grant = append(grant, r)
		}
	}
	for _, r := range rules {
		if r.Access&Deny != 0 {
			deny = append(deny, r)
		} else {
			grant = append(grant, r)
		}
	}
	return append(deny, grant...)
}

// splitPattern splits r's topic at every "%u" and "%c", scanning left to
// right as Mosquitto does ("%%c" is a literal '%' and the client id).
func splitPattern(r Rule) pattern {
	p := pattern{access: r.Access}
	s := r.Topic
	lit := 0
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '%' && (s[i+1] == 'u' || s[i+1] == 'c') {
			p.parts = append(p.parts, s[lit:i], s[i:i+2])
			p.user = p.user || s[i+1] == 'u'
			i++
			lit = i + 1
		}
	}
	p.parts = append(p.parts, s[lit:])
	return p
}

// Match reports whether the MQTT topic filter matches topic: '+' matches
// one level, '#' (last) any number of levels including none, so "a/#"
// matches "a". A filter not starting with '$' never matches a topic
// starting with '$', and a filter starting with '$' only matches such
// topics. An invalid filter, or a topic that is empty or holds '+' or '#',
// matches nothing.
func Match(filter, topic string) bool {
	return validFilter(filter) && topic != "" && !strings.ContainsAny(topic, "+#") && matchFilter(filter, topic)
}

// validFilter reports whether f is a valid topic filter: not empty, at most
// 65535 bytes, '+' and '#' alone in their level and '#' only last.
func validFilter(f string) bool {
	if f == "" || len(f) > maxTopicLen {
		return false
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '+' && f[i] != '#' {
			continue
		}
		if i > 0 && f[i-1] != '/' {
			return false
		}
		if f[i] == '#' && i != len(f)-1 {
			return false
		}
		if f[i] == '+' && i+1 < len(f) && f[i+1] != '/' {
			return false
		}
	}
	return true
}

// matchFilter matches a valid filter against a topic that is not empty and
// holds no wildcard. It works on strings and on byte slices (expanded
// patterns) alike, without allocating.
func matchFilter[F ~string | ~[]byte](f F, t string) bool {
	if len(f) == 0 || (f[0] == '$') != (t[0] == '$') {
		return false
	}
	fi, ti := 0, 0
	for {
		fe := fi
		for fe < len(f) && f[fe] != '/' {
			fe++
		}
		if fe-fi == 1 && f[fi] == '#' {
			return true
		}
		te := ti
		for te < len(t) && t[te] != '/' {
			te++
		}
		if fe-fi != 1 || f[fi] != '+' {
			if fe-fi != te-ti {
				return false
			}
			for k := 0; k < fe-fi; k++ {
				if f[fi+k] != t[ti+k] {
					return false
				}
			}
		}
		fmore, tmore := fe < len(f), te < len(t)
		switch {
		case !fmore:
			return !tmore
		case !tmore:
			// The topic ends here: only a last level "#" still matches.
			return len(f)-fe == 2 && f[fe+1] == '#'
		}
		fi, ti = fe+1, te+1
	}
}
