package acl

import (
	"slices"
	"strings"
)

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
	return f.Decide(c, topic, access).Allowed
}

// Reason is why Decide decided as it did.
type Reason int

const (
	// NoRule: no rule matched, so access is denied.
	NoRule Reason = iota
	// OwnRule: a rule of the client's own list (its user's sections, or
	// the anonymous rules) decided.
	OwnRule
	// PatternRule: a pattern decided.
	PatternRule
	// SysWrite: publishing to $SYS is refused whatever the rules say.
	SysWrite
	// Shared: $share topics are refused whatever the rules say.
	Shared
	// WildcardName: the username or client id holds '+' or '#', so the
	// patterns are not consulted.
	WildcardName
	// Invalid: the topic is empty or holds a wildcard, or the access is
	// not Read or Write.
	Invalid
)

// Ref is where a rule stands in a File: Section is the index into Users,
// or -1 for the anonymous rules and the patterns; Index is the rule's
// index in that list.
type Ref struct {
	Pattern bool
	Section int
	Index   int
}

// Decision is Decide's verdict and the rule that made it.
type Decision struct {
	Allowed bool
	Reason  Reason
	// Rule and At are the deciding rule (a pattern unexpanded) when Reason
	// is OwnRule or PatternRule.
	Rule Rule
	At   Ref
}

// Decide is Check with its reason: the rule that decided, or why none did.
// It follows the same steps as Check, in the same order, and does not
// allocate either.
func (f *File) Decide(c Client, topic string, access Access) Decision {
	if (access != Read && access != Write) || topic == "" || strings.ContainsAny(topic, "+#") {
		return Decision{Reason: Invalid}
	}
	if topic[0] == '$' {
		switch {
		case strings.HasPrefix(topic, "$SYS"):
			if access == Write && !matchFilter("$SYS/broker/connection/+/state", topic) {
				return Decision{Reason: SysWrite}
			}
		case strings.HasPrefix(topic, "$share"):
			return Decision{Reason: Shared}
		}
	}
	x := f.index()
	var own []entry
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
			return Decision{Allowed: r.Access&Deny == 0, Reason: OwnRule, Rule: r.Rule, At: r.at}
		}
	}
	if len(x.patterns) == 0 {
		return Decision{}
	}
	if strings.ContainsAny(c.Username, "+#") || strings.ContainsAny(c.ClientID, "+#") {
		return Decision{Reason: WildcardName}
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
			return Decision{Allowed: p.access&Deny == 0, Reason: PatternRule, Rule: f.Patterns[p.at.Index], At: p.at}
		}
	}
	return Decision{}
}

// Rules returns the rules that apply to client c in the order Decide
// tries them (the client's own list, deny rules first, then the patterns,
// deny first), each with its place in the file. Patterns using %u are left
// out for an anonymous client.
func (f *File) Rules(c Client) []Ref {
	x := f.index()
	own := x.anonymous
	if c.Username != "" {
		own = x.users[c.Username]
	}
	var out []Ref
	for _, e := range own {
		out = append(out, e.at)
	}
	for _, p := range x.patterns {
		if p.user && c.Username == "" {
			continue
		}
		out = append(out, p.at)
	}
	return out
}

// At returns the rule at r.
func (f *File) At(r Ref) Rule {
	switch {
	case r.Pattern:
		return f.Patterns[r.Index]
	case r.Section < 0:
		return f.Anonymous[r.Index]
	}
	return f.Users[r.Section].Rules[r.Index]
}

// Expand returns a pattern's filter for client c: %u replaced by the
// username, %c by the client id, as Decide reads it.
func Expand(pattern string, c Client) string {
	p := splitPattern(Rule{Topic: pattern})
	return string(p.expand(nil, c))
}

// Line returns the line of the rule at r in the output of Format.
func (f *File) Line(r Ref) int {
	n := 1 // the header
	if len(f.Anonymous) > 0 {
		n += 2
		if !r.Pattern && r.Section < 0 {
			return n + 1 + r.Index
		}
		n += len(f.Anonymous)
	}
	if len(f.Patterns) > 0 {
		n += 2
		if r.Pattern {
			return n + 1 + r.Index
		}
		n += len(f.Patterns)
	}
	for i, s := range f.Users {
		n += 2
		if i == r.Section {
			return n + 1 + r.Index
		}
		n += len(s.Rules)
	}
	return 0
}

// index is a File prepared for Check: rules by username, deny rules first
// in every list (as Mosquitto orders them), patterns split at %u and %c.
type index struct {
	anonymous []entry
	users     map[string][]entry
	patterns  []pattern
}

// entry is a rule of an index and its place in the file.
type entry struct {
	Rule
	at Ref
}

// pattern is a pattern rule split at its placeholders: parts alternates
// literal text and placeholders ("%u" or "%c"), starting and ending with
// literal text, so a pattern without placeholders has one part.
type pattern struct {
	access Access
	parts  []string
	user   bool // uses %u, so never applies to anonymous clients
	at     Ref
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
	x := &index{users: map[string][]entry{}}
	refs := func(rules []Rule, section int, pattern bool) []entry {
		out := make([]entry, len(rules))
		for i, r := range rules {
			out[i] = entry{r, Ref{Pattern: pattern, Section: section, Index: i}}
		}
		return out
	}
	x.anonymous = denyFirst(nil, refs(f.Anonymous, -1, false))
	for i, s := range f.Users {
		// Sections for one user merge; deny rules move to the front of the
		// merged list, grants keep their order behind them.
		x.users[s.User] = denyFirst(x.users[s.User], refs(s.Rules, i, false))
	}
	for _, e := range denyFirst(nil, refs(f.Patterns, -1, true)) {
		p := splitPattern(e.Rule)
		p.at = e.at
		x.patterns = append(x.patterns, p)
	}
	return x
}

// denyFirst adds rules to list, putting deny rules before the grants.
func denyFirst(list, rules []entry) []entry {
	var deny, grant []entry
	for _, r := range slices.Concat(list, rules) {
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
