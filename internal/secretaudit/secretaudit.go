// Package secretaudit finds a home's secrets where they must not be. Tests
// collect every secret a home has (passwords, password hashes, private
// keys, passwords from the environment) and search every output, log,
// label, process argument and shareable file for each.
package secretaudit

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Secret is one value that must not appear, and what it is.
type Secret struct {
	What  string
	Value string
}

// Set is the secrets searched for.
type Set []Secret

// minLen is the shortest value searched for: shorter ones would be found
// by chance.
const minLen = 8

// Add adds a secret (ignored when shorter than 8 bytes).
func (s *Set) Add(what, value string) {
	value = strings.TrimSpace(value)
	if len(value) >= minLen {
		*s = append(*s, Secret{what, value})
	}
}

// AddPEMKey adds a private key: each line of its base64 body, since a
// key may be shown in part, re-wrapped, or in JSON with escaped newlines.
func (s *Set) AddPEMKey(what string, data []byte) {
	for rest := data; ; {
		b, r := pem.Decode(rest)
		if b == nil {
			return
		}
		rest = r
		if !strings.Contains(b.Type, "PRIVATE KEY") {
			continue
		}
		for i, line := range strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})), "\n") {
			if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
				s.Add(fmt.Sprintf("%s (line %d of the key)", what, i+1), line)
			}
		}
	}
}

// AddPasswd adds the hashes of a passwd or passwd.hashes file (user:hash
// lines): the whole hash and its salt and key.
func (s *Set) AddPasswd(what string, data []byte) {
	for _, line := range strings.Split(string(data), "\n") {
		user, hash, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		s.Add(fmt.Sprintf("%s: hash of %s", what, user), hash)
		for _, part := range strings.Split(hash, "$") {
			if len(part) >= 16 {
				s.Add(fmt.Sprintf("%s: part of the hash of %s", what, user), part)
			}
		}
	}
}

// FromState collects the secrets of a state directory: generated
// passwords, kept hashes and fingerprints, private keys.
func FromState(dir string) (Set, error) {
	var s Set
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case strings.HasPrefix(rel, "passwords/"):
			s.Add("the password of "+strings.TrimPrefix(rel, "passwords/"), string(data))
		case rel == "passwd.hashes":
			s.AddPasswd(rel, data)
		case rel == "passwd.fingerprints":
			// SHA-256 of hash and password: a stand-in for both.
			s.AddPasswd(rel, data)
		case bytes.Contains(data, []byte("PRIVATE KEY-----")):
			s.AddPEMKey(rel, data)
		}
		return nil
	})
	return s, err
}

// base64Run is a run of base64 that may be encoded data (a []byte in
// JSON is base64: a saved plan held files so).
var base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{24,}={0,2}`)

// Find returns a line per secret data holds, naming where; data is also
// searched inside what its base64 runs decode to.
func (s Set) Find(where string, data []byte) []string {
	out := s.find(where, data)
	for _, run := range base64Run.FindAll(data, -1) {
		if dec, err := base64.StdEncoding.DecodeString(string(run)); err == nil {
			out = append(out, s.find(where+" (base64)", dec)...)
		}
	}
	return out
}

func (s Set) find(where string, data []byte) []string {
	var out []string
	for _, sec := range s {
		if bytes.Contains(data, []byte(sec.Value)) || bytes.Contains(data, []byte(jsonEscaped(sec.Value))) {
			out = append(out, fmt.Sprintf("%s holds %s", where, sec.What))
		}
	}
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		out = append(out, where+" holds a PEM private key")
	}
	return out
}

// jsonEscaped is v as encoding/json writes it inside a string.
func jsonEscaped(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "<", `\u003c`, ">", `\u003e`, "&", `\u0026`)
	return r.Replace(v)
}
