package acl

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and a file it accepts comes back equal
// from Parse(Format(f)).
func FuzzParse(f *testing.F) {
	f.Add(sampleText)
	f.Add(checkFile)
	f.Add("topic read a\nuser x\ntopic b\nuser x\npattern deny %u/#\n")
	f.Add("  topic   write   a b  \r\nuser  bob smith \n")
	f.Add("topic read\n")
	f.Add("user\n#comment\n\n")
	f.Fuzz(func(t *testing.T, text string) {
		file, err := Parse(strings.NewReader(text))
		if err != nil {
			return
		}
		out := file.Format()
		again, err := Parse(strings.NewReader(string(out)))
		if err != nil {
			t.Fatalf("Parse(Format(f)) failed: %v\ninput %q\nformatted %q", err, text, out)
		}
		if !reflect.DeepEqual(again, file) {
			t.Fatalf("Parse(Format(f)) = %+v, want %+v\ninput %q", again, file, text)
		}
	})
}

// FuzzParseRule: ParseRule never panics, and an accepted rule's String()
// parses to the same rule.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"read home/#", "readwrit #", "read a/#/b", "read a+/b", "", "home/#", "read %u/x", "deny  $SYS/#", "write\ta b "} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, pattern bool) {
		r, err := ParseRule(s, pattern)
		if err != nil {
			return
		}
		if CheckFilter(r.Topic, pattern) != nil {
			t.Fatalf("ParseRule(%q) accepted %v, whose topic CheckFilter refuses", s, r)
		}
		again, err := ParseRule(r.String(), pattern)
		if err != nil || again != r {
			t.Fatalf("ParseRule(%q) = %v; ParseRule(%q) = %v, %v", s, r, r.String(), again, err)
		}
	})
}

// FuzzMatch compares Match with the naive level-by-level matcher
// (on valid filters; see TestMatchGrid).
func FuzzMatch(f *testing.F) {
	for _, p := range [][2]string{{"a/+/#", "a/b"}, {"#", "$SYS/x"}, {"+/+", "/"}, {"a/#", "a"}, {"$SYS/#", "$SYS"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, filter, topic string) {
		if strings.IndexByte(filter, 0) >= 0 || strings.IndexByte(topic, 0) >= 0 {
			return // C strings end at NUL
		}
		got := Match(filter, topic)
		if !validFilter(filter) {
			if got {
				t.Fatalf("Match(%q, %q) = true for an invalid filter", filter, topic)
			}
			return
		}
		if want := refMatch(filter, topic); got != want {
			t.Fatalf("Match(%q, %q) = %v, the naive matcher says %v", filter, topic, got, want)
		}
	})
}

// FuzzCheck compares Check with the naive walk of the same rules
// check on any file Parse accepts.
func FuzzCheck(f *testing.F) {
	f.Add(checkFile, "alice", "c1", "a/secret", false)
	f.Add(checkFile, "", "anon1", "pc/anon1", false)
	f.Add(checkFile, "bob", "cb", "pu/bob/own", true)
	f.Add(checkFile, "a+b", "c2", "d/1", true)
	f.Add(checkFile, "alice", "c1", "$SYS/broker/connection/x/state", true)
	f.Add("pattern write %c/%u/#\npattern deny %%c\n", "x/y", "%u", "%u/x/y", true)
	f.Fuzz(func(t *testing.T, text, user, id, topic string, write bool) {
		if strings.IndexByte(user+id+topic, 0) >= 0 {
			return // C strings end at NUL
		}
		file, err := Parse(strings.NewReader(text))
		if err != nil {
			return
		}
		access := Read
		if write {
			access = Write
		}
		c := Client{Username: user, ClientID: id}
		if got, want := file.Check(c, topic, access), refCheck(file, c, topic, access); got != want {
			t.Fatalf("Check(%+v, %q, %v) = %v, the naive walk says %v\nfile:\n%s", c, topic, access, got, want, text)
		}
	})
}
