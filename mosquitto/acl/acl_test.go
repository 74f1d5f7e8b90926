package acl

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRuleErrors(t *testing.T) {
	tests := []struct {
		in      string
		pattern bool
		want    string // a part of the message
	}{
		{"readwrit #", false, `unknown access "readwrit": use read, write, readwrite or deny`},
		{"Read a", false, `unknown access "Read": use read, write, readwrite or deny`},
		{"allow a", false, `unknown access "allow": use read, write, readwrite or deny`},
		{"read a/#/b", false, `topic "a/#/b": '#' must be the last level (e.g. "a/#")`},
		{"read a#", false, `topic "a#": '#' must stand alone in its level (e.g. "#")`},
		{"read a/b#/c", false, `topic "a/b#/c": '#' must stand alone in its level (e.g. "a/#")`},
		{"read a+/b", false, `topic "a+/b": '+' must stand alone in its level (e.g. "+/b")`},
		{"read x/+a/b", false, `topic "x/+a/b": '+' must stand alone in its level (e.g. "x/+/b")`},
		{"", false, `empty rule: write ACCESS TOPIC, e.g. "read home/#"`},
		{" \t ", true, `empty rule`},
		{"home/#", false, `"home/#" has no access word: write "readwrite home/#" (or read, write, deny)`},
		{"home/living room", false, `unknown access "home/living"`},
		{"read", false, `empty topic: name a topic filter`},
		{"read %u/x", false, `topic "%u/x" uses %u or %c, which only patterns expand: move the rule to patterns`},
		{"write dev/%c", false, `uses %u or %c, which only patterns expand`},
		{"read a\x01b", true, `holds the control character U+0001`},
		{"read a\u0085b", true, `holds the control character U+0085`},
		{"read a\xffb", true, `is not valid UTF-8`},
		{"read " + strings.Repeat("a", 65536), false, `topic of 65536 bytes: MQTT allows at most 65535`},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.in, tt.pattern)
		if err == nil {
			t.Errorf("ParseRule(%.40q) = %v, want an error", tt.in, r)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRule(%.40q) error\n  %.200s\nwant it to hold\n  %s", tt.in, err, tt.want)
		}
	}
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		in      string
		pattern bool
		want    Rule
	}{
		{"read home/#", false, Rule{Read, "home/#"}},
		{"  write   a/b  ", false, Rule{Write, "a/b"}},
		{"readwrite +/status", false, Rule{ReadWrite, "+/status"}},
		{"deny $SYS/#", false, Rule{Deny, "$SYS/#"}},
		{"read\thome/x", false, Rule{Read, "home/x"}},
		{"read living room/#", false, Rule{Read, "living room/#"}},
		{"read #", false, Rule{Read, "#"}},
		{"read /", false, Rule{Read, "/"}},
		{"read a//b", false, Rule{Read, "a//b"}},
		{"readwrite %u/%c/#", true, Rule{ReadWrite, "%u/%c/#"}},
		{"read 100%/x", false, Rule{Read, "100%/x"}},
	}
	for _, tt := range tests {
		got, err := ParseRule(tt.in, tt.pattern)
		if err != nil || got != tt.want {
			t.Errorf("ParseRule(%q, %v) = %v, %v; want %v", tt.in, tt.pattern, got, err, tt.want)
			continue
		}
		// String is the form ParseRule reads back.
		if again, err := ParseRule(got.String(), tt.pattern); err != nil || again != got {
			t.Errorf("ParseRule(%q) = %v, %v; want %v", got.String(), again, err, got)
		}
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[Access]string{Read: "read", Write: "write", ReadWrite: "readwrite", Deny: "deny", 0: "Access(0)", 7: "Access(7)"} {
		if got := a.String(); got != want {
			t.Errorf("Access(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}

func TestCheckFilter(t *testing.T) {
	tests := []struct {
		topic   string
		pattern bool
		ok      bool
	}{
		{"a", false, true},
		{"a/b/c", false, true},
		{"#", false, true},
		{"+", false, true},
		{"+/+/#", false, true},
		{"a/+/b/#", false, true},
		{"/", false, true},
		{"a//b", false, true},
		{"$SYS/#", false, true},
		{"home/living room", false, true},
		{"home/%u", true, true},
		{"%c/%u/#", true, true},
		{"home/%u", false, false},
		{"home/%c", false, false},
		{"", false, false},
		{"a/#/b", false, false},
		{"#/a", false, false},
		{"a#", false, false},
		{"a/b#", false, false},
		{"a+", false, false},
		{"+a/b", false, false},
		{"a/++", false, false},
		{"a\nb", false, false},
		{"a\rb", false, false},
		{"a\x00b", false, false},
		{"a\tb", false, false},
		{"a\x7fb", false, false},
		{"\xc3", false, false},
		{strings.Repeat("a", 65535), false, true},
		{strings.Repeat("a", 65536), false, false},
	}
	for _, tt := range tests {
		err := CheckFilter(tt.topic, tt.pattern)
		if (err == nil) != tt.ok {
			t.Errorf("CheckFilter(%.30q, %v) = %v, want ok=%v", tt.topic, tt.pattern, err, tt.ok)
		}
	}
}

// sample is a file using every feature; sampleText is how Format writes it.
func sample() *File {
	return &File{
		Anonymous: []Rule{{Read, "public/#"}, {Deny, "public/secret"}},
		Users: []Section{
			{User: "alice", Rules: []Rule{{ReadWrite, "home/#"}, {Write, "living room/lamp"}}},
			{User: "bob", Rules: nil},
			{User: "zigbee2mqtt", Rules: []Rule{{ReadWrite, "zigbee2mqtt/#"}, {Read, "$SYS/broker/uptime"}}},
		},
		Patterns: []Rule{{Write, "devices/%c/state"}, {Read, "users/%u/#"}},
	}
}

const sampleText = `# Generated by mqttgen. Do not edit: change home.cue and render again.

# Anonymous clients
topic read public/#
topic deny public/secret

# Every client: %u is the username, %c the client id
pattern write devices/%c/state
pattern read users/%u/#

user alice
topic readwrite home/#
topic write living room/lamp

user bob

user zigbee2mqtt
topic readwrite zigbee2mqtt/#
topic read $SYS/broker/uptime
`

func TestFormat(t *testing.T) {
	if got := string(sample().Format()); got != sampleText {
		t.Errorf("Format() =\n%s\nwant\n%s", got, sampleText)
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	for _, f := range []*File{sample(), {}, {Patterns: []Rule{{Deny, "#"}}}, {Users: []Section{{User: "u"}}}} {
		got, err := Parse(strings.NewReader(string(f.Format())))
		if err != nil {
			t.Fatalf("Parse(Format()) error %v for\n%s", err, f.Format())
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("Parse(Format(f)) = %+v, want %+v", got, f)
		}
	}
}

func TestParse(t *testing.T) {
	// Everything here was also fed to mosquitto 2.0.11, which started with it.
	text := "# comment in column 1\n" +
		"topic read anon/#\n" +
		"  topic   write   anon/in  \r\n" + // leading spaces and extra blanks are fine
		"topic anon/rw\n" + // no access word: readwrite
		"\n" +
		"user alice\n" +
		"topic read a/#\n" +
		"pattern write p/%u/#\n" + // patterns apply to everyone wherever they stand
		"topic deny a/secret\n" +
		"topic read living room/# \n" +
		"user  bob smith \n" + // a user name runs to the end of the line
		"topic write b/#\n" +
		"user alice\n" + // a second section for alice merges into the first
		"topic write m/#\n" +
		"topic read %u/literal\n" // a topic line does not expand %u (broker: alice could publish %u/x, not alice/x)
	want := &File{
		Anonymous: []Rule{{Read, "anon/#"}, {Write, "anon/in"}, {ReadWrite, "anon/rw"}},
		Users: []Section{
			{User: "alice", Rules: []Rule{{Read, "a/#"}, {Deny, "a/secret"}, {Read, "living room/#"}, {Write, "m/#"}, {Read, "%u/literal"}}},
			{User: "bob smith", Rules: []Rule{{Write, "b/#"}}},
		},
		Patterns: []Rule{{Write, "p/%u/#"}},
	}
	got, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse() = %+v\nwant %+v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	// "broker" notes what mosquitto 2.0.11 said about the same line (it
	// refused to start with each of them, except where noted).
	tests := []struct {
		text string
		line int
		want string
	}{
		// broker: Invalid topic access type "foo"
		{"topic foo bar\n", 1, `unknown access "foo"`},
		{"pattern foo bar\n", 1, `unknown access "foo"`},
		// broker: Invalid topic access type "Read"
		{"topic Read a\n", 1, `unknown access "Read": use read, write, readwrite or deny`},
		// broker: Invalid topic access type "\tread"
		{"topic \tread a\n", 1, `unknown access "\tread"`},
		// broker: Invalid line in acl_file: topics / TOPIC / "\ttopic" / "  #"
		{"topics read a\n", 1, `unknown keyword "topics": want topic, pattern or user`},
		{"# ok\nTOPIC read a\n", 2, `unknown keyword "TOPIC"`},
		{"\ttopic read a\n", 1, `unknown keyword "\ttopic`},
		{"  # not a comment\n", 1, `unknown keyword "#"`},
		// broker: Invalid ACL topic "a/#/b" / "a+/b"
		{"topic read a/#/b\n", 1, `'#' must be the last level`},
		{"user x\ntopic read a+/b\n", 2, `'+' must stand alone in its level`},
		// broker: Empty topic
		{"topic\n", 1, `empty topic`},
		{"pattern   \n", 1, `empty topic`},
		// broker: Missing username
		{"user\n", 1, `user line without a name`},
		{"user  \t\n", 1, `user line without a name`},
		// broker: started, reading "topic read" as readwrite on the topic "read";
		// mqttgen refuses the ambiguity.
		{"topic read\n", 1, `access word "read" without a topic`},
		// broker: starts; no client can use the topic; refused here.
		{"topic read a\x01b\n", 1, `control character`},
		{"user a\x00b\n", 1, `NUL byte`},
	}
	for _, tt := range tests {
		f, err := Parse(strings.NewReader(tt.text))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) = %+v, %v; want a ParseError", tt.text, f, err)
			continue
		}
		if pe.Line != tt.line || !strings.Contains(pe.Msg, tt.want) {
			t.Errorf("Parse(%q) error %q, want line %d holding %q", tt.text, err, tt.line, tt.want)
		}
		if !strings.HasPrefix(err.Error(), "line ") {
			t.Errorf("Parse(%q) error %q does not start with the line", tt.text, err)
		}
	}
}

func TestParseLongLine(t *testing.T) {
	if _, err := Parse(strings.NewReader("topic read " + strings.Repeat("a", 2<<20) + "\n")); err == nil {
		t.Error("Parse accepted a 2 MiB line")
	}
}
