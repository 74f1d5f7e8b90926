package passwd

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Vectors written by Debian's mosquitto_passwd 2.0.11:
//
//	mosquitto_passwd -c -b pw alice apw          ($7$, its default)
//	mosquitto_passwd -H sha512 -b pw six spw     ($6$)
const (
	toolHash7 = "$7$101$SAoRA2q54R1csypF$1iAZeKE3RXS9vig6pX+I6CRqp5IJhn1Yu6ArwU1hhq+ZPoEvd+SoJcHdbXmvzCNu6bfjUICv8W+eYYpjh4scvg=="
	toolHash6 = "$6$0LsHIGTfZ//A2Dl+$flpRCZ/zwTt/OT6/FXdmQ9CX8ZuhQ8RvYyXFoyTGXZhW2jYglBlSl2HH10FWeww2lLqPb9uWJQJliQ/gO0Ctlg=="
	// Python's hashlib.pbkdf2_hmac('sha512', b'correct horse', bytes(range(12)), 1000, 64).
	pyHash7 = "$7$1000$AAECAwQFBgcICQoL$hc9UTFKiTSi9CHPMacLhbZUJ9kJTrF7ND3F3GC2tMIePa6GeHoJUhLaT6N8wIl0Zgp48kWcgb9fqfYUYiR/1vQ=="
)

func TestHashVerify(t *testing.T) {
	for _, pw := range []string{"secret", "", "pässwörd ✓", strings.Repeat("x", 1000), "a:b$c"} {
		for _, it := range []int{1, 101, 1000} {
			h, err := Hash(pw, it)
			if err != nil {
				t.Fatal(err)
			}
			if !Verify(h, pw) {
				t.Errorf("Verify(Hash(%q, %d), %[1]q) = false", pw, it)
			}
			if Verify(h, pw+"x") || Verify(h, strings.ToUpper(pw)+"X") {
				t.Errorf("Hash(%q, %d) verifies a wrong password", pw, it)
			}
			p, err := ParseHash(h)
			if err != nil {
				t.Fatalf("ParseHash(%q): %v", h, err)
			}
			if p.Kind != 7 || p.Iterations != it || len(p.Salt) != 12 || len(p.Key) != 64 {
				t.Errorf("Hash(%q, %d) = %q: kind %d, %d iterations, %d-byte salt, %d-byte key; want 7, %d, 12, 64",
					pw, it, h, p.Kind, p.Iterations, len(p.Salt), len(p.Key), it)
			}
			if !strings.HasPrefix(h, "$7$"+strconv.Itoa(it)+"$") {
				t.Errorf("Hash(%q, %d) = %q, want the prefix $7$%d$", pw, it, h, it)
			}
		}
	}
}

func TestHashSaltIsRandom(t *testing.T) {
	a, _ := Hash("same", 1)
	b, _ := Hash("same", 1)
	if a == b {
		t.Errorf("two hashes of one password are equal: %q", a)
	}
}

func TestHashIterations(t *testing.T) {
	for _, it := range []int{0, -1, 1 << 31} {
		if h, err := Hash("x", it); err == nil {
			t.Errorf("Hash(x, %d) = %q, want an error", it, h)
		}
	}
}

func TestKnownVectors(t *testing.T) {
	tests := []struct {
		hash, password string
		kind, iter     int
	}{
		{toolHash7, "apw", 7, 101},
		{toolHash6, "spw", 6, 0},
		{pyHash7, "correct horse", 7, 1000},
	}
	for _, tt := range tests {
		if !Verify(tt.hash, tt.password) {
			t.Errorf("Verify(%q, %q) = false", tt.hash, tt.password)
		}
		if Verify(tt.hash, tt.password+" ") || Verify(tt.hash, "") {
			t.Errorf("Verify(%q) accepts a wrong password", tt.hash)
		}
		p, err := ParseHash(tt.hash)
		if err != nil || p.Kind != tt.kind || p.Iterations != tt.iter || len(p.Salt) != 12 || len(p.Key) != 64 {
			t.Errorf("ParseHash(%q) = %+v, %v", tt.hash, p, err)
		}
	}
	// hash7 with the same salt and count gives the same string.
	p, _ := ParseHash(pyHash7)
	if h, err := hash7("correct horse", p.Salt, 1000); err != nil || h != pyHash7 {
		t.Errorf("hash7 = %q, %v; want %q", h, err, pyHash7)
	}
}

