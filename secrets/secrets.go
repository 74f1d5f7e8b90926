// Package secrets keeps the passwords of a home out of git: it generates
// them on first need into the state directory (mode 0700, files 0600), reads
// the ones users keep elsewhere (password: file: / env:), rotates them, and
// keeps each account's password hash while it still verifies, so that
// rendering twice gives byte-identical files.
package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/schema"
)

// passwordBytes of randomness make 32 URL-safe characters.
const passwordBytes = 24

// Store is the state directory of one home.
type Store struct {
	Dir string
	// HomeDir resolves relative password: file: paths.
	HomeDir string
	// ReadFile and Getenv reach the user's own secrets; tests replace them.
	ReadFile func(string) ([]byte, error)
	Getenv   func(string) string
}

// NewStore returns the store at dir without touching the disk.
func NewStore(dir, homeDir string) *Store {
	return &Store{Dir: dir, HomeDir: homeDir, ReadFile: os.ReadFile, Getenv: os.Getenv}
}

func (s *Store) passwordPath(account string) string {
	return filepath.Join(s.Dir, "passwords", account)
}

// Source says where an account's password comes from, for messages.
func Source(src *schema.Secret) string {
	switch {
	case src == nil:
		return "generated"
	case src.Env != "":
		return "env " + src.Env
	default:
		return "file " + src.File
	}
}

// External reads a password the user keeps outside the store. It never
// writes anything.
func (s *Store) External(src schema.Secret) (string, error) {
	if src.Env != "" {
		v := s.Getenv(src.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", src.Env)
		}
		return v, nil
	}
	p := src.File
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.HomeDir, p)
	}
	data, err := s.ReadFile(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("%s: %v", p, pe.Err)
		}
		return "", err
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" || strings.ContainsAny(pw, "\n") {
		return "", fmt.Errorf("%s: want the password alone on one line", p)
	}
	return pw, nil
}

// Generated returns the stored password of account, or "" when there is none yet.
func (s *Store) Generated(account string) (string, error) {
	data, err := os.ReadFile(s.passwordPath(account))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// Password returns account's password: from src when given, else the stored
// one, generated and stored on first need.
func (s *Store) Password(account string, src *schema.Secret) (string, error) {
	if src != nil {
		return s.External(*src)
	}
	pw, err := s.Generated(account)
	if err != nil || pw != "" {
		return pw, err
	}
	return s.Rotate(account)
}

// Rotate stores a new random password for account and returns it.
func (s *Store) Rotate(account string) (string, error) {
	pw, err := NewPassword()
	if err != nil {
		return "", err
	}
	if err := s.ensureDir("passwords"); err != nil {
		return "", err
	}
	return pw, atomicfile.Write(s.passwordPath(account), []byte(pw+"\n"), 0o600)
}

// NewPassword returns 32 random URL-safe characters.
func NewPassword() (string, error) {
	b := make([]byte, passwordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Store) ensureDir(sub string) error {
	for _, d := range []string{s.Dir, filepath.Join(s.Dir, sub)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// Hashes returns a hash of each account's password: the kept one while it
// still verifies with the wanted iteration count, a new one otherwise. New
// hashes are kept in the state directory.
func (s *Store) Hashes(passwords map[string]string, iterations int) (map[string]string, error) {
	cachePath := filepath.Join(s.Dir, "passwd.hashes")
	kept := map[string]string{}
	if data, err := os.ReadFile(cachePath); err == nil {
		entries, err := passwd.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %v (delete it to hash anew)", cachePath, err)
		}
		for _, e := range entries {
			kept[e.User] = e.Hash
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	out := map[string]string{}
	changed := false
	for _, name := range schema.SortedKeys(passwords) {
		pw := passwords[name]
		if h, ok := kept[name]; ok && sameIterations(h, iterations) && passwd.Verify(h, pw) {
			out[name] = h
			continue
		}
		h, err := passwd.Hash(pw, iterations)
		if err != nil {
			return nil, err
		}
		out[name], changed = h, true
	}
	if changed || len(kept) != len(out) {
		var entries []passwd.Entry
		for _, name := range schema.SortedKeys(out) {
			entries = append(entries, passwd.Entry{User: name, Hash: out[name]})
		}
		if err := s.ensureDir("passwords"); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(cachePath, passwd.Format(entries), 0o600); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sameIterations(h string, iterations int) bool {
	p, err := passwd.ParseHash(h)
	return err == nil && p.Kind == 7 && p.Iterations == iterations
}
