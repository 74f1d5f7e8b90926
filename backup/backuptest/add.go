package backuptest

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	manifest := func(name string, body []byte) ([]byte, bool) {
		if name != "manifest.json" {
			return body, true
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatal(err)
		}
		entries, _ := m["entries"].([]any)
		for _, e := range add {
			sum := sha256.Sum256(e.Body)
			entries = append(entries, map[string]any{"path": e.Name, "size": e.Size, "mode": "0600", "uid": 1883, "gid": 1883, "sha256": hex.EncodeToString(sum[:])})
		}
		m["entries"] = entries
		body, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return body, true
	}
	return rewrite(t, data, manifest, func(tw *tar.Writer) bool {
		for _, e := range add {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.Name, Size: e.Size, Mode: 0o600, Uid: 1883, Gid: 1883, Format: tar.FormatPAX}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(e.Body); err != nil {
				t.Fatal(err)
			}
			if e.Size != int64(len(e.Body)) {
				// Not closed: the tar writer would refuse, and what it
				// wrote is all there is.
				return false
			}
		}
		return true
	})
}
