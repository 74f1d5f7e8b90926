package acl

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// checkFile is the file the Check tests run against. Every case below that
// names "broker" was observed with mosquitto 2.0.11 on loopback with this
// file (or the part of it that matters), by publishing with
// `mosquitto_pub -V 5 -q 1 -d` (PUBACK reason 135 = denied) and subscribing
// to '#' with mosquitto_sub while another user published. TestBroker repeats
// most of them against the real broker.
const checkFile = `topic read anon/#
topic read $SYS/#
topic deny anon/secret
pattern read pc/%c
pattern readwrite pu/%u/#
pattern deny pu/bob/#
pattern write shared/#
pattern deny shared/locked
pattern write pct/%%c
user alice
topic readwrite a/#
topic deny a/secret
topic read #
topic write $SYS/#
topic write $SYSX/#
topic write $share/#
topic write $foo/#
user bob
topic readwrite pu/bob/own
user a+b
topic write d/#
user alice
topic write m/#
`

var (
	anon  = Client{ClientID: "anon1"}
	alice = Client{Username: "alice", ClientID: "c1"}
	bob   = Client{Username: "bob", ClientID: "cb"}
	carol = Client{Username: "carol", ClientID: "cc"} // no section
	plus  = Client{Username: "a+b", ClientID: "c2"}
)

type checkCase struct {
	why    string
	c      Client
	topic  string
	access Access
	want   bool
}

