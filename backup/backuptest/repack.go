// Package backuptest helps tests tamper with backup archives.
package backuptest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

// Repack rewrites a tar.gz archive entry by entry through edit, which
// returns the new body and whether to keep the entry. The result is a valid
// tar.gz: only the archive's manifest can tell what changed.
func Repack(t testing.TB, data []byte, edit func(name string, body []byte) ([]byte, bool)) []byte {
	t.Helper()
	return rewrite(t, data, edit, nil)
}

// rewrite is Repack, then more writes entries at the end and says whether
// the tar is to be closed (an entry cut short is not).
func rewrite(t testing.TB, data []byte, edit func(name string, body []byte) ([]byte, bool), more func(*tar.Writer) bool) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		body, keep := edit(h.Name, body)
		if !keep {
			continue
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if more == nil || more(tw) {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
