package importer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/schema"
)

// loaded is a setup with the files it names read: what the broker serves.
type loaded struct {
	*setup
	src *source
	// per listener, in the order of setup.listeners
	logins []map[string]string // user -> hash (or "plain:" + password); nil: any login accepted
	acls   []*acl.File         // nil: no acl file, everything allowed
	certs  []string            // digest of each TLS listener's certificate
	// passwdAt and aclAt say where each file's entries came from.
	passwdAt []string
	aclAt    []string
	// lines: for each passwd and acl file, the line of each user (its
	// first user line in an acl file), for home.cue's comments.
	lines map[string]map[string]int
	// directives are the lines read, in the broker's order.
	directives []conf.Directive
}

// load reads the configuration at src and every file it names.
func load(src *source) (*loaded, error) {
	ds, err := conf.ReadTree(src.conf, func(p string) string { return src.resolve(p, src.conf) })
	if err != nil {
		return nil, err
	}
	s, err := readSetup(ds)
	if err != nil {
		return nil, err
	}
	l := &loaded{setup: s, src: src, lines: map[string]map[string]int{}, directives: ds}
	cache := map[string]any{}
	// file reads the file a security option names once, however many
	// listeners name it, and finds each user's first line in it.
	file := func(name string, sec security, parse func(p string, data []byte) (any, error), user func(string) (string, bool)) (any, string, error) {
		d := sec.at[name]
		p := src.resolve(d.Value, d.File)
		if v, ok := cache[p]; ok {
			return v, p, nil
		}
		data, err := readFile(p, d.Pos())
		if err != nil {
			return nil, "", err
		}
		v, err := parse(p, data)
		if err != nil {
			return nil, "", err
		}
		cache[p] = v
		l.lines[p] = userLines(data, user)
		return v, p, nil
	}
	for _, ln := range s.listeners {
		sec := s.securityOf(ln)
		var logins map[string]string
		var at string
		if sec.passwordFile != "" {
			v, p, err := file("password_file", sec, func(p string, data []byte) (any, error) { return readPasswd(p, data) },
				func(line string) (string, bool) {
					u, _, ok := strings.Cut(line, ":")
					return u, ok && !strings.HasPrefix(line, "#")
				})
			if err != nil {
				return nil, err
			}
			logins, at = v.(map[string]string), p
		}
		var f *acl.File
		var aat string
		if sec.aclFile != "" {
			v, p, err := file("acl_file", sec, func(p string, data []byte) (any, error) {
				f, err := acl.Parse(bytes.NewReader(data))
				if err != nil {
					return nil, fmt.Errorf("%s:%s", p, strings.TrimPrefix(err.Error(), "line "))
				}
				return f, nil
			}, func(line string) (string, bool) {
				if w := strings.Fields(line); len(w) == 2 && w[0] == "user" {
					return w[1], true
				}
				return "", false
			})
			if err != nil {
				return nil, err
			}
			f, aat = v.(*acl.File), p
		}
		cert := ""
		if ln.tls() {
			d := ln.opts["certfile"]
			p := src.resolve(ln.certFile, d.File)
			data, err := readFile(p, d.Pos())
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(data)
			cert = hex.EncodeToString(sum[:8])
		}
		// mqttgen's own healthcheck login (rendered by mqttgen, never
		// declared in home.cue) is neither imported nor compared.
		delete(logins, schema.ProbeUser)
		if f != nil {
			f.Users = slices.DeleteFunc(f.Users, func(s acl.Section) bool { return s.User == schema.ProbeUser })
		}
		l.logins = append(l.logins, logins)
		l.acls = append(l.acls, f)
		l.certs = append(l.certs, cert)
		l.passwdAt = append(l.passwdAt, at)
		l.aclAt = append(l.aclAt, aat)
	}
	return l, nil
}

// userLines finds the first line of each user of a passwd or acl file
// (whose parsers checked the files already).
func userLines(data []byte, user func(string) (string, bool)) map[string]int {
	out := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		if u, ok := user(line); ok {
			if _, seen := out[u]; !seen {
				out[u] = i + 1
			}
		}
	}
	return out
}

// readPasswd reads a password file: every line a hash Mosquitto 2.1 reads,
// or (a file before `mosquitto_passwd -U`) every line a password in plain
// text. A file mixing the two is refused at its first odd line.
func readPasswd(p string, data []byte) (map[string]string, error) {
	plain, hashed := 0, 0
	firstPlain := 0
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		_, h, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want user:hash", p, i+1)
		}
		if strings.HasPrefix(h, "$") {
			hashed++
		} else {
			plain++
			if firstPlain == 0 {
				firstPlain = i + 1
			}
		}
	}
	out := map[string]string{}
	if plain > 0 && hashed == 0 {
		for i, line := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			u, pw, _ := strings.Cut(line, ":")
			if _, dup := out[u]; dup {
				return nil, fmt.Errorf("%s:%d: user %s appears twice", p, i+1, u)
			}
			out[u] = "plain:" + pw
		}
		return out, nil
	}
	if plain > 0 {
		return nil, fmt.Errorf("%s:%d: not a $6$ or $7$ hash, while other lines are hashes (a file of plain-text passwords is hashed on import only when no line is hashed)", p, firstPlain)
	}
	entries, err := passwd.Parse21(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s:%s", p, strings.TrimPrefix(err.Error(), "line "))
	}
	for _, e := range entries {
		out[e.User] = e.Hash
	}
	return out, nil
}

