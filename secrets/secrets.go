// Package secrets keeps the passwords of a home out of git: it generates
// them on first need into the state directory (mode 0700, files 0600), reads
// the ones users keep elsewhere (password: file: / env:), rotates them, and
// keeps each account's password hash while it still verifies, so that
// rendering twice gives byte-identical files.
package secrets

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
	"github.com/mqttgen/mqttgen/internal/boundedread"
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
	// ReadOnly: nothing is written into Dir; a password the account does
	// not have yet and new hashes are made in memory only (plan, status).
	ReadOnly bool
	unsaved  map[string]string
}

// NewStore returns the store at dir without touching the disk.
func NewStore(dir, homeDir string) *Store {
	return &Store{Dir: dir, HomeDir: homeDir, ReadFile: readPasswordFile, Getenv: os.Getenv}
}

// MaxPasswordFile is the largest password file read: MQTT's longest
// password (65535 bytes) and a line end. A larger or endless file
// (/dev/zero) is refused after that many bytes.
const MaxPasswordFile = 65535 + 2

func readPasswordFile(path string) ([]byte, error) { return boundedread.File(path, MaxPasswordFile) }

func (s *Store) passwordPath(account string) string {
	return filepath.Join(s.Dir, "passwords", account)
}

// Source says where an account's password comes from, for messages.
func Source(src *schema.Secret) string {
	switch {
	case src == nil:
		return "generated"
	case src.Hash:
		return "a kept hash"
	case src.Env != "":
		return "env " + src.Env
	default:
		return "file " + src.File
	}
}

