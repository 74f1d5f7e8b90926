// Package acl reads, writes and evaluates Mosquitto acl files with the
// broker's own semantics: topic lines before the first user line are for
// anonymous clients, user sections run to the next user line and merge,
// pattern lines apply to every client wherever they stand, deny wins, and a
// rule not starting with '$' never matches a '$' topic.
package acl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// Access is what a rule grants or denies.
type Access int

const (
	// Read lets a client receive messages on matching topics.
	Read Access = 1 << iota
	// Write lets a client publish to matching topics.
	Write
	// Deny refuses both, whatever other rules of the same list grant.
	Deny
	// ReadWrite is Read and Write together.
	ReadWrite = Read | Write
)

var accessWords = map[string]Access{"read": Read, "write": Write, "readwrite": ReadWrite, "deny": Deny}

// String returns the access word as Mosquitto's acl file spells it.
func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case ReadWrite:
		return "readwrite"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("Access(%d)", int(a))
}

// Rule is one access word and one topic filter.
type Rule struct {
	Access Access
	Topic  string
}

// String returns the rule as "ACCESS TOPIC", the form ParseRule reads.
func (r Rule) String() string { return r.Access.String() + " " + r.Topic }

// ParseRule reads "ACCESS TOPIC" as users write it in home.cue. The access
// word is required there, unlike in Mosquitto's file, so that a typo in it
// cannot silently turn into a topic. Placeholders (%u, %c) are allowed only
// when pattern is true.
func ParseRule(s string, pattern bool) (Rule, error) {
	for _, r := range s {
		if r < 0x20 && r != '\t' || r >= 0x7f && r <= 0x9f {
			return Rule{}, fmt.Errorf("%q holds the control character %U: a rule is one line, ACCESS TOPIC", s, r)
		}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return Rule{}, fmt.Errorf("empty rule: write ACCESS TOPIC, e.g. \"read home/#\"")
	}
	word, topic, ok := s, "", false
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		word, topic, ok = s[:i], strings.TrimSpace(s[i+1:]), true
	}
	access, known := accessWords[word]
	switch {
	case !known && !ok:
		return Rule{}, fmt.Errorf("%q has no access word: write \"readwrite %s\" (or read, write, deny)", s, s)
	case !known:
		return Rule{}, fmt.Errorf("unknown access %q: use read, write, readwrite or deny", word)
	}
	if err := CheckFilter(topic, pattern); err != nil {
		return Rule{}, err
	}
	return Rule{Access: access, Topic: topic}, nil
}

// maxTopicLen is the longest topic MQTT can carry.
const maxTopicLen = 65535

// CheckFilter reports why topic is not a valid topic filter for an ACL rule.
// Beyond what Mosquitto checks ('+' and '#' standing alone, '#' last, at most
// 65535 bytes), it refuses invalid UTF-8 and control characters: no client
// can publish such a topic, so a rule holding one is a mistake.
func CheckFilter(topic string, pattern bool) error {
	if topic == "" {
		return fmt.Errorf("empty topic: name a topic filter, e.g. \"home/#\"")
	}
	if len(topic) > maxTopicLen {
		return fmt.Errorf("topic of %d bytes: MQTT allows at most %d", len(topic), maxTopicLen)
	}
	if !utf8.ValidString(topic) {
		return fmt.Errorf("topic %q is not valid UTF-8", topic)
	}
	for _, r := range topic {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("topic %q holds the control character %U, which MQTT does not allow", topic, r)
		}
	}
	if !pattern && (strings.Contains(topic, "%u") || strings.Contains(topic, "%c")) {
		return fmt.Errorf("topic %q uses %%u or %%c, which only patterns expand: move the rule to patterns", topic)
	}
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return fmt.Errorf("topic %q: '#' must be the last level (e.g. %q)", topic, strings.Join(levels[:i+1], "/"))
		case l != "#" && strings.Contains(l, "#"):
			return fmt.Errorf("topic %q: '#' must stand alone in its level (e.g. %q)", topic, strings.Join(append(levels[:i:i], "#"), "/"))
		case l != "+" && strings.Contains(l, "+"):
			return fmt.Errorf("topic %q: '+' must stand alone in its level (e.g. %q)", topic, strings.Join(append(append(levels[:i:i], "+"), levels[i+1:]...), "/"))
		}
	}
	return nil
}

// Section is one user's rules: the topic lines after a user line.
type Section struct {
	User  string
	Rules []Rule
}

// File is a whole acl file.
type File struct {
	Anonymous []Rule    // topic lines before the first user line
	Users     []Section // one per user; Parse merges repeated sections
	Patterns  []Rule    // pattern lines, wherever they stand

	idx atomic.Value // *index, built by the first Check
}

// Format writes the file as Mosquitto reads it: anonymous rules first, then
// the patterns (they apply to everyone wherever they stand), then one section
// per user.
func (f *File) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# Generated by mqttgen. Do not edit: change home.cue and render again.\n")
	if len(f.Anonymous) > 0 {
		b.WriteString("\n# Anonymous clients\n")
		for _, r := range f.Anonymous {
			fmt.Fprintf(&b, "topic %s\n", r)
		}
	}
	if len(f.Patterns) > 0 {
		b.WriteString("\n# Every client: %u is the username, %c the client id\n")
		for _, r := range f.Patterns {
			fmt.Fprintf(&b, "pattern %s\n", r)
		}
	}
	for _, s := range f.Users {
		fmt.Fprintf(&b, "\nuser %s\n", s.User)
		for _, r := range s.Rules {
			fmt.Fprintf(&b, "topic %s\n", r)
		}
	}
	return b.Bytes()
}

