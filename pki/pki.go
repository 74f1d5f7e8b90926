// Package pki makes and keeps the certificate authority and the server
// certificate of a home's TLS listeners, in the state directory. Certificates
// are reused while valid, and made anew when less than 30 days remain, when
// the names they must carry change, or when key and certificate do not match.
package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
)

const (
	// RenewBefore is how long before expiry a certificate is made anew.
	RenewBefore = 30 * 24 * time.Hour
	caValidity  = 10 * 365 * 24 * time.Hour
	// Within the 825 days Apple's clients accept from a private CA.
	serverValidity = 397 * 24 * time.Hour
	// RSA 2048 is what small devices' TLS stacks (ESP8266, Tasmota) all speak.
	keyBits = 2048
)

// Bundle is the PEM of the CA certificate and the server's certificate and key.
type Bundle struct {
	CACert, ServerCert, ServerKey []byte
}

// Ensure returns the certificates in dir, making what is missing or due.
// names are the DNS names and IP addresses the server certificate must carry;
// the first is its common name (the broker's hostname), which clients and
// tools show as the certificate's name.
func Ensure(dir string, names []string, now time.Time) (*Bundle, error) {
	return ensure(dir, names, now, true)
}

// Peek is Ensure that writes nothing: what is missing or due is made in
// memory only (plan shows it; apply makes the one that is kept).
func Peek(dir string, names []string, now time.Time) (*Bundle, error) {
	return ensure(dir, names, now, false)
}

func ensure(dir string, names []string, now time.Time, write bool) (*Bundle, error) {
	if len(names) == 0 {
		return nil, errors.New("a server certificate needs a name")
	}
	cn := names[0]
	if write {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	caCert, caKey, err := ensureCA(dir, now, write)
	if err != nil {
		return nil, err
	}
	names = normalise(names)
	certPEM, keyPEM, ok := loadPair(dir, "server")
	if ok {
		cert, _ := parseCert(certPEM)
		if !current(cert, now) || !slices.Equal(certNames(cert), names) || cert.Subject.CommonName != cn || cert.CheckSignatureFrom(caCert) != nil {
			ok = false
		}
	}
	if !ok {
		certPEM, keyPEM, err = issueServer(caCert, caKey, cn, names, now)
		if err != nil {
			return nil, err
		}
		if write {
			if err := writePair(dir, "server", certPEM, keyPEM); err != nil {
				return nil, err
			}
		}
	}
	return &Bundle{CACert: pemOf("CERTIFICATE", caCert.Raw), ServerCert: certPEM, ServerKey: keyPEM}, nil
}

func ensureCA(dir string, now time.Time, write bool) (*x509.Certificate, crypto.Signer, error) {
	if certPEM, keyPEM, ok := loadPair(dir, "ca"); ok {
		cert, _ := parseCert(certPEM)
		key, _ := parseKey(keyPEM)
		if current(cert, now) {
			return cert, key, nil
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mqttgen home CA", Organization: []string{"mqttgen"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if write {
		if err := writePair(dir, "ca", pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", keyDER)); err != nil {
			return nil, nil, err
		}
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func issueServer(ca *x509.Certificate, caKey crypto.Signer, cn string, names []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", keyDER), nil
}

// current reports whether cert is valid at now and for RenewBefore more.
func current(cert *x509.Certificate, now time.Time) bool {
	return cert != nil && !now.Before(cert.NotBefore) && now.Add(RenewBefore).Before(cert.NotAfter)
}

func normalise(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

func certNames(c *x509.Certificate) []string {
	out := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return normalise(out)
}

// loadPair reads NAME.crt and NAME.key and reports whether both parse and
// belong together.
func loadPair(dir, name string) (certPEM, keyPEM []byte, ok bool) {
	certPEM, err1 := os.ReadFile(filepath.Join(dir, name+".crt"))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, name+".key"))
	if err1 != nil || err2 != nil {
		return nil, nil, false
	}
	return certPEM, keyPEM, Match(certPEM, keyPEM) == nil
}

// Match reports whether keyPEM is the private key of certPEM. A mismatched
// pair must never reach a broker: it would refuse to start its listener.
func Match(certPEM, keyPEM []byte) error {
	cert, err := parseCert(certPEM)
	if err != nil {
		return err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("the private key does not belong to the certificate")
	}
	return nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// ParseCert reads the first certificate of a PEM file.
func ParseCert(data []byte) (*x509.Certificate, error) { return parseCert(data) }

func parseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM private key")
	}
	var key any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unknown private key type %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("the private key cannot sign")
	}
	return s, nil
}

func writePair(dir, name string, certPEM, keyPEM []byte) error {
	// The key first: a certificate never stands beside a key not its own
	// for longer than one rename.
	if err := atomicfile.Write(filepath.Join(dir, name+".key"), keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, name+".crt"), certPEM, fs.FileMode(0o644))
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}
