package backup

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// FuzzRead: Read never panics, and an archive it accepts holds only what a
// backup writes, within the limits, exactly as its manifest says: written
// again from its manifest and files, it reads back the same.
func FuzzRead(f *testing.F) {
	m, files := sample()
	var b bytes.Buffer
	if err := write(&b, m, files); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add(b.Bytes()[:b.Len()/2])
	f.Add([]byte{})
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Read(bytes.NewReader(data))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a refusal on more than one line: %q", err)
			}
			return
		}
		if problem := checkEntries(a.Manifest.Entries); problem != "" {
			t.Fatalf("accepted an archive with %s", problem)
		}
		if len(a.Files) != len(a.Manifest.Entries) {
			t.Fatalf("%d files for %d entries", len(a.Files), len(a.Manifest.Entries))
		}
		for i, f := range a.Files {
			e := a.Manifest.Entries[i]
			if f.Path != e.Path || int64(len(f.Data)) != e.Size || digest(f.Data) != e.SHA256 {
				t.Fatalf("file %d is %s (%d bytes), the manifest says %+v", i, f.Path, len(f.Data), e)
			}
		}
		m := a.Manifest
		var again bytes.Buffer
		if err := write(&again, &m, a.Files); err != nil {
			t.Fatalf("an accepted archive cannot be written again: %v", err)
		}
		b, err := Read(&again)
		if err != nil {
			t.Fatalf("written again, refused: %v", err)
		}
		if !reflect.DeepEqual(b.Manifest.Entries, a.Manifest.Entries) {
			t.Fatalf("written again: %+v, was %+v", b.Manifest.Entries, a.Manifest.Entries)
		}
	})
}

// FuzzRedactConf: whatever surrounds it, a bridge password on a line of its
// own never survives redaction (Mosquitto reads the option after spaces and
// tabs, its value after the option name); every other line stays as it was
// (but for a "\r" at its end); redacting again changes nothing.
func FuzzRedactConf(f *testing.F) {
	f.Add("listener 1883\nconnection cloud\naddress x:1883\n", " ", "s3cret-Passw0rd", "\ntopic # out 0\n")
	f.Add("", "\t", "a b c d", "")
	f.Add("remote_password\r", "  ", "x\ry", "\r\n")
	f.Add(strings.Repeat("#", 70000), "", "after-a-long-line", "")
	f.Fuzz(func(t *testing.T, before, indent, secret, after string) {
		secret = strings.TrimSpace(secret)
		if strings.Trim(indent, " \t") != "" || len(secret) < 6 || strings.ContainsAny(secret, "\n") ||
			strings.Contains(before+after, secret) || strings.Contains(redactedValue, secret) {
			return
		}
		for _, opt := range []string{"remote_password", "local_password", "bridge_psk"} {
			text := before + "\n" + indent + opt + " " + secret + "\n" + after
			red, what := redactConf([]byte(text))
			if bytes.Contains(red, []byte(secret)) {
				t.Fatalf("%s survived: %q", opt, red)
			}
			if len(what) == 0 {
				t.Fatalf("nothing named as redacted in %q", text)
			}
			in, out := strings.Split(text, "\n"), strings.Split(string(red), "\n")
			if len(in) != len(out) {
				t.Fatalf("%d lines became %d", len(in), len(out))
			}
			for i := range in {
				// conf.Redact drops a "\r" before "\n".
				fields := strings.Fields(in[i])
				if strings.TrimSuffix(in[i], "\r") != out[i] && (len(fields) < 2 || !conf.Secret(fields[0])) {
					t.Fatalf("line %d %q became %q", i, in[i], out[i])
				}
			}
			if again, _ := redactConf(red); !bytes.Equal(again, red) {
				t.Fatalf("redacting twice: %q then %q", red, again)
			}
		}
	})
}

// TestRedactLongLine: a line longer than bufio.Scanner's limit (16 MiB
// here) before the password ended redaction and left the password in
// clear in the archive.
func TestRedactLongLine(t *testing.T) {
	conf := "# " + strings.Repeat("x", 17<<20) + "\nconnection cloud\nremote_password hunter2-long-enough\r\n"
	red, what := redactConf([]byte(conf))
	if bytes.Contains(red, []byte("hunter2")) || len(what) != 1 {
		t.Fatalf("the password survived a long line (%v)", what)
	}
}
