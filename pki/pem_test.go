package pki

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testBundle(t testing.TB) *Bundle {
	b, err := Ensure(t.TempDir(), []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckPEM: a CA file holds certificates only (issue 11: a PRIVATE KEY
// there was copied 0644 into the config and backups), a key file one key.
func TestCheckPEM(t *testing.T) {
	b := testBundle(t)
	chain := append(append([]byte{}, b.ServerCert...), b.CACert...)
	for _, tc := range []struct {
		name string
		data []byte
		kind Kind
		err  string
	}{
		{"ca", b.CACert, Certificates, ""},
		{"chain", chain, Certificates, ""},
		{"key", b.ServerKey, PrivateKey, ""},
		{"cert and key as ca", append(append([]byte{}, b.CACert...), b.ServerKey...), Certificates, "holds a PRIVATE KEY"},
		{"key as ca", b.ServerKey, Certificates, "holds a PRIVATE KEY"},
		{"cert as key", b.CACert, PrivateKey, "unknown private key type \"CERTIFICATE\""},
		{"two keys", append(append([]byte{}, b.ServerKey...), b.ServerKey...), PrivateKey, "more than one PEM block"},
		{"text", []byte("hello"), Certificates, "not a PEM file"},
		{"bad cert", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), Certificates, "does not parse"},
		{"other block", []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), Certificates, "holds a X509 CRL block"},
	} {
		err := CheckPEM(tc.data, tc.kind)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
		}
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big.pem")
	os.WriteFile(big, bytes.Repeat(b.CACert, MaxPEM/len(b.CACert)+1), 0o644)
	if _, err := ReadPEM(big, Certificates); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a PEM file over the limit: %v", err)
	}
	if _, err := ReadPEM("/dev/zero", Certificates); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("/dev/zero: %v", err)
	}
}

// FuzzCheckPEM: whatever the bytes, CheckPEM does not panic, and what it
// accepts as certificates parses as certificates.
func FuzzCheckPEM(f *testing.F) {
	b := testBundle(f)
	f.Add(b.CACert, false)
	f.Add(b.ServerKey, true)
	f.Add(append(append([]byte{}, b.CACert...), b.ServerKey...), false)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, key bool) {
		kind := Certificates
		if key {
			kind = PrivateKey
		}
		if CheckPEM(data, kind) == nil && kind == Certificates {
			if _, err := ParseCert(data); err != nil {
				t.Errorf("accepted certificates, but the first does not parse: %v", err)
			}
		}
	})
}
