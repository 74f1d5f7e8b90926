// Package aclcheck answers questions about a home's access control: may
// this account read or write that topic, and which rule decides (explain);
// who may (who); what every account may do under each topic root (matrix);
// and do the home's expectations hold (expect:, and those its presets and
// devices bring). It decides with mosquitto/acl, the evaluator the bundled
// broker runs and that is checked against Mosquitto itself, on the acl file
// the generators render, and names each rule by its line there and its
// place in home.cue.
package aclcheck

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/schema"
)

// Home is a checked home and its rendered acl file.
type Home struct {
	Config *schema.Config
	ACL    *generators.SourcedACL
}

// New prepares the home for questions.
func New(cfg *schema.Config) *Home {
	return &Home{Config: cfg, ACL: generators.ACLFile(cfg)}
}

// Who is a client: an account of the home, or anonymous (Name
// schema.AnonymousName), with the client id it connects with.
type Who struct {
	Name     string
	ClientID string
}

// Anonymous reports whether the client has no login.
func (w Who) Anonymous() bool { return w.Name == schema.AnonymousName }

// Client is who as the acl file sees it.
func (w Who) Client() acl.Client {
	if w.Anonymous() {
		return acl.Client{ClientID: w.ClientID}
	}
	return acl.Client{Username: w.Name, ClientID: w.ClientID}
}

// Kind says what the name is: "user", "device", "anonymous", or "" when
// the home has no such account.
func (h *Home) Kind(name string) string {
	switch {
	case name == schema.AnonymousName:
		return "anonymous"
	case hasKey(h.Config.Devices, name):
		return "device"
	case hasKey(h.Config.Users, name):
		return "user"
	}
	return ""
}

func hasKey[V any](m map[string]V, k string) bool { _, ok := m[k]; return ok }

// Rule is one rendered rule and where it comes from.
type Rule struct {
	// Line is the rule as the acl file writes it: "topic read home/#" or
	// "pattern write clients/%u/#".
	Line string `json:"rule"`
	// Filter is the topic filter the rule tests for this client: a
	// pattern's with %u and %c filled in.
	Filter string `json:"filter"`
	// ACLLine is its line in the rendered acl file (config/acl).
	ACLLine int `json:"acl_line"`
	// Source is the field of home.cue it comes from, Position where that
	// stands (file:line:col), Preset the preset when a preset made it.
	Source   string `json:"source"`
	Position string `json:"position,omitempty"`
	Preset   string `json:"preset,omitempty"`
}

func (r Rule) String() string {
	s := fmt.Sprintf("acl line %d %q, from %s", r.ACLLine, r.Line, r.Source)
	if r.Preset != "" {
		s += " (preset " + r.Preset + ")"
	}
	if r.Position != "" {
		s += " at " + r.Position
	}
	return s
}

func (h *Home) rule(at acl.Ref, c acl.Client) Rule {
	r := h.ACL.File.At(at)
	o := h.ACL.Origin(at)
	kw, filter := "topic", r.Topic
	if at.Pattern {
		kw, filter = "pattern", acl.Expand(r.Topic, c)
	}
	return Rule{
		Line:     kw + " " + r.String(),
		Filter:   filter,
		ACLLine:  h.ACL.File.Line(at),
		Source:   o.Path,
		Position: h.Config.Position(o.Path),
		Preset:   o.Preset,
	}
}

// Explanation is a decision and why.
type Explanation struct {
	As       string `json:"as"`
	ClientID string `json:"client_id,omitempty"`
	Access   string `json:"access"`
	Topic    string `json:"topic"`
	Allowed  bool   `json:"allowed"`
	// Why says in a sentence what decided.
	Why string `json:"why"`
	// Rule decided, when one did.
	Rule *Rule `json:"rule,omitempty"`
	// Nearest is, for a denial no rule made, the rule that came closest.
	Nearest *Rule `json:"nearest,omitempty"`
	// NearestWhy says how the nearest rule misses.
	NearestWhy string `json:"nearest_why,omitempty"`
}

