package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/mqttgen/mqttgen/internal/boundedread"
)

// MaxPEM is the largest PEM file read: a CA bundle of a few hundred
// certificates fits; a larger or endless file is refused.
const MaxPEM = 1 << 20

// Kind is what a PEM input must hold.
type Kind int

const (
	// Certificates: one or more CERTIFICATE blocks and nothing else (a CA
	// file, a certificate with its chain). A private key there would be
	// copied, world-readable, into the config and every backup.
	Certificates Kind = iota
	// PrivateKey: exactly one private key and nothing else.
	PrivateKey
)

func (k Kind) String() string {
	if k == PrivateKey {
		return "a private key"
	}
	return "certificates"
}

// CheckPEM reports why data is not a PEM file holding only what kind says:
// every block must be of the kind and parse, and there must be at least one.
func CheckPEM(data []byte, kind Kind) error {
	rest := data
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
		switch {
		case kind == Certificates && b.Type == "CERTIFICATE":
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return fmt.Errorf("certificate %d does not parse: %v", n, err)
			}
		case kind == Certificates && bytes.Contains([]byte(b.Type), []byte("PRIVATE KEY")):
			return fmt.Errorf("holds a %s: a file of certificates must hold certificates only (the key would be copied, readable by everyone, into the broker's config and backups); give the CA certificate alone", b.Type)
		case kind == Certificates:
			return fmt.Errorf("holds a %s block: want CERTIFICATE blocks only", b.Type)
		case n > 1:
			return errors.New("holds more than one PEM block: want the private key alone")
		default:
			if _, err := parseKey(pem.EncodeToMemory(b)); err != nil {
				return fmt.Errorf("the private key does not parse: %v", err)
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("not a PEM file: want %s", kind)
	}
	return nil
}

// ReadPEM reads a PEM file of at most MaxPEM bytes and checks that it holds
// only what kind says. Errors name the path.
func ReadPEM(path string, kind Kind) ([]byte, error) {
	data, err := boundedread.File(path, MaxPEM)
	if err != nil {
		return nil, err
	}
	if err := CheckPEM(data, kind); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return data, nil
}
