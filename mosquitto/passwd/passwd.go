// Package passwd reads, writes and verifies Mosquitto password files.
//
// Lines are "user:hash". mqttgen writes the $7$ form (PBKDF2-HMAC-SHA512 with
// a 12-byte salt and a 64-byte key, which both Mosquitto 2.0 and 2.1 read) and
// verifies the older $6$ form (SHA-512 of password and salt) too.
package passwd

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	saltLen = 12 // Mosquitto 2.0 refuses any other length, for $6$ and $7$ alike
	// LongSaltLen is the salt 2.1's mosquitto_passwd writes into $7$ hashes;
	// 2.1 reads it, 2.0 drops the user.
	LongSaltLen = 64
	keyLen      = 64
	// maxIterations is the largest count Mosquitto 2.0 reads (a C int).
	maxIterations = math.MaxInt32
)

// blanks are the characters C's isspace accepts, which Mosquitto trims.
const blanks = " \t\n\v\f\r"

// Hash returns a new $7$ hash of password with a random 12-byte salt and the
// given number of PBKDF2 iterations (1 to 2147483647).
func Hash(password string, iterations int) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return hash7(password, salt, iterations)
}

func hash7(password string, salt []byte, iterations int) (string, error) {
	if iterations < 1 || iterations > maxIterations {
		return "", fmt.Errorf("iterations must be from 1 to %d, not %d", maxIterations, iterations)
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, keyLen)
	if err != nil {
		return "", err
	}
	enc := base64.StdEncoding
	return fmt.Sprintf("$7$%d$%s$%s", iterations, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Parsed is a hash taken apart.
type Parsed struct {
	Kind       int    // 6 or 7
	Iterations int    // $7$ only
	Salt       []byte // 12 bytes (64 from ParseHash21)
	Key        []byte // always 64 bytes
}

// LongSalt reports whether the hash has 2.1's 64-byte salt, which
// Mosquitto 2.0 cannot read.
func (p Parsed) LongSalt() bool { return len(p.Salt) == LongSaltLen }

// ParseHash takes a $6$ or $7$ hash apart, refusing what Mosquitto 2.0 cannot
// read: a salt other than 12 bytes or a key other than 64 bytes (for both
// kinds; the broker drops such users with "Unable to decode password salt"),
// and an iteration count outside 1 to 2147483647.
func ParseHash(h string) (Parsed, error) {
	p, err := ParseHash21(h)
	if err == nil && p.LongSalt() {
		return Parsed{}, fmt.Errorf("salt must be %d bytes and hash %d bytes, as Mosquitto 2.0 requires (a %d-byte salt is Mosquitto 2.1's)", saltLen, keyLen, LongSaltLen)
	}
	return p, err
}

// ParseHash21 is ParseHash for Mosquitto 2.1, which also reads the 64-byte
// salts its mosquitto_passwd writes into $7$ hashes.
func ParseHash21(h string) (Parsed, error) {
	parts := strings.Split(h, "$")
	enc := base64.StdEncoding
	switch {
	case len(parts) == 5 && parts[0] == "" && parts[1] == "7":
		it, err := strconv.Atoi(parts[2])
		if err != nil || it < 1 || it > maxIterations {
			return Parsed{}, fmt.Errorf("bad iteration count %q", parts[2])
		}
		salt, err1 := enc.DecodeString(parts[3])
		key, err2 := enc.DecodeString(parts[4])
		if err1 != nil || err2 != nil {
			return Parsed{}, errors.New("salt or hash is not base64")
		}
		if (len(salt) != saltLen && len(salt) != LongSaltLen) || len(key) != keyLen {
			return Parsed{}, fmt.Errorf("salt must be %d bytes and hash %d bytes, as Mosquitto 2.0 requires", saltLen, keyLen)
		}
		return Parsed{Kind: 7, Iterations: it, Salt: salt, Key: key}, nil
	case len(parts) == 4 && parts[0] == "" && parts[1] == "6":
		salt, err1 := enc.DecodeString(parts[2])
		key, err2 := enc.DecodeString(parts[3])
		if err1 != nil || err2 != nil {
			return Parsed{}, errors.New("salt or hash is not base64")
		}
		if len(salt) != saltLen || len(key) != sha512.Size {
			return Parsed{}, fmt.Errorf("salt must be %d bytes and hash %d bytes, as Mosquitto 2.0 requires", saltLen, sha512.Size)
		}
		return Parsed{Kind: 6, Salt: salt, Key: key}, nil
	}
	return Parsed{}, errors.New("not a $6$ or $7$ hash")
}

// Verify reports whether password matches the hash h ($7$ or $6$, 2.1's
// 64-byte salts included). A hash ParseHash21 refuses matches no password.
func Verify(h, password string) bool {
	p, err := ParseHash21(h)
	if err != nil {
		return false
	}
	var key []byte
	switch p.Kind {
	case 7:
		key, err = pbkdf2.Key(sha512.New, password, p.Salt, p.Iterations, keyLen)
		if err != nil {
			return false
		}
	case 6:
		sum := sha512.Sum512(append([]byte(password), p.Salt...))
		key = sum[:]
	}
	return subtle.ConstantTimeCompare(key, p.Key) == 1
}

// Entry is one line of a password file.
type Entry struct {
	User, Hash string
}

// CheckUser reports why name cannot begin a password file line that
// Mosquitto reads back as exactly that user: ':' ends the name, a line break
// would start another entry, blanks at the edges are stripped.
func CheckUser(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case !utf8.ValidString(name):
		return fmt.Errorf("user name %q is not valid UTF-8", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == ':' || r >= 0x7f && r <= 0xa0 || unicode.IsSpace(r) }):
		return fmt.Errorf("user name %q holds ':', a space or a control character, which would end or change its passwd line", name)
	case len(name) > 65535:
		return fmt.Errorf("user name of %d bytes: MQTT allows at most 65535", len(name))
	}
	return nil
}

