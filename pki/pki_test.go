package pki

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func verify(t *testing.T, b *Bundle, name string, at time.Time) {
	t.Helper()
	ca, err := ParseCert(b.CACert)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCert(b.ServerCert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: at}); err != nil {
		t.Errorf("server certificate does not verify for %s: %v", name, err)
	}
	if err := Match(b.ServerCert, b.ServerKey); err != nil {
		t.Error(err)
	}
}

func TestEnsure(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	names := []string{"mqtt.home.arpa", "192.168.1.10"}

	first, err := Ensure(dir, names, now)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, first, "mqtt.home.arpa", now)
	cert, _ := ParseCert(first.ServerCert)
	if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "192.168.1.10" {
		t.Errorf("IP SANs %v", cert.IPAddresses)
	}
	for _, f := range []string{"ca.key", "server.key"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st.Mode(), err)
		}
	}

	// Reused while valid, the other names in any order: byte-identical.
	again, err := Ensure(dir, []string{"mqtt.home.arpa", "192.168.1.10", "mqtt.home.arpa"}, now.Add(300*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ServerCert, first.ServerCert) || !bytes.Equal(again.CACert, first.CACert) {
		t.Error("a valid certificate was made anew")
	}

	// Fewer than 30 days left: renewed under the same CA.
	late := cert.NotAfter.Add(-29 * 24 * time.Hour)
	renewed, err := Ensure(dir, names, late)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(renewed.ServerCert, first.ServerCert) {
		t.Error("a certificate with 29 days left was not renewed")
	}
	if !bytes.Equal(renewed.CACert, first.CACert) {
		t.Error("renewing the server certificate replaced the CA: every client would have to trust it anew")
	}
	verify(t, renewed, "mqtt.home.arpa", late)

	// Other names: made anew with them.
	moved, err := Ensure(dir, []string{"broker.lan"}, late)
	if err != nil {
		t.Fatal(err)
	}
	mc, _ := ParseCert(moved.ServerCert)
	if !slices.Equal(mc.DNSNames, []string{"broker.lan"}) || len(mc.IPAddresses) != 0 {
		t.Errorf("names %v %v", mc.DNSNames, mc.IPAddresses)
	}
}

// TestMismatchedPairReplaced: a key that does not belong to the certificate
// (say, a half-finished copy) is never served: the pair is made anew.
func TestMismatchedPairReplaced(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a, err := Ensure(dir, []string{"a.lan"}, now)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	b, err := Ensure(other, []string{"a.lan"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := Match(a.ServerCert, b.ServerKey); err == nil {
		t.Fatal("Match accepted another certificate's key")
	}
	if err := os.WriteFile(filepath.Join(dir, "server.key"), b.ServerKey, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Ensure(dir, []string{"a.lan"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := Match(c.ServerCert, c.ServerKey); err != nil {
		t.Errorf("after a mismatch: %v", err)
	}
	verify(t, c, "a.lan", now)
}
