package importer

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/mosquitto/version"
	"github.com/mqttgen/mqttgen/schema"
)

// Kind says what import did with an option.
type Kind int

const (
	// Translated: carried over in mqttgen's terms, with the same meaning.
	Translated Kind = iota
	// Dropped: not carried, without a change of behaviour (a default, or an
	// option the broker itself would refuse to start with).
	Dropped
	// Lost: not expressible in home.cue; the new home behaves otherwise.
	Lost
	// Tightened: the original leaves a limit off that mqttgen always sets
	// (docs/security.md); the new home refuses what only an attacker sends,
	// so this is reported, not a loss.
	Tightened
)

func (k Kind) String() string { return [...]string{"translated", "dropped", "lost", "tightened"}[k] }

// Note is what import did with one line of the original setup.
type Note struct {
	Pos    string // file:line
	Option string // the line, or its option
	Kind   Kind
	Action string
}

func (n Note) String() string {
	return fmt.Sprintf("%s: %s: %s: %s", n.Pos, n.Option, n.Kind, n.Action)
}

type translator struct {
	l     *loaded
	out   string // the folder home.cue goes to
	w     *cueWriter
	notes []Note
	// state files to write, relative to the state directory
	hashes    map[string]string
	passwords map[string]string
	bridgePW  map[string]string

	anonAllowed bool
	anonPos     string
	// relPaths are the files home.cue names relative to out.
	relPaths []string
}

func (t *translator) note(d conf.Directive, kind Kind, format string, args ...any) {
	opt := strings.TrimSpace(d.Key + " " + d.Value)
	if conf.Secret(d.Key) {
		opt = d.Key + " ***" // the report is shareable: no secret in it
	}
	t.notes = append(t.notes, Note{Pos: t.rel(d.Pos()), Option: opt, Kind: kind, Action: fmt.Sprintf(format, args...)})
}

func (t *translator) rel(p string) string { return relTo(t.w.base, p) }