// Check reports the first entry Format cannot write so that Mosquitto reads
// it back as it is: a user name CheckUser refuses, a hash that is empty or
// holds white space or a control character (which would end or change its
// line), or a user twice. Writers call it before Format; whether a hash is
// one Mosquitto can verify is ParseHash's question.
func Check(entries []Entry) error {
	seen := map[string]bool{}
	for _, e := range entries {
		if err := CheckUser(e.User); err != nil {
			return err
		}
		if e.Hash == "" || strings.ContainsFunc(e.Hash, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			return fmt.Errorf("user %s: the hash %q is empty or holds a space or control character", e.User, e.Hash)
		}
		if seen[e.User] {
			return fmt.Errorf("user %s appears twice", e.User)
		}
		seen[e.User] = true
	}
	return nil
}

// Format writes entries as a password file, in the order given. It does not
// check them: Check does.
func Format(entries []Entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&b, "%s:%s\n", e.User, e.Hash)
	}
	return b.Bytes()
}

// Parse reads a password file. Every hash must be one Mosquitto 2.0 reads:
// the broker drops a user whose hash it cannot decode, with only a log line.
// It also refuses what Mosquitto would read otherwise than it looks: a user
// name with leading or trailing blanks (Mosquitto trims them), a line without
// ':' (Mosquitto skips it) and a second line for one user (Mosquitto ignores
// it). Empty lines and lines starting with '#' are skipped.
func Parse(r io.Reader) ([]Entry, error) { return parse(r, ParseHash) }

// Parse21 is Parse for Mosquitto 2.1: hashes may have 64-byte salts.
func Parse21(r io.Reader) ([]Entry, error) { return parse(r, ParseHash21) }

func parse(r io.Reader, parseHash func(string) (Parsed, error)) ([]Entry, error) {
	var out []Entry
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("line %d holds a NUL byte, where Mosquitto would end the line", n)
		}
		user, h, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if strings.Trim(user, blanks) != user {
			return nil, fmt.Errorf("line %d: user %q has leading or trailing blanks, which Mosquitto strips", n, user)
		}
		if _, err := parseHash(h); err != nil {
			return nil, fmt.Errorf("line %d: user %s: %v", n, user, err)
		}
		if seen[user] {
			return nil, fmt.Errorf("line %d: user %s appears twice", n, user)
		}
		seen[user] = true
		out = append(out, Entry{user, h})
	}
	return out, sc.Err()
}