// Explain decides whether who may read (write false) or publish (write
// true) on topic, as the broker would, and says why. The name must be an
// account of the home or "anonymous"; the topic one topic name.
func (h *Home) Explain(who Who, topic string, write bool) (Explanation, error) {
	if h.Kind(who.Name) == "" {
		return Explanation{}, fmt.Errorf("%q is no user or device of this home (the broker refuses its login): name one, or \"anonymous\"", who.Name)
	}
	if err := acl.CheckFilter(topic, false); err != nil {
		return Explanation{}, err
	}
	if strings.ContainsAny(topic, "+#") {
		return Explanation{}, fmt.Errorf("%q holds a wildcard: name one topic as a client publishes it; `mqttgen acl who` lists who may use a topic", topic)
	}
	access, word := acl.Read, "read"
	if write {
		access, word = acl.Write, "write"
	}
	c := who.Client()
	d := h.ACL.File.Decide(c, topic, access)
	e := Explanation{As: who.Name, ClientID: who.ClientID, Access: word, Topic: topic, Allowed: d.Allowed}
	verdict := "denied"
	if d.Allowed {
		verdict = "allowed"
	}
	switch d.Reason {
	case acl.OwnRule:
		r := h.rule(d.At, c)
		e.Rule = &r
		list := "its own rules"
		if who.Anonymous() {
			list = "the anonymous rules"
		}
		switch {
		case !d.Allowed:
			e.Why = fmt.Sprintf("%s: deny %s matches, in %s (a deny there wins over every grant)", verdict, r.Filter, list)
		default:
			e.Why = fmt.Sprintf("%s: %s matches, in %s (checked before patterns)", verdict, r.Filter, list)
		}
	case acl.PatternRule:
		r := h.rule(d.At, c)
		e.Rule = &r
		if d.Allowed {
			e.Why = fmt.Sprintf("%s: the pattern %s matches (no rule of the client's own matched)", verdict, r.Filter)
		} else {
			e.Why = fmt.Sprintf("%s: the deny pattern %s matches (no rule of the client's own matched)", verdict, r.Filter)
		}
	case acl.SysWrite:
		e.Why = "denied: no client may publish to $SYS (the broker's own topics), whatever the rules say"
	case acl.Shared:
		e.Why = "denied: the broker refuses $share topics to every rule"
	case acl.WildcardName:
		e.Why = "denied: a username or client id holding '+' or '#' gets no pattern"
	default:
		e.Why = "denied: no rule matches"
		if who.Anonymous() && !h.anonymousAllowed() {
			e.Why += " (and no listener admits anonymous clients)"
		}
		h.nearest(&e, c, topic, access)
	}
	return e, nil
}

func (h *Home) anonymousAllowed() bool {
	for _, l := range h.Config.Listeners {
		if h.Config.AnonymousOn(l) {
			return true
		}
	}
	return false
}

// nearest finds the rule of the client that comes closest to deciding:
// first one whose filter matches but grants the other access, then the one
// sharing the most leading topic levels.
func (h *Home) nearest(e *Explanation, c acl.Client, topic string, access acl.Access) {
	best, bestScore := acl.Ref{}, -1
	why := ""
	for _, at := range h.ACL.File.Rules(c) {
		r := h.ACL.File.At(at)
		filter := r.Topic
		if at.Pattern {
			filter = acl.Expand(filter, c)
		}
		score, reason := 0, ""
		switch {
		case acl.Match(filter, topic):
			score, reason = 1000, fmt.Sprintf("it matches the topic but grants %s, not %s", r.Access, accessWord(access))
		case strings.HasPrefix(topic, "$") && !strings.HasPrefix(filter, "$") && acl.Match(filter, strings.TrimPrefix(topic, "$")):
			score, reason = 900, "a filter not starting with '$' never matches a '$' topic: write a rule for the $ topic itself"
		default:
			score = commonLevels(filter, topic)
			if score == 0 {
				continue
			}
			reason = fmt.Sprintf("it shares %d leading level(s) with the topic but does not match it", score)
		}
		if r.Access&access != 0 {
			score++
		}
		if score > bestScore {
			best, bestScore, why = at, score, reason
		}
	}
	if bestScore < 0 {
		return
	}
	r := h.rule(best, c)
	e.Nearest, e.NearestWhy = &r, why
}

func accessWord(a acl.Access) string {
	if a == acl.Write {
		return "write"
	}
	return "read"
}

// commonLevels counts the leading levels filter matches in topic.
func commonLevels(filter, topic string) int {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	n := 0
	for i := 0; i < len(f) && i < len(t); i++ {
		if f[i] != t[i] && f[i] != "+" {
			break
		}
		n++
	}
	return n
}

// Access is one client's access to a topic in who's answer.
type Access struct {
	As      string `json:"as"`
	Kind    string `json:"kind"`
	Allowed bool   `json:"allowed"`
	Rule    *Rule  `json:"rule,omitempty"`
	Why     string `json:"why"`
}

// Who lists every account, and anonymous clients when a listener admits
// them, with whether it may read (or write) topic and the deciding rule.
// Accounts connect with their name as client id (as %c patterns see it),
// anonymous clients with clientID.
func (h *Home) Who(topic string, write bool, clientID string) ([]Access, error) {
	names := []string{}
	for _, a := range h.Config.Accounts() {
		names = append(names, a.Name)
	}
	if h.anonymousAllowed() {
		names = append(names, schema.AnonymousName)
	}
	var out []Access
	for _, n := range names {
		id := n
		if n == schema.AnonymousName {
			id = clientID
		}
		e, err := h.Explain(Who{Name: n, ClientID: id}, topic, write)
		if err != nil {
			return nil, err
		}
		out = append(out, Access{As: n, Kind: h.Kind(n), Allowed: e.Allowed, Rule: e.Rule, Why: e.Why})
	}
	slices.SortStableFunc(out, func(a, b Access) int {
		if a.Allowed != b.Allowed {
			if a.Allowed {
				return -1
			}
			return 1
		}
		return 0
	})
	return out, nil
}
