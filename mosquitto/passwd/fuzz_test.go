package passwd

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// FuzzPasswdParse: Parse never panics; what it accepts has hashes Mosquitto
// 2.0 reads, and comes back equal from Parse(Format(entries)).
func FuzzPasswdParse(f *testing.F) {
	f.Add("alice:" + toolHash7 + "\nsix:" + toolHash6 + "\n")
	f.Add("# c\n\nbob:" + pyHash7 + "\r\n")
	f.Add("alice:" + toolHash7 + "\nalice:" + toolHash7 + "\n")
	f.Add(" a :$7$1$x$y\n")
	f.Fuzz(func(t *testing.T, text string) {
		entries, err := Parse(strings.NewReader(text))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			checkHash(t, e.Hash)
			if e.User == "" || strings.ContainsAny(e.User, ":\n") || strings.Trim(e.User, blanks) != e.User || seen[e.User] {
				t.Fatalf("Parse(%q) accepted the user %q", text, e.User)
			}
			seen[e.User] = true
		}
		again, err := Parse(bytes.NewReader(Format(entries)))
		if err != nil || !reflect.DeepEqual(again, entries) {
			t.Fatalf("Parse(Format(%v)) = %v, %v", entries, again, err)
		}
	})
}

// FuzzParseHash: ParseHash never panics and what it accepts has the
// lengths Mosquitto 2.0 needs.
func FuzzParseHash(f *testing.F) {
	for _, h := range []string{toolHash7, toolHash6, pyHash7, "$7$0$a$b", "$6$$", "$7$101$AAECAwQFBgcICQoLDA0ODw==$AAAA"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if _, err := ParseHash(h); err == nil {
			checkHash(t, h)
		}
	})
}

func checkHash(t *testing.T, h string) {
	t.Helper()
	p, err := ParseHash(h)
	if err != nil {
		t.Fatalf("ParseHash(%q): %v", h, err)
	}
	if len(p.Salt) != 12 || len(p.Key) != 64 {
		t.Fatalf("ParseHash(%q) accepted a %d-byte salt and a %d-byte key", h, len(p.Salt), len(p.Key))
	}
	switch {
	case p.Kind == 7 && p.Iterations >= 1 && p.Iterations <= 1<<31-1:
	case p.Kind == 6 && p.Iterations == 0:
	default:
		t.Fatalf("ParseHash(%q) = kind %d with %d iterations", h, p.Kind, p.Iterations)
	}
}