var (
	nameRE     = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	userNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.@-]*$`)
)

// harmless are options whose value only places files or names the process:
// mqttgen decides those itself.
var harmless = map[string]string{
	"user":                 "the image runs the broker as its own user",
	"pid_file":             "the container needs none",
	"persistence_location": "mqttgen keeps the database in its data volume (copy mosquitto.db there to keep retained messages and sessions)",
	"persistence_file":     "mqttgen keeps the database in its data volume under its default name",
	"log_timestamp_format": "mqttgen writes ISO 8601 timestamps",
	"include_dir":          "its files were read in place",
}

func (t *translator) translate() {
	s := t.l.setup
	w := t.w
	w.line(0, "package home")
	w.blank()
	if c := t.l.src.compose; c != nil && c.image != "" {
		pos := fmt.Sprintf("%s:%d", c.file, c.imageAt)
		w.line(0, "broker: image: "+str(c.image), pos)
		if _, named := version.FromImage(c.image); !named {
			// The release decides mosquitto.conf's dialect; an image such
			// as :latest runs today's newest.
			newest, _ := version.FromImage(schema.DefaultMosquittoImage)
			w.line(0, "broker: version: "+str(newest.String()), pos)
			t.notes = append(t.notes, Note{Pos: t.rel(pos), Option: "image " + c.image, Kind: Translated,
				Action: fmt.Sprintf("its tag names no Mosquitto release, which decides the dialect of mosquitto.conf: the new home says version %q, the newest today; set broker.version to the release the image runs", newest)})
		}
	}
	if c := t.l.src.compose; c != nil {
		for _, v := range c.volumes {
			pos := t.rel(fmt.Sprintf("%s:%d", c.file, v.line))
			what := "mqttgen mounts its own: the certificates it names are copied into the rendered config"
			switch v.target {
			case "/mosquitto/data":
				what = "mqttgen keeps the data in its own volume: copy mosquitto.db into it to keep retained messages and sessions"
			case "/mosquitto/log":
				what = "mqttgen keeps the log in its own volume"
			}
			t.notes = append(t.notes, Note{Pos: pos, Option: "volume " + v.spec, Kind: Dropped, Action: what})
		}
	}
	t.listeners()
	t.accounts()
	t.settings()
	t.bridges()
	if s.hasPort {
		t.note(s.dflt.at, Translated, "deprecated: listener %d", s.dflt.port)
	}
	for _, d := range s.dfltBy {
		if !s.hasPort {
			t.note(d, Translated, "given before any listener, it makes Mosquitto 2.0 open a listener on port 1883, all addresses, as well: so does the new home")
		}
	}
	if s.dflt.at.File == "" && len(s.dfltBy) == 0 && slices.Contains(s.listeners, s.dflt) {
		t.notes = append(t.notes, Note{Pos: t.rel(t.l.src.conf), Option: "no listener", Kind: Translated, Action: "Mosquitto 2.0 listens on 127.0.0.1:1883 alone and admits anonymous clients there: so does the new home"})
	}
	if d, ok := s.dflt.opts["bind_address"]; ok {
		t.note(d, Translated, "deprecated: the listener's bind")
	}
	for _, d := range s.rest {
		t.other(d)
	}
}

func listenerName(l *listener) string {
	switch {
	case l.protocol == "websockets" && l.tls():
		return "wss"
	case l.protocol == "websockets":
		return "websockets"
	case l.tls():
		return "mqtts"
	}
	return "mqtt"
}

func (t *translator) listeners() {
	s := t.l.setup
	w := t.w
	names := map[string]int{}
	for _, l := range s.listeners {
		names[listenerName(l)]++
	}
	anyAnon := func(l *listener) bool {
		sec := s.securityOf(l)
		return sec.allowAnonymous != nil && *sec.allowAnonymous
	}
	globalAnon := anyAnon(s.listeners[0])
	if !s.perListener {
		globalAnon = s.global.allowAnonymous != nil && *s.global.allowAnonymous
	}
	published := map[int]composePort{}
	if c := t.l.src.compose; c != nil {
		for _, p := range c.ports {
			published[p.container] = p
		}
	}
	var tlsL *listener
	maxConn := map[int]bool{}
	w.blank()
	for _, l := range s.listeners {
		name := listenerName(l)
		if names[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, l.port)
		}
		at := ""
		if l.at.File != "" {
			at = l.at.Pos()
		}
		w.line(0, fmt.Sprintf("listeners: %s: {", label(name)), at)
		w.line(1, fmt.Sprintf("port: %d", l.port))
		bind := l.bind
		if p, ok := published[l.port]; ok {
			pos := fmt.Sprintf("%s:%d", t.l.src.compose.file, p.line)
			if p.host != p.container {
				t.notes = append(t.notes, Note{Pos: t.rel(pos), Option: "ports " + p.spec, Kind: Lost, Action: fmt.Sprintf("mqttgen publishes each listener on its own port: clients must use %d instead of %d", p.container, p.host)})
			}
			if p.hostIP != "" && bind == "" {
				bind = p.hostIP
				w.line(1, "bind: "+str(bind), pos)
				bind = ""
			}
			delete(published, l.port)
		} else if c := t.l.src.compose; c != nil {
			t.notes = append(t.notes, Note{Pos: t.rel(l.at.Pos()), Option: "listener " + l.name(), Kind: Translated, Action: "not published by the compose file: mqttgen publishes every listener"})
		}
		if bind != "" {
			at := l.at.Pos()
			if d, ok := l.opts["bind_address"]; ok {
				at = d.Pos()
			}
			w.line(1, "bind: "+str(bind), at)
		}
		if l.protocol == "websockets" {
			w.line(1, `protocol: "websockets"`, l.opts["protocol"].Pos())
		} else if l.protocol != "mqtt" {
			t.note(l.opts["protocol"], Lost, "mqttgen serves mqtt and websockets only")
		}
		if l.tls() {
			w.line(1, "tls: true", l.opts["certfile"].Pos())
			if tlsL == nil {
				tlsL = l
			} else {
				if l.certFile != tlsL.certFile || l.keyFile != tlsL.keyFile {
					t.note(l.opts["certfile"], Lost, "mqttgen serves one certificate on every TLS listener: this listener now serves %s", tlsL.certFile)
				}
				if l.requireCert != tlsL.requireCert || l.caFile != tlsL.caFile || l.tlsVersion != tlsL.tlsVersion {
					t.note(l.opts["certfile"], Lost, "mqttgen has one TLS setting for every listener: this listener now has those of listener %s", tlsL.name())
				}
			}
		}
		if s.perListener && anyAnon(l) != globalAnon {
			w.line(1, fmt.Sprintf("anonymous: %v", anyAnon(l)), l.sec.at["allow_anonymous"].Pos())
		}
		w.line(0, "}")
		maxConn[norm(l.maxConn)] = true
		for _, k := range slices.Sorted(maps.Keys(l.opts)) {
			switch k {
			case "protocol", "certfile", "keyfile", "cafile", "require_certificate", "tls_version", "max_connections", "bind_address":
			default:
				t.other(l.opts[k])
			}
		}
		if d, ok := l.opts["cafile"]; ok && !l.requireCert {
			t.note(d, Dropped, "without require_certificate true the broker checks no client certificate: no effect")
		}
	}
	for _, p := range published {
		t.notes = append(t.notes, Note{Pos: t.rel(fmt.Sprintf("%s:%d", t.l.src.compose.file, p.line)), Option: "ports " + p.spec, Kind: Dropped, Action: fmt.Sprintf("no listener on port %d: nothing answered there", p.container)})
	}
	if len(maxConn) == 1 {
		for n := range maxConn {
			if n != -1 {
				w.line(0, fmt.Sprintf("limits: max_connections: %d", n), t.firstOpt("max_connections"))
			}
		}
	} else {
		for _, l := range s.listeners {
			if d, ok := l.opts["max_connections"]; ok {
				t.note(d, Lost, "mqttgen sets one max_connections for every listener; the listeners here differ, so none is set")
			}
		}
	}
	if tlsL != nil {
		w.blank()
		w.line(0, "tls: {", tlsL.opts["certfile"].Pos())
		w.line(1, "cert_file: "+str(t.path(tlsL.certFile, tlsL.opts["certfile"])), tlsL.opts["certfile"].Pos())
		w.line(1, "key_file: "+str(t.path(tlsL.keyFile, tlsL.opts["keyfile"])), tlsL.opts["keyfile"].Pos())
		switch v := tlsL.tlsVersion; v {
		case "tlsv1.3":
			w.line(1, `min_version: "tlsv1.3"`, tlsL.opts["tls_version"].Pos())
		case "tlsv1.2":
		case "":
			t.notes = append(t.notes, Note{Pos: t.rel(tlsL.opts["certfile"].Pos()), Option: "listener " + tlsL.name() + " without tls_version", Kind: Translated, Action: "Mosquitto 2.0 also accepted TLS 1.1; mqttgen accepts TLS 1.2 and 1.3"})
		default:
			t.note(tlsL.opts["tls_version"], Translated, "TLS before 1.2 is no longer accepted")
		}
		if tlsL.requireCert {
			w.line(1, "require_client_certificate: true", tlsL.opts["require_certificate"].Pos())
			if tlsL.caFile != "" {
				w.line(1, "ca_file: "+str(t.path(tlsL.caFile, tlsL.opts["cafile"])), tlsL.opts["cafile"].Pos())
			}
		}
		w.line(0, "}")
	}
	w.blank()
	pos := ""
	if d, ok := s.global.at["allow_anonymous"]; ok {
		pos = d.Pos()
	}
	t.anonAllowed = globalAnon
	t.anonPos = pos
}

func (t *translator) firstOpt(key string) string {
	for _, l := range t.l.setup.listeners {
		if d, ok := l.opts[key]; ok {
			return d.Pos()
		}
	}
	return ""
}

// path is a file the setup names, as home.cue names it: relative to the
// home's folder where it can be.
func (t *translator) path(p string, d conf.Directive) string {
	h := t.l.src.resolve(p, d.File)
	abs, err := filepath.Abs(h)
	if err != nil {
		return h
	}
	outAbs, _ := filepath.Abs(t.out)
	if r, err := filepath.Rel(outAbs, abs); err == nil && !strings.HasPrefix(r, "../..") {
		t.relPaths = append(t.relPaths, filepath.ToSlash(r))
		return filepath.ToSlash(r)
	}
	return abs
}

func ruleStrings(rules []acl.Rule) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.String()
	}
	return out
}

func (t *translator) accounts() {
	w := t.w
	l := t.l
	// One password file and one acl file for the home: the first listener's,
	// with the others merged where they agree.
	logins := map[string]string{}
	var loginAt string
	var f *acl.File
	var aclAt string
	noPasswd := false
	for i, ln := range l.setup.listeners {
		sec := l.setup.securityOf(ln)
		if l.logins[i] == nil && sec.allowAnonymous != nil && *sec.allowAnonymous {
			noPasswd = true
		}
		for u, h := range l.logins[i] {
			if old, ok := logins[u]; ok && old != h {
				t.note(sec.at["password_file"], Lost, "user %s has another password in %s: the first is kept", u, t.rel(loginAt))
				continue
			}
			logins[u] = h
		}
		if loginAt == "" {
			loginAt = l.passwdAt[i]
		}
		for j, other := range l.logins {
			if j == i || other == nil || l.logins[i] == nil {
				continue
			}
			for u := range l.logins[i] {
				if _, ok := other[u]; !ok {
					t.note(sec.at["password_file"], Lost, "user %s logs in on listener %s only; mqttgen has one password file, so it now logs in on listener %s too", u, ln.name(), l.setup.listeners[j].name())
				}
			}
		}
		switch {
		case i == 0:
			f, aclAt = l.acls[i], l.aclAt[i]
		case (f == nil) != (l.acls[i] == nil) || (f != nil && string(f.Format()) != string(l.acls[i].Format())):
			t.note(sec.at["acl_file"], Lost, "mqttgen has one acl for every listener: the rules of %s are used on all", t.rel(aclAt))
		}
	}
	if noPasswd {
		d := l.setup.global.at["allow_anonymous"]
		if d.File == "" {
			d = conf.Directive{File: l.src.conf, Line: 1, Key: "password_file", Value: "(none)"}
		}
		t.note(d, Lost, "without password_file Mosquitto admits a client that sends a username with any password; mqttgen admits such clients only as its accounts (anonymous clients stay admitted)")
	}
	var anonRules, patterns []string
	rulesOf := map[string][]acl.Rule{}
	if f == nil {
		anonRules = ruleStrings(allRules)
		for u := range logins {
			rulesOf[u] = allRules
		}
		if len(logins) > 0 {
			t.notes = append(t.notes, Note{Pos: t.rel(l.src.conf), Option: "no acl_file", Kind: Translated, Action: "every client could read and write every topic: each account gets readwrite # and readwrite $SYS/#"})
		}
	} else {
		anonRules = ruleStrings(f.Anonymous)
		patterns = ruleStrings(f.Patterns)
		for _, sec := range f.Users {
			if _, ok := logins[sec.User]; !ok {
				t.notes = append(t.notes, Note{Pos: t.rel(aclAt), Option: "user " + sec.User, Kind: Dropped, Action: "no password for this user: it could not log in"})
				continue
			}
			rulesOf[sec.User] = sec.Rules
		}
	}
	w.line(0, "anonymous: {", t.anonPos)
	w.line(1, fmt.Sprintf("allowed: %v", t.anonAllowed))
	if len(anonRules) > 0 {
		w.line(1, "acl: "+list(anonRules), aclAt)
	}
	w.line(0, "}")
	if len(patterns) > 0 {
		w.line(0, "patterns: "+list(patterns), aclAt)
	}

	users := slices.Sorted(maps.Keys(logins))
	// Devices: every rule is a plain topic of <root>/<user>/<name>, one root.
	cfg := &schema.Config{Users: map[string]schema.User{}, Devices: map[string]schema.Device{}, DevicesTopic: "home"}
	devices := map[string]*schema.Device{}
	root := ""
	for _, u := range users {
		if r, d := asDevice(u, rulesOf[u]); d != nil && (root == "" || root == r) {
			root = r
			devices[u] = d
			cfg.Devices[u] = *d
		}
	}
	if root != "" {
		cfg.DevicesTopic = root
	}
	presets := map[string]string{}
	for _, round := range [][]string{{"tasmota", "zigbee2mqtt"}, {"homeassistant", "nodered"}} {
		for _, u := range users {
			if devices[u] != nil || len(rulesOf[u]) == 0 || presets[u] != "" {
				continue
			}
			for _, p := range round {
				if sameRules(generators.PresetRules(cfg, p, u), rulesOf[u]) {
					presets[u] = p
					cfg.Users[u] = schema.User{Preset: p}
					break
				}
			}
		}
	}
	if root != "" && root != "home" {
		w.line(0, "devices_topic: "+str(root))
	}
	hashes := map[string]string{}
	plain := map[string]string{}
	for _, u := range users {
		if !userNameRE.MatchString(u) || (devices[u] != nil && !nameRE.MatchString(u)) {
			t.notes = append(t.notes, Note{Pos: t.rel(loginAt), Option: "user " + u, Kind: Lost, Action: "mqttgen's user names are letters, digits and _ . @ - (starting with a letter or digit): the account is not carried"})
			continue
		}
		h := logins[u]
		pwField := ""
		if pw, ok := strings.CutPrefix(h, "plain:"); ok {
			plain[u] = pw
		} else {
			hashes[u] = h
			pwField = `password: "hash"`
		}
		from := []string{fmt.Sprintf("%s:%d", loginAt, l.lines[loginAt][u])}
		if n := l.lines[aclAt][u]; n > 0 {
			from = append(from, fmt.Sprintf("%s:%d", aclAt, n))
		}
		w.blank()
		if d := devices[u]; d != nil {
			w.line(0, fmt.Sprintf("devices: %s: {", label(u)), from...)
			if pwField != "" {
				w.line(1, pwField)
			}
			if len(d.Publishes) > 0 {
				w.line(1, "publishes: "+list(d.Publishes))
			}
			if len(d.Subscribes) > 0 {
				w.line(1, "subscribes: "+list(d.Subscribes))
			}
			if d.Availability {
				w.line(1, "availability: true")
			}
			w.line(0, "}")
			continue
		}
		w.line(0, fmt.Sprintf("users: %s: {", label(u)), from...)
		if pwField != "" {
			w.line(1, pwField)
		}
		if p := presets[u]; p != "" {
			w.line(1, "preset: "+str(p))
		} else if len(rulesOf[u]) > 0 {
			w.line(1, "acl: "+list(ruleStrings(rulesOf[u])))
		}
		w.line(0, "}")
	}
	t.hashes = hashes
	t.passwords = plain
	if len(plain) > 0 {
		t.notes = append(t.notes, Note{Pos: t.rel(loginAt), Option: "plain-text passwords", Kind: Translated, Action: "kept in the state directory as each account's password; rendered passwd holds their $7$ hashes"})
	}
}

// asDevice reads an account whose rules are exactly one device's topics.
func asDevice(user string, rules []acl.Rule) (string, *schema.Device) {
	if len(rules) == 0 || !nameRE.MatchString(user) {
		return "", nil
	}
	d := &schema.Device{Publishes: []string{}, Subscribes: []string{}}
	root := ""
	for _, r := range rules {
		parts := strings.Split(r.Topic, "/")
		if len(parts) != 3 || parts[1] != user || !nameRE.MatchString(parts[2]) || !nameRE.MatchString(parts[0]) || (root != "" && parts[0] != root) || r.Access == acl.Deny {
			return "", nil
		}
		root = parts[0]
		if r.Access&acl.Write != 0 {
			if parts[2] == "status" {
				d.Availability = true
			} else if !slices.Contains(d.Publishes, parts[2]) {
				d.Publishes = append(d.Publishes, parts[2])
			}
		}
		if r.Access&acl.Read != 0 && !slices.Contains(d.Subscribes, parts[2]) {
			d.Subscribes = append(d.Subscribes, parts[2])
		}
	}
	return root, d
}

// sameRules reports whether two rule lists are the same set: Mosquitto's
// decision does not depend on the order within one list.
func sameRules(a, b []acl.Rule) bool {
	if len(a) == 0 {
		return false
	}
	set := func(rs []acl.Rule) map[acl.Rule]bool {
		m := map[acl.Rule]bool{}
		for _, r := range rs {
			m[r] = true
		}
		return m
	}
	return maps.Equal(set(a), set(b))
}

func (t *translator) settings() {
	s := t.l.setup
	w := t.w
	w.blank()
	pers := ""
	if s.persistenceAt != nil {
		pers = s.persistenceAt.Pos()
	}
	w.line(0, "persistence: {", pers)
	w.line(1, fmt.Sprintf("enabled: %v", s.persistence))
	if s.persistence && s.autosaveInterval != 1800 {
		w.line(1, "autosave_interval: "+str(duration(s.autosaveInterval)), s.at["autosave_interval"].Pos())
	}
	w.line(0, "}")

	w.blank()
	w.line(0, "logging: {")
	if len(s.logDest) > 0 {
		var dests []string
		for i, d := range s.logDest {
			kind, rest, _ := strings.Cut(d, " ")
			switch kind {
			case "stdout", "stderr", "syslog", "topic":
				dests = append(dests, kind)
			case "file":
				dests = append(dests, "file")
				if rest != "/mosquitto/log/mosquitto.log" {
					t.note(s.logDestAt[i], Translated, "mqttgen logs to /mosquitto/log/mosquitto.log in its log volume")
				}
			case "none":
			default:
				t.note(s.logDestAt[i], Lost, "mqttgen logs to stdout, stderr, syslog, file or topic")
			}
		}
		w.line(1, "destinations: "+list(dests), s.logDestAt[0].Pos())
	}
	if len(s.logTypes) > 0 {
		w.line(1, "types: "+list(s.logTypes), s.logTypesAt.Pos())
	}
	if s.connMsgsAt != nil && !s.connMsgs {
		w.line(1, "connection_messages: false", s.connMsgsAt.Pos())
	}
	if !s.logTime {
		w.line(1, "timestamps: false", s.logTimeAt.Pos())
	}
	w.line(0, "}")

	w.blank()
	w.line(0, "limits: {")
	tightened := fmt.Sprintf("the new home has mqttgen's default max_packet_size of %d bytes, so no client can make the broker buffer up to 256 MiB before it logs in (docs/security.md); set limits.max_packet_size for larger messages", schema.DefaultMaxPacketSize)
	switch n := s.maxPacket; {
	case s.maxPacketAt == nil:
		t.notes = append(t.notes, Note{Pos: t.rel(t.l.src.conf), Option: "no max_packet_size", Kind: Tightened, Action: "Mosquitto 2.0 accepts any packet size: " + tightened})
	case n == 0, n > 255*1024*1024:
		t.note(*s.maxPacketAt, Tightened, "no limit: %s", tightened)
	case n < 1024:
		t.note(*s.maxPacketAt, Lost, "%d bytes cuts off any client whose CONNECT with its credentials is larger; mqttgen's smallest is 1KiB, so the default %d bytes is set", n, schema.DefaultMaxPacketSize)
	default:
		w.line(1, fmt.Sprintf("max_packet_size: \"%dB\"", n), s.maxPacketAt.Pos())
	}
	if s.maxQueued != 1000 {
		w.line(1, fmt.Sprintf("max_queued_messages: %d", s.maxQueued), s.at["max_queued_messages"].Pos())
	}
	if s.maxInflight != 20 {
		w.line(1, fmt.Sprintf("max_inflight_messages: %d", s.maxInflight), s.at["max_inflight_messages"].Pos())
	}
	if s.expAt != nil {
		v := s.expiration
		n := atoi(v)
		u := byte(0)
		if v != "" {
			u = v[len(v)-1]
		}
		switch {
		case v == "" || strconv.Itoa(n)+string(u) != v || !strings.ContainsRune("hdwmy", rune(u)):
			t.note(*s.expAt, Dropped, "Mosquitto refuses this value and does not start (units: h, d, w, m = month, y)")
			s.expiration = ""
		case u == 'm':
			w.line(1, fmt.Sprintf("persistent_client_expiration: \"%dd\"", n*30), s.expAt.Pos())
			t.note(*s.expAt, Translated, "Mosquitto reads m as months (30 days): \"%dd\"; if minutes were meant, mqttgen cannot express them", n*30)
		default:
			w.line(1, "persistent_client_expiration: "+str(v), s.expAt.Pos())
		}
	}
	if s.keepaliveAt != nil && s.keepalive != 65535 {
		if s.keepalive < 10 {
			t.note(*s.keepaliveAt, Lost, "mqttgen's max_keepalive is at least 10s")
		} else {
			w.line(1, fmt.Sprintf("max_keepalive: \"%ds\"", s.keepalive), s.keepaliveAt.Pos())
		}
	}
	w.line(0, "}")
}

func duration(sec int) string {
	switch {
	case sec%3600 == 0 && sec > 0:
		return fmt.Sprintf("%dh", sec/3600)
	case sec%60 == 0 && sec > 0:
		return fmt.Sprintf("%dm", sec/60)
	}
	return fmt.Sprintf("%ds", sec)
}

func (t *translator) bridges() {
	for _, b := range t.l.setup.bridges {
		w := t.w
		if !nameRE.MatchString(b.name) {
			t.note(b.at, Lost, "bridge names are letters, digits, _ and -: the bridge is not carried")
			continue
		}
		w.blank()
		w.line(0, fmt.Sprintf("bridges: %s: {", label(b.name)), b.at.Pos())
		addr := strings.Fields(b.opts["address"] + " " + b.opts["addresses"])
		if len(addr) > 1 {
			t.note(b.optsAt["address"], Lost, "mqttgen bridges to one address: the first is kept")
		}
		if len(addr) > 0 {
			a := addr[0]
			if !strings.Contains(a, ":") {
				a += ":1883"
			}
			w.line(1, "address: "+str(a), b.optsAt["address"].Pos())
		}
		tls := false
		if ca, ok := b.opts["bridge_cafile"]; ok {
			tls = true
			w.line(1, "tls: true", b.optsAt["bridge_cafile"].Pos())
			if ca != "/etc/ssl/certs/ca-certificates.crt" {
				w.line(1, "ca_file: "+str(t.path(ca, b.optsAt["bridge_cafile"])), b.optsAt["bridge_cafile"].Pos())
			} else {
				t.note(b.optsAt["bridge_cafile"], Translated, "the system's CAs")
			}
		} else if _, ok := b.opts["bridge_capath"]; ok {
			tls = true
			w.line(1, "tls: true", b.optsAt["bridge_capath"].Pos())
			t.note(b.optsAt["bridge_capath"], Translated, "the system's CAs")
		}
		_ = tls
		switch v := b.opts["bridge_protocol_version"]; v {
		case "", "mqttv311":
		case "mqttv50":
			w.line(1, `protocol: "mqttv50"`, b.optsAt["bridge_protocol_version"].Pos())
		default:
			t.note(b.optsAt["bridge_protocol_version"], Lost, "mqttgen bridges with mqttv311 or mqttv50")
		}
		if v, ok := b.opts["remote_clientid"]; ok {
			w.line(1, "client_id: "+str(v), b.optsAt["remote_clientid"].Pos())
		} else {
			t.note(b.at, Translated, "Mosquitto's client id was <hostname>.%s; mqttgen's is <deploy.project>-%s", b.name, b.name)
		}
		if v, ok := b.opts["remote_username"]; ok {
			w.line(1, "username: "+str(v), b.optsAt["remote_username"].Pos())
		}
		if v, ok := b.opts["remote_password"]; ok {
			t.bridgePW[b.name] = v
			w.line(1, "password: file: "+str(".mqttgen/bridges/"+b.name), b.optsAt["remote_password"].Pos())
			t.note(b.optsAt["remote_password"], Translated, "moved out of the configuration into .mqttgen/bridges/%s", b.name)
		}
		if b.opts["cleansession"] == "true" {
			w.line(1, "clean_session: true", b.optsAt["cleansession"].Pos())
		}
		w.line(1, "topics: [")
		for i, line := range b.topics {
			f := strings.Fields(line)
			bt := []string{"pattern: " + str(f[0])}
			if len(f) > 1 && f[1] != "out" {
				bt = append(bt, "direction: "+str(f[1]))
			}
			if len(f) > 1 && f[1] == "out" {
				bt = append(bt, `direction: "out"`)
			}
			if len(f) < 2 {
				bt = append(bt, `direction: "out"`)
			}
			if len(f) > 2 && f[2] != "0" {
				bt = append(bt, "qos: "+f[2])
			}
			if len(f) > 3 && f[3] != `""` {
				bt = append(bt, "local_prefix: "+str(f[3]))
			}
			if len(f) > 4 && f[4] != `""` {
				bt = append(bt, "remote_prefix: "+str(f[4]))
			}
			w.line(2, "{"+strings.Join(bt, ", ")+"},", b.topicsAt[i].Pos())
		}
		w.line(1, "]")
		w.line(0, "}")
		for _, k := range slices.Sorted(maps.Keys(b.optsAt)) {
			switch k {
			case "address", "addresses", "bridge_cafile", "bridge_capath", "bridge_protocol_version", "remote_clientid", "remote_username", "remote_password", "cleansession":
				continue
			}
			t.other(b.optsAt[k])
		}
	}
}

// other judges an option mqttgen has no field for.
func (t *translator) other(d conf.Directive) {
	switch d.Key {
	case "reconnect_delay", "reconnect_delay_max":
		t.note(d, Dropped, "unknown to Mosquitto, which refuses to start with it (a bridge's retry delay is restart_timeout)")
		return
	case "message_size_limit":
		n := atoi(d.Value)
		switch {
		case n == 0 || n >= 268435455:
			t.note(d, Dropped, "deprecated; no limit in effect")
		default:
			t.note(d, Lost, "deprecated; Mosquitto reads %d bytes (%q), a limit on payloads that mqttgen cannot express (max_packet_size limits whole packets)", n, d.Value)
		}
		return
	}
	if why, ok := harmless[d.Key]; ok {
		t.note(d, Dropped, "%s", why)
		return
	}
	switch {
	case conf.IsDefault(d.Key, d.Value):
		t.note(d, Dropped, "Mosquitto's default: no effect")
	case conf.Since21(d.Key):
		t.note(d, Lost, "a Mosquitto 2.1 option mqttgen cannot express")
	case !conf.Known(d.Key):
		t.note(d, Dropped, "unknown to Mosquitto 2.0, which refuses to start with it")
	default:
		t.note(d, Lost, "mqttgen cannot express it")
	}
}