var checkCases = []checkCase{
	// Topic lines before the first user line are for anonymous clients only.
	{"anonymous rule", anon, "anon/1", Read, true},
	{"anonymous rules are not a user's", bob, "anon/1", Read, false},
	{"anonymous read rule does not grant write", anon, "anon/1", Write, false},
	// A deny wins over grants in the same list (broker: alice got a/1, not a/secret).
	{"anonymous deny", anon, "anon/secret", Read, false},
	{"user deny beats readwrite a/# and read #", alice, "a/secret", Read, false},
	{"user deny beats readwrite a/# for write", alice, "a/secret", Write, false},
	// readwrite grants both.
	{"readwrite grants read", alice, "a/x", Read, true},
	{"readwrite grants write", alice, "a/x", Write, true},
	{"read # grants read elsewhere", alice, "x/y", Read, true},
	{"read # does not grant write", alice, "x/y", Write, false},
	// Two sections for one user merge (broker: alice could publish m/1).
	{"second alice section", alice, "m/1", Write, true},
	// A user with no section gets only the patterns.
	{"no section, pattern %u", carol, "pu/carol/x", Write, true},
	{"no section, no pattern", carol, "a/x", Read, false},
	{"no section, other user's %u", carol, "pu/alice/x", Read, false},
	// Patterns apply to every client: %u is the username, %c the client id.
	{"pattern %c for a user", alice, "pc/c1", Read, true},
	{"pattern %c, other id", carol, "pc/cb", Read, false},
	{"pattern %c for anonymous (broker: allowed)", anon, "pc/anon1", Read, true},
	{"pattern %c, write not granted", anon, "pc/anon1", Write, false},
	// %u patterns never match anonymous clients (broker: u/ and u/%u denied).
	{"%u pattern, anonymous, empty level", anon, "pu//x", Read, false},
	{"%u pattern, anonymous, literal %u", anon, "pu/%u/x", Read, false},
	// A deny pattern wins over grant patterns.
	{"pattern deny beats pattern grant", carol, "shared/locked", Write, false},
	{"pattern grant", carol, "shared/x", Write, true},
	{"pattern deny pu/bob/# beats pattern pu/%u/#", bob, "pu/bob/x", Read, false},
	// The client's own list is read before the patterns, so its grant wins
	// over a deny pattern (broker: bob received pu/bob/own, alice could
	// publish x/alice with "pattern deny x/%u").
	{"own grant beats deny pattern", bob, "pu/bob/own", Read, true},
	// A username or client id with + or # is denied by the patterns ...
	{"dangerous client id, pattern", Client{"alice", "c+x"}, "pu/alice/x", Write, false},
	{"same with a plain client id", alice, "pu/alice/x", Write, true},
	{"dangerous client id #, pattern", Client{"alice", "c#"}, "shared/x", Write, false},
	{"dangerous username, pattern", plus, "shared/x", Write, false},
	{"dangerous anonymous client id", Client{ClientID: "a+"}, "anon/1", Read, true},
	{"dangerous anonymous client id, pattern", Client{ClientID: "a+"}, "pc/a+", Read, false},
	// ... but only once the own list has not granted (broker: a+b could
	// publish d/1 and alice with client id c+x could publish x/1).
	{"dangerous username, own grant", plus, "d/1", Write, true},
	{"dangerous client id, own grant", Client{"alice", "c+x"}, "a/1", Write, true},
	// A filter not starting with '$' never matches a '$' topic (broker:
	// alice with "topic read #" did not get $SYS/broker/version, the
	// anonymous client with "topic read $SYS/#" did).
	{"# does not cover $SYS", alice, "$SYS/broker/version", Read, false},
	{"$SYS/# covers $SYS", anon, "$SYS/broker/version", Read, true},
	{"# does not cover $foo", alice, "$foo/a", Read, false},
	{"$foo/# grants write", alice, "$foo/a", Write, true},
	// Publishing to $SYS is denied even with "topic write $SYS/#" (broker:
	// PUBACK 135), except the bridge state topic, which the rules decide
	// (broker: allowed for alice).
	{"write $SYS denied", alice, "$SYS/foo", Write, false},
	{"write $SYS bridge state", alice, "$SYS/broker/connection/br/state", Write, true},
	{"write $SYS bridge state without a rule", carol, "$SYS/broker/connection/br/state", Write, false},
	{"write $SYS bridge state, too deep", alice, "$SYS/broker/connection/br/state/x", Write, false},
	// Mosquitto compares the first 4 bytes: $SYSX is $SYS (broker: denied).
	{"write $SYSX denied", alice, "$SYSX/a", Write, false},
	// $share topics are for subscriptions only (broker: denied).
	{"write $share denied", alice, "$share/g/t", Write, false},
	// Placeholders: single left-to-right pass; "%%c" is '%' and the id.
	{"%%c", Client{"carol", "id9"}, "pct/%id9", Write, true},
	{"a client id holding %u is not expanded again", Client{"carol", "%u"}, "pc/%u", Read, true},
	{"a client id holding %u, expanded", Client{"carol", "%u"}, "pc/carol", Read, false},
	{"a username holding / spans levels", Client{"x/y", "i"}, "pu/x/y/z", Read, true},
	// Only Read and Write are asked; wildcards and empty topics match nothing.
	{"ReadWrite is not a question", alice, "a/x", ReadWrite, false},
	{"Deny is not a question", alice, "a/x", Deny, false},
	{"wildcard topic", alice, "a/+", Read, false},
	{"wildcard topic #", alice, "a/#", Write, false},
	{"empty topic", alice, "", Read, false},
}

