package backuptest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"
)

// Entry is an entry AddEntries adds. A Size larger than the Body claims it
// in the manifest and the tar header and ends the archive after the body,
// as a huge entry cut short: the entries after it are in the manifest only.
type Entry struct {
	Name string
	Body []byte
	Size int64
}

// AddEntry adds one entry of size bytes (see Entry).
func AddEntry(t testing.TB, data []byte, name string, body []byte, size int64) []byte {
	t.Helper()
	return AddEntries(t, data, Entry{Name: name, Body: body, Size: size})
}

// AddEntries returns the archive with more entries, each named in its
// manifest with the body's SHA-256: what someone who rewrites an archive
// can make, since the manifest is not signed.
func AddEntries(t testing.TB, data []byte, add ...Entry) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for first := true; ; first = false {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if first {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			entries, _ := m["entries"].([]any)
			for _, e := range add {
				sum := sha256.Sum256(e.Body)
				entries = append(entries, map[string]any{"path": e.Name, "size": e.Size, "mode": "0600", "uid": 1883, "gid": 1883, "sha256": hex.EncodeToString(sum[:])})
			}
			m["entries"] = entries
			if b, err = json.MarshalIndent(m, "", "  "); err != nil {
				t.Fatal(err)
			}
			h.Size = int64(len(b))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range add {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.Name, Size: e.Size, Mode: 0o600, Uid: 1883, Gid: 1883, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.Body); err != nil {
			t.Fatal(err)
		}
		if e.Size != int64(len(e.Body)) {
			// Not closed: the tar writer would refuse, and what it
			// wrote is all there is.
			break
		}
		if i == len(add)-1 {
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