func TestParseHashErrors(t *testing.T) {
	good7 := strings.Split(toolHash7, "$") // "", "7", "101", salt, key
	good6 := strings.Split(toolHash6, "$")
	salt16 := "AAECAwQFBgcICQoLDA0ODw==" // 16 bytes
	key32 := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	tests := []struct {
		hash, want string
	}{
		{"", "not a $6$ or $7$ hash"},
		{"plain", "not a $6$ or $7$ hash"},
		{"$5$abc$def", "not a $6$ or $7$ hash"},
		{"$7$", "not a $6$ or $7$ hash"},
		{"7$101$" + good7[3] + "$" + good7[4], "not a $6$ or $7$ hash"},
		{toolHash7 + "$", "not a $6$ or $7$ hash"},
		{"$7$0$" + good7[3] + "$" + good7[4], `bad iteration count "0"`},
		{"$7$-5$" + good7[3] + "$" + good7[4], `bad iteration count "-5"`},
		{"$7$abc$" + good7[3] + "$" + good7[4], `bad iteration count "abc"`},
		{"$7$2147483648$" + good7[3] + "$" + good7[4], `bad iteration count "2147483648"`},
		{"$7$101$!!!!$" + good7[4], "not base64"},
		{"$7$101$" + good7[3] + "$" + good7[4][:87], "not base64"},
		{"$7$101$" + salt16 + "$" + good7[4], "salt must be 12 bytes and hash 64 bytes"},
		{"$7$101$" + good7[3] + "$" + key32, "salt must be 12 bytes and hash 64 bytes"},
		{"$6$" + salt16 + "$" + good6[3], "salt must be 12 bytes and hash 64 bytes"},
		{"$6$" + good6[2] + "$" + key32, "salt must be 12 bytes and hash 64 bytes"},
		{"$6$$" + good6[3], "salt must be 12 bytes"},
		{"$6$" + good6[2] + "$%%%", "not base64"},
	}
	for _, tt := range tests {
		p, err := ParseHash(tt.hash)
		if err == nil {
			t.Errorf("ParseHash(%q) = %+v, want an error", tt.hash, p)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseHash(%q) error %q, want it to hold %q", tt.hash, err, tt.want)
		}
		if Verify(tt.hash, "apw") || Verify(tt.hash, "spw") || Verify(tt.hash, "") {
			t.Errorf("Verify(%q) accepted a password", tt.hash)
		}
	}
}

func TestFormatParse(t *testing.T) {
	entries := []Entry{{"zigbee2mqtt", toolHash7}, {"alice", toolHash6}, {"bob smith", pyHash7}}
	want := "zigbee2mqtt:" + toolHash7 + "\nalice:" + toolHash6 + "\nbob smith:" + pyHash7 + "\n"
	out := Format(entries)
	if string(out) != want {
		t.Errorf("Format() =\n%s\nwant\n%s", out, want)
	}
	got, err := Parse(bytes.NewReader(out))
	if err != nil || !reflect.DeepEqual(got, entries) {
		t.Errorf("Parse(Format()) = %v, %v; want %v", got, err, entries)
	}
	// Comments, blank lines and CRLF.
	got, err = Parse(strings.NewReader("# users\n\nalice:" + toolHash7 + "\r\n   \n#bob:x\n"))
	if err != nil || !reflect.DeepEqual(got, []Entry{{"alice", toolHash7}}) {
		t.Errorf("Parse() = %v, %v", got, err)
	}
	if got, err := Parse(strings.NewReader("")); err != nil || got != nil {
		t.Errorf("Parse(\"\") = %v, %v; want nothing", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	line := "alice:" + toolHash7 + "\n"
	tests := []struct {
		text, want string
	}{
		{"alice\n", "line 1: want user:hash"},
		{line + ":" + toolHash7 + "\n", "line 2: want user:hash"},
		{"alice:secret\n", "line 1: user alice: not a $6$ or $7$ hash"},
		{"alice:\n", "line 1: user alice: not a $6$ or $7$ hash"},
		{"alice:" + toolHash7 + " \n", "line 1: user alice: salt or hash is not base64"},
		{line + "# x\n" + line, "line 3: user alice appears twice"},
		{line + "alice:" + toolHash6 + "\n", "line 2: user alice appears twice"},
		{" alice:" + toolHash7 + "\n", `line 1: user " alice" has leading or trailing blanks`},
		{"alice\t:" + toolHash7 + "\n", `line 1: user "alice\t" has leading or trailing blanks`},
		{"al\x00ice:" + toolHash7 + "\n", "line 1 holds a NUL byte"},
		{"bob:$7$101$AAECAwQFBgcICQoLDA0ODw==$" + strings.Split(toolHash7, "$")[4] + "\n", "salt must be 12 bytes"},
	}
	for _, tt := range tests {
		got, err := Parse(strings.NewReader(tt.text))
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", tt.text, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error %q, want it to hold %q", tt.text, err, tt.want)
		}
	}
}

// A hash of 2.1's mosquitto_passwd (64-byte salt, password "secret", 1000
// iterations): 2.0 cannot read it, 2.1 can, and Verify checks it.
func TestLongSalt(t *testing.T) {
	salt := bytes.Repeat([]byte{7}, LongSaltLen)
	h, err := hash7("secret", salt, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseHash(h); err == nil || !strings.Contains(err.Error(), "2.1") {
		t.Fatalf("ParseHash accepted a 64-byte salt or did not name 2.1: %v", err)
	}
	p, err := ParseHash21(h)
	if err != nil || !p.LongSalt() {
		t.Fatalf("ParseHash21 = %+v, %v", p, err)
	}
	if !Verify(h, "secret") || Verify(h, "Secret") {
		t.Fatal("Verify of a 64-byte-salt hash")
	}
	if _, err := Parse(strings.NewReader("a:" + h + "\n")); err == nil {
		t.Fatal("Parse accepted a 64-byte salt")
	}
	if e, err := Parse21(strings.NewReader("a:" + h + "\n")); err != nil || len(e) != 1 {
		t.Fatalf("Parse21 = %v, %v", e, err)
	}
	if _, err := ParseHash21("$7$1000$" + base64.StdEncoding.EncodeToString(make([]byte, 16)) + "$" + base64.StdEncoding.EncodeToString(make([]byte, 64))); err == nil {
		t.Fatal("ParseHash21 accepted a 16-byte salt")
	}
}