// facts are what a setup does, one statement per key, for comparison.
type facts map[string]string

// probes are topics every comparison asks about besides those the rules
// name: $SYS, a bridge's state topic, $share, and topics no rule names.
var probes = []string{
	"$SYS/broker/uptime", "$SYS/broker/load/bytes/received/1min", "$SYS/broker/clients/connected",
	"$SYS/broker/connection/probe/state", "$share/g/t", "probe", "probe/a/b", "a/b/c/d",
}

// topicsOf are concrete topics that exercise a filter: itself with each
// '+' made a level, and with '#' both its parent and a deeper topic.
func topicsOf(filter string) []string {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" {
			levels[i] = "p"
		}
	}
	if levels[len(levels)-1] == "#" {
		parent := levels[:len(levels)-1]
		out := []string{strings.Join(append(slices.Clone(parent), "p", "q"), "/")}
		if len(parent) > 0 {
			out = append(out, strings.Join(parent, "/"))
		}
		return out
	}
	return []string{strings.Join(levels, "/")}
}

// effective lists the facts of a loaded setup. topics are the topics to
// decide (both sides' rules); users every account either side knows.
func (l *loaded) effective(topics, users []string) facts {
	f := facts{}
	s := l.setup
	for i, ln := range s.listeners {
		k := "listener " + ln.name()
		f[k+": protocol"] = ln.protocol
		tls := "off"
		if ln.tls() {
			tls = "on, certificate " + l.certs[i]
			if ln.requireCert {
				tls += ", client certificates required"
			}
		}
		f[k+": TLS"] = tls
		sec := s.securityOf(ln)
		anon := sec.allowAnonymous != nil && *sec.allowAnonymous
		f[k+": anonymous clients"] = map[bool]string{true: "admitted", false: "refused"}[anon]
		f[k+": max_connections"] = fmt.Sprint(norm(ln.maxConn))
		who := append([]string{""}, users...)
		for _, u := range who {
			name := u
			login := ""
			switch {
			case u == "" && !anon:
				continue
			case u == "":
				name = "anonymous"
			case l.logins[i] == nil && !anon:
				// Observed on 2.0.11: without password_file and anonymous
				// clients refused, no client logs in (CONNACK 135).
				f[k+": login "+u] = "none"
				continue
			case l.logins[i] == nil:
				// Without password_file a client sending a username is
				// admitted with any password (observed on 2.0.11).
				login = "any password"
			default:
				h, ok := l.logins[i][u]
				if !ok {
					f[k+": login "+u] = "none"
					continue
				}
				login = h
			}
			if u != "" {
				f[k+": login "+u] = login
			}
			for _, t := range topics {
				t = strings.NewReplacer("%u", u, "%c", clientID(u)).Replace(t)
				for _, a := range []acl.Access{acl.Read, acl.Write} {
					f[fmt.Sprintf("%s: %s may %s %s", k, name, a, t)] = decide(l.acls[i], u, t, a)
				}
			}
		}
	}
	pers := "off"
	if s.persistence {
		pers = fmt.Sprintf("on, autosave every %ds", s.autosaveInterval)
	}
	f["persistence"] = pers
	f["max_packet_size"] = fmt.Sprint(effectivePacketLimit(s.maxPacket))
	f["max_queued_messages"] = fmt.Sprint(s.maxQueued)
	f["max_inflight_messages"] = fmt.Sprint(s.maxInflight)
	f["max_keepalive"] = fmt.Sprint(s.keepalive)
	f["persistent_client_expiration"] = fmt.Sprint(expirationSeconds(s.expiration))
	for _, b := range s.bridges {
		k := "bridge " + b.name
		f[k+": address"] = b.opts["address"]
		f[k+": remote_username"] = b.opts["remote_username"]
		f[k+": remote_password"] = digest(b.opts["remote_password"])
		f[k+": topics"] = strings.Join(normTopics(b.topics), "; ")
		f[k+": clean session"] = fmt.Sprint(b.opts["cleansession"] == "true")
		f[k+": protocol"] = map[bool]string{true: b.opts["bridge_protocol_version"], false: "mqttv311"}[b.opts["bridge_protocol_version"] != ""]
		_, ca := b.opts["bridge_cafile"]
		_, capath := b.opts["bridge_capath"]
		f[k+": TLS"] = fmt.Sprint(ca || capath)
	}
	return f
}

