package backup

import (
	"archive/tar"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Secrets are encrypted with AES-256-GCM under a key derived from a
// passphrase with PBKDF2-HMAC-SHA256: both in Go's standard library, which
// is what this module may use (age's scrypt and ChaCha20-Poly1305 live in
// golang.org/x/crypto, which is not among its dependencies). 600,000
// iterations is OWASP's figure for PBKDF2-HMAC-SHA256 (2023).
const (
	secretsCipher     = "AES-256-GCM"
	secretsKDF        = "PBKDF2-HMAC-SHA256"
	secretsIterations = 600_000
	// maxSecretsIterations leaves room for a future, higher count.
	maxSecretsIterations = 10 * secretsIterations
	// MinPassphrase is the shortest passphrase backup accepts.
	MinPassphrase = 12
)

// SecretsInfo describes secrets.enc: how to derive its key, and which
// entries it holds (names only).
type SecretsInfo struct {
	Cipher     string   `json:"cipher"`
	KDF        string   `json:"kdf"`
	Iterations int      `json:"iterations"`
	Salt       string   `json:"salt"`
	Nonce      string   `json:"nonce"`
	Entries    []string `json:"entries"`
}

// ErrPassphrase says the passphrase does not open the archive's secrets.
var ErrPassphrase = errors.New("the passphrase does not open the archive's secrets (or secrets.enc was altered)")

// CheckPassphrase refuses a passphrase too short to protect secrets.
func CheckPassphrase(p string) error {
	if n := utf8.RuneCountInString(p); n < MinPassphrase {
		return fmt.Errorf("the passphrase has %d characters; at least %d protect an archive that may be copied anywhere", n, MinPassphrase)
	}
	return nil
}

// additionalData binds secrets.enc to its archive: the secrets of one
// archive do not open inside another.
func additionalData(project string, created time.Time) []byte {
	return []byte(fmt.Sprintf("%s %d secrets\x00%s\x00%s", Format, Version, project, created.UTC().Format(time.RFC3339Nano)))
}

func secretsKey(passphrase string, salt []byte, iterations int) (cipher.AEAD, error) {
	key, err := pbkdf2.Key(sha256.New, passphrase, salt, iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts files (a tar of them) for the archive of project made at
// created.
func seal(files []File, passphrase, project string, created time.Time) (*SecretsInfo, []byte, error) {
	if err := CheckPassphrase(passphrase); err != nil {
		return nil, nil, err
	}
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	info := &SecretsInfo{Cipher: secretsCipher, KDF: secretsKDF, Iterations: secretsIterations}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: int64(f.Mode.Perm()), Uid: f.UID, Gid: f.GID, Size: int64(len(f.Data)), ModTime: created}); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, nil, err
		}
		info.Entries = append(info.Entries, f.Path)
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	salt := make([]byte, 16)
	nonce := make([]byte, 12)
	rand.Read(salt)
	rand.Read(nonce)
	aead, err := secretsKey(passphrase, salt, secretsIterations)
	if err != nil {
		return nil, nil, err
	}
	info.Salt = base64.StdEncoding.EncodeToString(salt)
	info.Nonce = base64.StdEncoding.EncodeToString(nonce)
	return info, aead.Seal(nil, nonce, plain.Bytes(), additionalData(project, created)), nil
}

// Secrets decrypts the archive's secrets.enc. An archive without secrets
// returns none.
func (a *Archive) Secrets(passphrase string) ([]File, error) {
	info := a.Manifest.Secrets
	blob := a.File(SecretsName)
	if info == nil || blob == nil {
		return nil, nil
	}
	if info.Cipher != secretsCipher || info.KDF != secretsKDF || info.Iterations < 1 {
		return nil, fmt.Errorf("%s: unknown cipher %s / %s", SecretsName, info.Cipher, info.KDF)
	}
	if info.Iterations > maxSecretsIterations {
		// A tampered manifest must not make restore derive a key for hours.
		return nil, fmt.Errorf("%s: %d PBKDF2 iterations, more than mqttgen ever writes (%d)", SecretsName, info.Iterations, secretsIterations)
	}
	salt, err1 := base64.StdEncoding.DecodeString(info.Salt)
	nonce, err2 := base64.StdEncoding.DecodeString(info.Nonce)
	if err1 != nil || err2 != nil || len(nonce) != 12 {
		return nil, fmt.Errorf("%s: bad salt or nonce in the manifest", SecretsName)
	}
	aead, err := secretsKey(passphrase, salt, info.Iterations)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, blob.Data, additionalData(a.Manifest.Project, a.Manifest.Created))
	if err != nil {
		return nil, ErrPassphrase
	}
	var out []File
	tr := tar.NewReader(bytes.NewReader(plain))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", SecretsName, err)
		}
		if !secretPath(hdr.Name) || hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%s: entry %q is not a file a backup keeps there", SecretsName, hdr.Name)
		}
		data, err := io.ReadAll(io.LimitReader(tr, MaxOtherEntry+1))
		if err != nil {
			return nil, err
		}
		if len(data) > MaxOtherEntry {
			return nil, fmt.Errorf("%s: entry %s has more than the %s an archive entry may hold", SecretsName, hdr.Name, sizeString(MaxOtherEntry))
		}
		out = append(out, File{Path: hdr.Name, Mode: fs.FileMode(hdr.Mode).Perm(), UID: hdr.Uid, GID: hdr.Gid, ModTime: hdr.ModTime, Data: data})
	}
	return out, nil
}

// secretPath says p may be an entry of secrets.enc (see Create and
// readState): a config file (a key, a mosquitto.conf with its bridge
// passwords), the state directory's private keys, or a generated password.
func secretPath(p string) bool {
	switch {
	case !validPath(p) || p == SecretsName:
		return false
	case strings.HasPrefix(p, ConfigPrefix):
		return true
	case p == StatePrefix+"certs/ca.key" || p == StatePrefix+"certs/server.key":
		return true
	}
	name, ok := strings.CutPrefix(p, StatePrefix+"passwords/")
	return ok && !strings.Contains(name, "/") && !strings.HasPrefix(name, ".")
}

// PassphraseEnv names the environment variable that may hold the
// passphrase (for scheduled backups, set it in the service's environment
// file, not on a command line).
const PassphraseEnv = "MQTTGEN_BACKUP_PASSPHRASE"

// maxPassphraseFile bounds what is read of a passphrase file.
const maxPassphraseFile = 64 << 10

// ReadPassphrase reads a passphrase from the first line of file, else from
// $MQTTGEN_BACKUP_PASSPHRASE; "" when there is neither.
//
// Like ssh with a private key, it refuses a file of the user's own that
// others may read or write (mode & 077): a passphrase others can read no
// longer protects the archives it opens. Only regular files are checked
// (not /dev/stdin or a pipe), and only the user's own (root reading
// another user's file is that user's choice, as in ssh).
func ReadPassphrase(file string) (string, error) {
	if file == "" {
		return os.Getenv(PassphraseEnv), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) == os.Geteuid() {
			return "", fmt.Errorf("passphrase file %s is open to others (mode %04o): it must be readable by its owner only, as ssh requires of private keys; run chmod 600 %s", file, st.Mode().Perm(), file)
		}
	}
	// The first line is all that counts: a passphrase file is not a place
	// for megabytes.
	data, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile))
	if err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}