// CheckUser reports why name cannot stand on a `user` line that Mosquitto
// reads back as exactly name: it must be one word of printable UTF-8 (a line
// break would end the section and open another; blanks are trimmed).
func CheckUser(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case !utf8.ValidString(name):
		return fmt.Errorf("user name %q is not valid UTF-8", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f && r <= 0xa0 || unicode.IsSpace(r) }):
		return fmt.Errorf("user name %q holds a space or control character, which would end or change its acl line", name)
	case len(name) > maxTopicLen:
		return fmt.Errorf("user name of %d bytes: MQTT allows at most %d", len(name), maxTopicLen)
	}
	return nil
}

// Validate reports the first part of f that Format cannot write so that
// Parse (and Mosquitto) read back exactly f: a user name CheckUser refuses,
// a topic CheckFilter refuses or with blanks at its edges, an access word
// that is not one of the four. Writers call it before Format.
func (f *File) Validate() error {
	rules := func(where string, list []Rule) error {
		for _, r := range list {
			if _, ok := accessWords[r.Access.String()]; !ok {
				return fmt.Errorf("%s: unknown access %v", where, r.Access)
			}
			if err := CheckFilter(r.Topic, true); err != nil {
				return fmt.Errorf("%s: %v", where, err)
			}
			if strings.Trim(r.Topic, blanks) != r.Topic {
				return fmt.Errorf("%s: topic %q has blanks at its edges, which Mosquitto strips", where, r.Topic)
			}
		}
		return nil
	}
	if err := rules("anonymous rules", f.Anonymous); err != nil {
		return err
	}
	if err := rules("patterns", f.Patterns); err != nil {
		return err
	}
	for _, s := range f.Users {
		if err := CheckUser(s.User); err != nil {
			return err
		}
		if err := rules("user "+s.User, s.Rules); err != nil {
			return err
		}
	}
	return nil
}

// ParseError is a problem at one line of an acl file.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// blanks are the characters C's isspace accepts, which Mosquitto trims.
const blanks = " \t\n\v\f\r"

// Parse reads an acl file, splitting lines as Mosquitto 2.0 does: '#' starts
// a comment only in column 1, words are separated by spaces (not tabs), and
// a topic or pattern line without an access word means readwrite. It refuses
// what Mosquitto 2.0 refuses (unknown keywords or access words, a user line
// without a name, malformed topic filters) and, unlike Mosquitto, also a lone
// access word ("topic read", which Mosquitto reads as readwrite on the topic
// "read"), control characters in topics and NUL bytes, so that a file it
// accepts means what it says.
func Parse(r io.Reader) (*File, error) {
	f := &File{}
	cur := -1 // the open user section, an index into f.Users
	index := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), blanks)
		if strings.IndexByte(line, 0) >= 0 {
			return nil, &ParseError{n, "the line holds a NUL byte"}
		}
		if line == "" || line[0] == '#' {
			continue
		}
		kw, rest, _ := strings.Cut(strings.TrimLeft(line, " "), " ")
		switch kw {
		case "user":
			name := strings.Trim(rest, blanks)
			if name == "" {
				return nil, &ParseError{n, "user line without a name"}
			}
			i, ok := index[name]
			if !ok {
				i = len(f.Users)
				index[name] = i
				f.Users = append(f.Users, Section{User: name})
			}
			cur = i
		case "topic", "pattern":
			rule, err := parseFileRule(rest)
			if err != nil {
				return nil, &ParseError{n, err.Error()}
			}
			switch {
			case kw == "pattern":
				f.Patterns = append(f.Patterns, rule)
			case cur < 0:
				f.Anonymous = append(f.Anonymous, rule)
			default:
				f.Users[cur].Rules = append(f.Users[cur].Rules, rule)
			}
		default:
			return nil, &ParseError{n, fmt.Sprintf("unknown keyword %q: want topic, pattern or user", kw)}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// parseFileRule reads the rest of a topic or pattern line, where the access
// word is optional and means readwrite when left out.
func parseFileRule(rest string) (Rule, error) {
	rest = strings.TrimLeft(rest, " ")
	word, topic, ok := strings.Cut(rest, " ")
	access, known := accessWords[word]
	switch {
	case rest == "":
		return Rule{}, fmt.Errorf("empty topic: name a topic filter, e.g. \"home/#\"")
	case !ok && known:
		return Rule{}, fmt.Errorf("access word %q without a topic (Mosquitto would read it as readwrite on the topic %q): write \"readwrite %s\" if that is meant", word, word, word)
	case !ok:
		access, topic = ReadWrite, word
	case !known:
		return Rule{}, fmt.Errorf("unknown access %q: use read, write, readwrite or deny", word)
	}
	topic = strings.Trim(topic, blanks)
	if err := CheckFilter(topic, true); err != nil {
		return Rule{}, err
	}
	return Rule{Access: access, Topic: topic}, nil
}