// External reads a password the user keeps outside the store. It never
// writes anything. The password must follow schema.Password, checked here
// where it is read: one line without control characters or blanks at its
// edges (Mosquitto would strip them from remote_password), at most 65535
// bytes; a file may end in line breaks.
func (s *Store) External(src schema.Secret) (string, error) {
	if src.Env != "" {
		v := s.Getenv(src.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", src.Env)
		}
		if err := schema.Password.Check(v); err != nil {
			return "", fmt.Errorf("environment variable %s: the password %s", src.Env, err)
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
	if pw == "" || strings.ContainsAny(pw, "\r\n") {
		return "", fmt.Errorf("%s: want the password alone on one line", p)
	}
	if err := schema.Password.Check(pw); err != nil {
		return "", fmt.Errorf("%s: the password %s", p, err)
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

// ErrUnknownPassword is the error of Password for an account whose hash
// was imported and kept: mqttgen never knew its password.
var ErrUnknownPassword = errors.New("password unknown to mqttgen")

type unknownPassword struct{ msg string }

func (e unknownPassword) Error() string        { return e.msg }
func (e unknownPassword) Is(target error) bool { return target == ErrUnknownPassword }

// Password returns account's password: from src when given, else the stored
// one, generated and stored on first need. For a kept hash (password:
// "hash") it is the password rotate generated, if any; until then the
// error wraps ErrUnknownPassword.
func (s *Store) Password(account string, src *schema.Secret) (string, error) {
	if src != nil && src.Hash {
		pw, err := s.Generated(account)
		if err != nil || pw != "" {
			return pw, err
		}
		return "", unknownPassword{fmt.Sprintf("the password of %s is unknown to mqttgen: only its hash was imported (kept in %s); give it a new one with `mqttgen secrets rotate %s`", account, s.keptPath(account), account)}
	}
	if src != nil {
		return s.External(*src)
	}
	pw, err := s.Generated(account)
	if err != nil || pw != "" {
		return pw, err
	}
	if s.ReadOnly {
		// Made in memory, the same for the rest of this command; apply
		// generates the one that is kept.
		if pw, ok := s.unsaved[account]; ok {
			return pw, nil
		}
		pw, err := NewPassword()
		if err != nil {
			return "", err
		}
		if s.unsaved == nil {
			s.unsaved = map[string]string{}
		}
		s.unsaved[account] = pw
		return pw, nil
	}
	return s.Rotate(account)
}

// Unsaved names the accounts whose password a read-only store made in
// memory only (they have none yet in the state directory).
func (s *Store) Unsaved() []string { return schema.SortedKeys(s.unsaved) }

// Rotate stores a new random password for account and returns it. A kept
// hash of the account is removed: the new password replaces it.
func (s *Store) Rotate(account string) (string, error) {
	pw, err := NewPassword()
	if err != nil {
		return "", err
	}
	if err := s.ensureDir("passwords"); err != nil {
		return "", err
	}
	if err := atomicfile.Write(s.passwordPath(account), []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Remove(s.keptPath(account)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return pw, nil
}

func (s *Store) keptPath(account string) string {
	return filepath.Join(s.Dir, "hashes", account)
}

// KeepHash stores an imported hash of account as it is (password: "hash").
// It is checked as Mosquitto 2.1 reads it; whether the target reads it is
// the caller's question.
func (s *Store) KeepHash(account, hash string) error {
	if _, err := passwd.ParseHash21(hash); err != nil {
		return fmt.Errorf("hash of %s: %v", account, err)
	}
	if err := s.ensureDir("hashes"); err != nil {
		return err
	}
	return atomicfile.Write(s.keptPath(account), []byte(hash+"\n"), 0o600)
}

// KeptHash returns the kept hash of account, "" when there is none.
func (s *Store) KeptHash(account string) (string, error) {
	p := s.keptPath(account)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	h := strings.TrimSpace(string(data))
	if _, err := passwd.ParseHash21(h); err != nil {
		return "", fmt.Errorf("%s: %v", p, err)
	}
	return h, nil
}

// SetPassword stores password as account's own, as if generated: an
// imported plain-text password.
func (s *Store) SetPassword(account, password string) error {
	if password == "" || strings.ContainsAny(password, "\n\r") {
		return fmt.Errorf("password of %s: want one non-empty line", account)
	}
	if err := s.ensureDir("passwords"); err != nil {
		return err
	}
	return atomicfile.Write(s.passwordPath(account), []byte(password+"\n"), 0o600)
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
// hashes are kept in the state directory (passwd.hashes).
//
// Verifying a kept hash costs a PBKDF2 run, which for a thousand devices
// takes seconds; so beside each kept hash the state directory keeps a
// fingerprint, SHA-256 of hash and password, and a hash whose fingerprint
// matches is kept without PBKDF2. The fingerprint reveals nothing the state
// directory does not already hold: the passwords themselves.
//
// Kept hashes of accounts not in passwords are dropped, except those named
// in keep: the accounts of a home's other sites, which one site's render
// does not hash.
func (s *Store) Hashes(passwords map[string]string, iterations int, keep ...string) (map[string]string, error) {
	hashPath := filepath.Join(s.Dir, "passwd.hashes")
	printPath := filepath.Join(s.Dir, "passwd.fingerprints")
	kept, err := readEntries(hashPath, true)
	if err != nil {
		return nil, err
	}
	prints, err := readEntries(printPath, false)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	var todo []string
	for _, name := range schema.SortedKeys(passwords) {
		pw := passwords[name]
		h, ok := kept[name]
		switch {
		case !ok || !sameIterations(h, iterations):
			todo = append(todo, name)
		case prints[name] == fingerprint(h, pw):
			out[name] = h
		case passwd.Verify(h, pw):
			out[name] = h
		default:
			todo = append(todo, name)
		}
	}
	if err := hashAll(todo, passwords, iterations, out); err != nil {
		return nil, err
	}
	newPrints := map[string]string{}
	for name, h := range out {
		newPrints[name] = fingerprint(h, passwords[name])
	}
	if s.ReadOnly {
		return out, nil
	}
	file := out
	if len(keep) > 0 {
		file = maps.Clone(out)
		for _, name := range keep {
			if _, ok := passwords[name]; ok {
				continue
			}
			if h, ok := kept[name]; ok {
				file[name] = h
				if p, ok := prints[name]; ok {
					newPrints[name] = p
				}
			}
		}
	}
	if !maps.Equal(file, kept) || !maps.Equal(newPrints, prints) {
		if err := s.ensureDir("passwords"); err != nil {
			return nil, err
		}
		if err := writeEntries(hashPath, file); err != nil {
			return nil, err
		}
		if err := writeEntries(printPath, newPrints); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// hashAll hashes the passwords of names on every core.
func hashAll(names []string, passwords map[string]string, iterations int, out map[string]string) error {
	hashes := make([]string, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range work {
				hashes[i], errs[i] = passwd.Hash(passwords[names[i]], iterations)
			}
		})
	}
	for i := range names {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			return errs[i]
		}
		out[name] = hashes[i]
	}
	return nil
}

func fingerprint(hash, password string) string {
	sum := sha256.Sum256([]byte("mqttgen fingerprint\x00" + hash + "\x00" + password))
	return hex.EncodeToString(sum[:])
}

// readEntries reads name:value lines; hashes are checked as Mosquitto's.
func readEntries(path string, hashes bool) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if hashes {
		entries, err := passwd.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %v (delete it to hash anew)", path, err)
		}
		for _, e := range entries {
			out[e.User] = e.Hash
		}
		return out, nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok {
			out[name] = value
		}
	}
	return out, nil
}

func writeEntries(path string, m map[string]string) error {
	var entries []passwd.Entry
	for _, name := range schema.SortedKeys(m) {
		entries = append(entries, passwd.Entry{User: name, Hash: m[name]})
	}
	return atomicfile.Write(path, passwd.Format(entries), 0o600)
}

func sameIterations(h string, iterations int) bool {
	p, err := passwd.ParseHash(h)
	return err == nil && p.Kind == 7 && p.Iterations == iterations
}
