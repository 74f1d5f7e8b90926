package broker

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

// security is one set of rules: the global one, or a listener's own with
// per_listener_settings.
type security struct {
	anonymous bool
	// users maps usernames to hashes; nil when there is no password_file.
	users map[string]string
	// acl is nil when there is no acl_file: then every client may read and
	// write every topic, as in Mosquitto.
	acl *acl.File
}

// securityState is the rules of every listener, swapped whole on reload.
type securityState struct {
	byListener map[string]*security
}

// loadSecurity reads the password and acl files of every listener. Any
// error fails the whole load, so that a reload never runs on half of the
// new rules.
func loadSecurity(c *conf.Config) (*securityState, error) {
	passwds := map[string]map[string]string{}
	acls := map[string]*acl.File{}
	build := func(s conf.Security) (*security, error) {
		sec := &security{anonymous: s.Anonymous()}
		if p := s.PasswordFile; p != "" {
			users, ok := passwds[p]
			if !ok {
				var err error
				if users, err = readPasswd(p); err != nil {
					return nil, err
				}
				passwds[p] = users
			}
			sec.users = users
		}
		if p := s.ACLFile; p != "" {
			f, ok := acls[p]
			if !ok {
				var err error
				if f, err = readACL(p); err != nil {
					return nil, err
				}
				acls[p] = f
			}
			sec.acl = f
		}
		return sec, nil
	}
	st := &securityState{byListener: map[string]*security{}}
	var global *security
	for _, l := range c.Listeners {
		if !c.PerListenerSettings && global != nil {
			st.byListener[l.ID()] = global
			continue
		}
		sec, err := build(c.SecurityFor(l))
		if err != nil {
			return nil, err
		}
		if !c.PerListenerSettings {
			global = sec
		}
		st.byListener[l.ID()] = sec
	}
	return st, nil
}

func readPasswd(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("password_file: %w", err)
	}
	defer f.Close()
	entries, err := passwd.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("password_file %s: %w", path, err)
	}
	users := make(map[string]string, len(entries))
	for _, e := range entries {
		users[e.User] = e.Hash
	}
	return users, nil
}

func readACL(path string) (*acl.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("acl_file: %w", err)
	}
	defer f.Close()
	file, err := acl.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("acl_file %s: %w", path, err)
	}
	return file, nil
}

// authenticate decides a CONNECT as Mosquitto 2.0 does: no username is
// anonymous; a username must be in the password file with a password that
// verifies; without a password file any username is admitted.
func (s *security) authenticate(cache *verifyCache, hasUser bool, username string, hasPassword bool, password string) bool {
	if !hasUser {
		return s.anonymous
	}
	if s.users == nil {
		return true
	}
	hash, ok := s.users[username]
	if !ok || !hasPassword {
		return false
	}
	return cache.verify(username, hash, password)
}

// canRead reports whether client c may receive a message on topic.
func (s *security) canRead(c acl.Client, topic string) bool {
	if topic == "" {
		return false
	}
	if s.acl == nil {
		return true
	}
	return s.acl.Check(c, topic, acl.Read)
}

// canWrite reports whether client c may publish to topic. Publishing to
// $SYS is refused even without an acl file.
func (s *security) canWrite(c acl.Client, topic string) bool {
	if topic == "" {
		return false
	}
	if s.acl == nil {
		return !strings.HasPrefix(topic, "$SYS")
	}
	return s.acl.Check(c, topic, acl.Write)
}

// verifyCache remembers passwords that verified, so that a client
// reconnecting with the same password does not cost a PBKDF2 run each time.
// Entries are HMAC-SHA256 digests under a key drawn at start, over the
// username, the stored hash and the password, each length-prefixed: the
// cache holds no password, a changed hash (rotation, reload) never matches
// an old entry, and a digest cannot be computed without the process's key.
// Only successes are cached, so guessing is as slow as without the cache.
type verifyCache struct {
	key [32]byte
	mu  sync.Mutex
	ok  map[[32]byte]struct{}
	max int
	// verify is passwd.Verify; tests count calls.
	verifyFn func(hash, password string) bool
}

func newVerifyCache() *verifyCache {
	c := &verifyCache{ok: map[[32]byte]struct{}{}, max: 4096, verifyFn: passwd.Verify}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return c
}

func (c *verifyCache) digest(user, hash, password string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	var n [8]byte
	for _, s := range []string{user, hash, password} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	var d [32]byte
	copy(d[:], m.Sum(nil))
	return d
}

func (c *verifyCache) verify(user, hash, password string) bool {
	d := c.digest(user, hash, password)
	c.mu.Lock()
	_, hit := c.ok[d]
	c.mu.Unlock()
	if hit {
		return true
	}
	if !c.verifyFn(hash, password) {
		return false
	}
	c.mu.Lock()
	if len(c.ok) >= c.max {
		// Forget an arbitrary entry: map order is random enough here.
		for k := range c.ok {
			delete(c.ok, k)
			break
		}
	}
	c.ok[d] = struct{}{}
	c.mu.Unlock()
	return true
}