func mustParse(t testing.TB, text string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCheck(t *testing.T) {
	f := mustParse(t, checkFile)
	for _, tt := range checkCases {
		if got := f.Check(tt.c, tt.topic, tt.access); got != tt.want {
			t.Errorf("%s: Check(%+v, %q, %v) = %v, want %v", tt.why, tt.c, tt.topic, tt.access, got, tt.want)
		}
		if got := refCheck(f, tt.c, tt.topic, tt.access); got != tt.want {
			t.Errorf("%s: refCheck(%+v, %q, %v) = %v, want %v", tt.why, tt.c, tt.topic, tt.access, got, tt.want)
		}
	}
}

func TestCheckSmallFiles(t *testing.T) {
	tests := []struct {
		why   string
		text  string
		c     Client
		topic string
		acc   Access
		want  bool
	}{
		{"empty file denies everything", "", alice, "a", Read, false},
		{"empty file denies anonymous", "", anon, "a", Write, false},
		{"without patterns, a username with + is not refused", "user a+b\ntopic read t\n", plus, "t", Read, true},
		{"with a pattern, it is", "user a+b\ntopic read t\npattern read x\n", plus, "x", Read, false},
		{"a pattern without placeholders applies to anonymous", "pattern read x\n", anon, "x", Read, true},
		{"%u patterns skip anonymous", "pattern read %u\n", anon, "%u", Read, false},
		{"deny pattern listed after the grant still wins", "pattern read q/+\npattern deny q/d\n", carol, "q/d", Read, false},
		{"deny pattern, other topics stay granted", "pattern read q/+\npattern deny q/d\n", carol, "q/e", Read, true},
		{"user deny beats user grant listed before it", "user carol\ntopic read q/#\ntopic deny q/d\n", carol, "q/d", Read, false},
		{"deny for one user only", "user carol\ntopic deny q/d\npattern read q/#\n", bob, "q/d", Read, true},
		{"user deny beats a pattern grant", "user carol\ntopic deny q/d\npattern read q/#\n", carol, "q/d", Read, false},
		{"user read rule does not stop a pattern write grant", "user carol\ntopic read z/#\npattern write z/#\n", carol, "z/1", Write, true},
		{"anonymous deny beats a pattern grant", "topic deny q/d\npattern read q/#\n", anon, "q/d", Read, false},
	}
	for _, tt := range tests {
		f := mustParse(t, tt.text)
		if got := f.Check(tt.c, tt.topic, tt.acc); got != tt.want {
			t.Errorf("%s: Check(%+v, %q, %v) = %v, want %v", tt.why, tt.c, tt.topic, tt.acc, got, tt.want)
		}
	}
}

// A File built in code, with one user in two sections, checks like the
// parsed one.
func TestCheckBuiltFile(t *testing.T) {
	f := &File{Users: []Section{
		{User: "u", Rules: []Rule{{Read, "a/#"}}},
		{User: "v", Rules: []Rule{{Read, "b"}}},
		{User: "u", Rules: []Rule{{Deny, "a/x"}}},
	}}
	u := Client{Username: "u", ClientID: "u"}
	if !f.Check(u, "a/y", Read) || f.Check(u, "a/x", Read) || f.Check(u, "b", Read) {
		t.Error("sections for one user do not merge with deny first")
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/b", "A/b", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"a", "a/", false},
		{"a/", "a", false},
		{"a/", "a/", true},
		{"/a", "/a", true},
		{"+", "a", true},
		{"+", "/", false},
		{"+/+", "/", true},
		{"+/+", "a/b", true},
		{"a/+", "a/b", true},
		{"a/+", "a/", true},
		{"a/+", "a", false},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/+/c", "a/b/d", false},
		{"#", "a", true},
		{"#", "a/b/c", true},
		{"#", "/", true},
		{"a/#", "a", true},
		{"a/#", "a/", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"a/#", "b/a", false},
		{"/#", "/a", true},
		{"/#", "a", false},
		{"+/#", "a", true},
		{"+/#", "a/b", true},
		{"a/+/#", "a/b", true},
		{"a/+/#", "a", false},
		{"+/+/#", "a", false},
		{"living room/+", "living room/lamp", true},
		// '$' topics.
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"+", "$x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/#", "$SYS", true},
		{"$SYS/+", "$SYS/x", true},
		{"$SYS/#", "SYS/x", false},
		{"$+/x", "$a/x", false}, // '+' stands alone in its level: an invalid filter
		// Invalid filters and topics match nothing.
		{"a/#/b", "a/x/b", false},
		{"a#", "a#", false},
		{"a+", "a+", false},
		{"a/b+", "a/bb", false},
		{"", "a", false},
		{"a", "", false},
		{"a/+", "a/+", false},
		{"#", "a/#", false},
		{"#", "", false},
	}
	for _, tt := range tests {
		if got := Match(tt.filter, tt.topic); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
		if got := refMatch(tt.filter, tt.topic); got != tt.want {
			t.Errorf("refMatch(%q, %q) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

// TestMatchGrid compares Match with the naive level-by-level matcher on
// every pair built from a small alphabet of levels. Invalid filters match
// nothing: the broker refuses such rules when it loads the acl file (and a
// pattern can only expand to a valid filter, since a username or client id
// holding '+' or '#' is denied first).
func TestMatchGrid(t *testing.T) {
	levels := []string{"a", "b", "", "+", "#", "$s", "a+", "#b"}
	var all []string
	var build func(prefix string, depth int)
	build = func(prefix string, depth int) {
		if depth == 0 {
			return
		}
		for _, l := range levels {
			s := l
			if prefix != "" || depth < 3 {
				s = prefix + "/" + l
			}
			all = append(all, s)
			build(s, depth-1)
		}
	}
	build("", 3)
	n := 0
	for _, f := range all {
		for _, tp := range all {
			if !validFilter(f) {
				if Match(f, tp) {
					t.Errorf("Match(%q, %q) = true for an invalid filter", f, tp)
				}
				continue
			}
			if got, want := Match(f, tp), refMatch(f, tp); got != want {
				t.Errorf("Match(%q, %q) = %v, the naive matcher says %v", f, tp, got, want)
				if n++; n > 20 {
					t.FailNow()
				}
			}
		}
	}
	if len(all) < 500 {
		t.Fatalf("only %d strings built", len(all))
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	f := mustParse(t, checkFile)
	calls := []checkCase{
		{"", alice, "a/x", Write, true},
		{"", carol, "pu/carol/x/y/z", Read, true},
		{"", Client{"x/y", "i"}, "pu/x/y/z", Read, true},
		{"", bob, "nothing/here", Read, false},
		{"", anon, "$SYS/broker/version", Read, true},
	}
	f.Check(alice, "warm/up", Read)
	for _, c := range calls {
		allocs := testing.AllocsPerRun(100, func() {
			if f.Check(c.c, c.topic, c.access) != c.want {
				t.Fatalf("Check(%+v, %q) != %v", c.c, c.topic, c.want)
			}
		})
		if allocs != 0 {
			t.Errorf("Check(%+v, %q) allocates %v times", c.c, c.topic, allocs)
		}
	}
}

// TestCheckConcurrent runs the first Checks of a File concurrently; run
// with -race to see that building the index is safe.
func TestCheckConcurrent(t *testing.T) {
	f := mustParse(t, checkFile)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tt := range checkCases {
				if got := f.Check(tt.c, tt.topic, tt.access); got != tt.want {
					errs <- fmt.Sprintf("%s: got %v", tt.why, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// BenchmarkCheck runs a home-sized file: 50 users with 10 rules each and a
// few patterns.
func BenchmarkCheck(b *testing.B) {
	var text strings.Builder
	text.WriteString("pattern readwrite devices/%c/#\npattern read users/%u/#\npattern deny users/%u/secret\n")
	for u := 0; u < 50; u++ {
		fmt.Fprintf(&text, "user u%d\n", u)
		for r := 0; r < 10; r++ {
			fmt.Fprintf(&text, "topic read home/u%d/r%d/+\n", u, r)
		}
	}
	f := mustParse(b, text.String())
	c := Client{Username: "u42", ClientID: "dev42"}
	b.Run("own rule", func(b *testing.B) {
		for b.Loop() {
			if !f.Check(c, "home/u42/r9/temp", Read) {
				b.Fatal("denied")
			}
		}
	})
	b.Run("pattern", func(b *testing.B) {
		for b.Loop() {
			if !f.Check(c, "devices/dev42/state/x", Write) {
				b.Fatal("denied")
			}
		}
	})
	b.Run("denied", func(b *testing.B) {
		for b.Loop() {
			if f.Check(c, "other/topic/entirely", Read) {
				b.Fatal("allowed")
			}
		}
	})
}
