package deploytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// StartDockerdTLS is StartDockerd with the engine listening on
// tcp://127.0.0.1:PORT too, verifying clients (--tlsverify) against a CA
// the test makes. It returns the engine, its tcp:// address and a folder
// holding ca.pem, cert.pem and key.pem for a client, as DOCKER_CERT_PATH
// does.
func StartDockerdTLS(t testing.TB) (d *Dockerd, host, certPath string) {
	t.Helper()
	port := FreePort(t)
	host = fmt.Sprintf("tcp://127.0.0.1:%d", port)
	d = startDockerd(t, func(dir string) []string {
		ca, caKey := newCert(t, nil, nil, "mqttgen test engine CA", true, nil)
		srv, srvKey := newCert(t, ca, caKey, "127.0.0.1", false, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
		cli, cliKey := newCert(t, ca, caKey, "client", false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
		certPath = filepath.Join(dir, "client")
		os.MkdirAll(certPath, 0o700)
		write := func(p string, data []byte) {
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write(filepath.Join(dir, "ca.pem"), pemCert(ca))
		write(filepath.Join(dir, "server-cert.pem"), pemCert(srv))
		write(filepath.Join(dir, "server-key.pem"), pemKey(t, srvKey))
		write(filepath.Join(certPath, "ca.pem"), pemCert(ca))
		write(filepath.Join(certPath, "cert.pem"), pemCert(cli))
		write(filepath.Join(certPath, "key.pem"), pemKey(t, cliKey))
		return []string{"--host", host, "--tlsverify",
			"--tlscacert", filepath.Join(dir, "ca.pem"),
			"--tlscert", filepath.Join(dir, "server-cert.pem"),
			"--tlskey", filepath.Join(dir, "server-key.pem")}
	})
	return d, host, certPath
}

func newCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, ca bool, usage []x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemKey(t testing.TB, k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}
