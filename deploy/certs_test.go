package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/generators"
)

func testCert(t *testing.T, notAfter time.Time, names ...string) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, NotBefore: notAfter.Add(-400 * 24 * time.Hour), NotAfter: notAfter, DNSNames: names}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestCertificateReasons: plan says why a certificate is replaced when it
// is due (fewer than 30 days left, or expired) or names other hosts.
func TestCertificateReasons(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	renewed := testCert(t, now.Add(397*24*time.Hour), "mqtt.home.arpa")
	file := func(data []byte) []generators.File {
		return []generators.File{{Path: "certs/server.crt", Data: data}}
	}
	cases := []struct {
		name     string
		deployed []byte
		now      time.Time
		want     string
	}{
		{"due", testCert(t, now.Add(10*24*time.Hour), "mqtt.home.arpa"), now, "certificate certs/server.crt expires on 2026-12-02, in 10 days, fewer than the 30 days before expiry mqttgen renews at: renewed (valid until 2027-12-24)"},
		{"expired", testCert(t, now.Add(-time.Hour), "mqtt.home.arpa"), now, "certificate certs/server.crt expired on 2026-11-22: renewed"},
		{"names", testCert(t, now.Add(300*24*time.Hour), "mqtt.home.arpa", "old.home.arpa"), now, "certificate certs/server.crt names mqtt.home.arpa, old.home.arpa, home.cue asks for mqtt.home.arpa: made anew"},
		{"not due", testCert(t, now.Add(31*24*time.Hour), "mqtt.home.arpa"), now, ""},
		{"no time", testCert(t, now.Add(10*24*time.Hour), "mqtt.home.arpa"), time.Time{}, ""},
	}
	for _, c := range cases {
		got := strings.Join(certificateReasons(file(c.deployed), file(renewed), c.now), "\n")
		if !strings.HasPrefix(got, c.want) || (c.want == "") != (got == "") {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}

	// In a plan: one in-place update whose first reason is the renewal.
	cfg := home(t)
	d := desired(t, cfg, "a")
	o := deployed(d)
	for i := range o.Containers {
		o.Containers[i].Files = append([]generators.File(nil), o.Containers[i].Files...)
		for j, f := range o.Containers[i].Files {
			if f.Path == "certs/server.crt" {
				o.Containers[i].Files[j].Data = testCert(t, now.Add(10*24*time.Hour), "mqtt.home.arpa")
			}
		}
	}
	d.Now = now
	p := Reconcile(d, o)
	if len(p.Ops) != 1 || p.Ops[0].Action != Update || !strings.Contains(p.Ops[0].Reasons[0], "expires on 2026-12-02, in 10 days") {
		t.Fatalf("plan: %+v", p.Ops)
	}
}