func clientID(u string) string { return "probe-" + u }

func norm(maxConn int) int {
	if maxConn <= 0 {
		return -1
	}
	return maxConn
}

func digest(s string) string {
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256 " + hex.EncodeToString(sum[:6])
}

// normTopics spells bridge topic lines in full: "PATTERN DIRECTION QOS
// [LOCAL REMOTE]", defaults written out.
func normTopics(lines []string) []string {
	var out []string
	for _, t := range lines {
		f := strings.Fields(t)
		for len(f) < 3 {
			f = append(f, map[int]string{1: "out", 2: "0"}[len(f)])
		}
		for i := 3; i < len(f); i++ {
			if f[i] == `""` {
				f[i] = ""
			}
		}
		for len(f) > 3 && f[len(f)-1] == "" {
			f = f[:len(f)-1]
		}
		out = append(out, strings.Join(f, " "))
	}
	slices.Sort(out)
	return out
}

func decide(f *acl.File, user, topic string, a acl.Access) string {
	allowed := false
	if f == nil {
		allowed = (&acl.File{Anonymous: allRules, Users: []acl.Section{{User: user, Rules: allRules}}}).Check(acl.Client{Username: user, ClientID: clientID(user)}, topic, a)
	} else {
		allowed = f.Check(acl.Client{Username: user, ClientID: clientID(user)}, topic, a)
	}
	return map[bool]string{true: "allowed", false: "denied"}[allowed]
}

// allRules are what a setup without acl_file grants every client.
var allRules = []acl.Rule{{Access: acl.ReadWrite, Topic: "#"}, {Access: acl.ReadWrite, Topic: "$SYS/#"}}

// expirationSeconds reads persistent_client_expiration as Mosquitto does.
func expirationSeconds(v string) int {
	if v == "" {
		return 0
	}
	n := atoi(v)
	mult := map[byte]int{'h': 3600, 'd': 86400, 'w': 7 * 86400, 'm': 30 * 86400, 'y': 365 * 86400}[v[len(v)-1]]
	return n * mult
}

// topicSet gathers the topics to decide: every filter of both sides' acl
// files (patterns with their placeholders kept) made concrete, and probes.
func topicSet(sides ...*loaded) []string {
	set := map[string]bool{}
	for _, p := range probes {
		set[p] = true
	}
	for _, l := range sides {
		for _, f := range l.acls {
			if f == nil {
				continue
			}
			var rules []acl.Rule
			rules = append(rules, f.Anonymous...)
			rules = append(rules, f.Patterns...)
			for _, s := range f.Users {
				rules = append(rules, s.Rules...)
			}
			for _, r := range rules {
				for _, t := range topicsOf(r.Topic) {
					set[t] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// usersOf lists every account of both sides, sorted.
func usersOf(sides ...*loaded) []string {
	set := map[string]bool{}
	for _, l := range sides {
		for _, m := range l.logins {
			for u := range m {
				set[u] = true
			}
		}
		for _, f := range l.acls {
			if f != nil {
				for _, s := range f.Users {
					set[s.User] = true
				}
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Difference is one fact the new home does otherwise than the original.
type Difference struct {
	What, Original, New string
}

func (d Difference) String() string {
	return fmt.Sprintf("%s: was %s, now %s", d.What, orNone(d.Original), orNone(d.New))
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	if strings.HasPrefix(s, "$") || strings.HasPrefix(s, "plain:") {
		return "a password hash"
	}
	return s
}

// compare lists the facts that differ, sorted. A login whose original is
// a plain-text password matches a hash of it.
func compare(orig, now facts) []Difference {
	var out []Difference
	keys := map[string]bool{}
	for k := range orig {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	for k := range keys {
		a, b := orig[k], now[k]
		if a == b {
			continue
		}
		if pw, ok := strings.CutPrefix(a, "plain:"); ok && passwd.Verify(b, pw) {
			continue
		}
		if strings.HasPrefix(a, "$") && strings.HasPrefix(b, "$") {
			a, b = "hash "+short(a), "hash "+short(b)
		}
		out = append(out, Difference{What: k, Original: a, New: b})
	}
	slices.SortFunc(out, func(x, y Difference) int { return strings.Compare(x.What, y.What) })
	return out
}

func short(h string) string {
	sum := sha256.Sum256([]byte(h))
	return hex.EncodeToString(sum[:4])
}

// effectivePacketLimit is the limit the proof compares: a setup without one
// gets mqttgen's default, which the report names as tightened, not as a
// difference.
func effectivePacketLimit(n int) int {
	if n == 0 || n > 255*1024*1024 {
		return schema.DefaultMaxPacketSize
	}
	return n
}
