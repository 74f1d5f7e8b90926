// Package conf is the one place that knows mosquitto.conf. Parse and Load
// read a file as mqttgen renders it, for the bundled broker: every option
// the generator can write, with Mosquitto 2.0's meaning, placement rules
// and value checks; any other option is refused with its file:line and the
// reason, as Mosquitto refuses unknown options at start. Read reads any
// file leniently (a deployed one, another version's, one written by hand),
// keeping each line's position and section, for deploy, backup and
// importers; Redact hides its secrets. tables.go holds what the rest of
// mqttgen asks about options: which each engine reloads on SIGHUP, which
// hold secrets, each engine's database, which belong to a listener or a
// bridge.
//
// The package knows nothing of home.cue: the broker reads the rendered files
// exactly as Mosquitto does.
package conf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one parsed mosquitto.conf.
type Config struct {
	// File is the path the configuration was read from.
	File string

	PerListenerSettings bool
	// User is the account a broker started as root drops to; "" when unset.
	User string

	Persistence         bool
	PersistenceLocation string
	// AutosaveInterval is how often the persistence database is written;
	// 0 writes it only at shutdown and on SIGUSR1.
	AutosaveInterval time.Duration

	LogDest            []LogDest
	LogTypes           LogTypes
	ConnectionMessages bool
	LogTimestamp       bool
	// LogTimestampFormat is a strftime(3) format; "" prints Unix seconds.
	LogTimestampFormat string

	// MaxPacketSize is the largest packet accepted, 0 for no limit.
	MaxPacketSize uint32
	// MaxQueuedMessages is the QoS 1/2 queue per client beyond those in
	// flight; 0 is unlimited.
	MaxQueuedMessages int
	// MaxInflightMessages is the QoS 1/2 messages in flight per client; 0 is
	// unlimited.
	MaxInflightMessages int
	// PersistentClientExpiration removes sessions disconnected longer than
	// this; 0 keeps them.
	PersistentClientExpiration time.Duration
	// MaxKeepalive is the longest keepalive clients may use, in seconds.
	MaxKeepalive int

	// Security holds allow_anonymous, password_file and acl_file when
	// per_listener_settings is false, or Mosquitto 2.1's acl-file and
	// password-file plugins (plugin_opt_acl_file, plugin_opt_password_file).
	Security Security
	// DenySpecialChars is auth_plugin_deny_special_chars (default true).
	// The bundled broker keeps Mosquitto 2.0's rule either way: a username
	// or client id holding '+' or '#' is denied once patterns are checked.
	DenySpecialChars bool

	Listeners []*Listener
	Bridges   []*Bridge
}

// Security is one set of authentication and access control options: global,
// or a listener's own with per_listener_settings.
type Security struct {
	// AllowAnonymous is nil when not set: Mosquitto 2.0 then refuses
	// anonymous clients.
	AllowAnonymous *bool
	PasswordFile   string
	ACLFile        string
}

// Anonymous reports whether clients without a username are admitted.
func (s Security) Anonymous() bool { return s.AllowAnonymous != nil && *s.AllowAnonymous }

// Listener is one `listener` section.
type Listener struct {
	// Line is where the section starts, for messages.
	Line int
	Port int
	// Bind is the address to listen on; "" is every address.
	Bind string
	// Protocol is "mqtt" or "websockets".
	Protocol string
	// MaxConnections is -1 for no limit.
	MaxConnections int

	CertFile, KeyFile string
	// CAFile verifies client certificates.
	CAFile string
	// TLSVersion is the minimum TLS version: tlsv1.1, tlsv1.2 or tlsv1.3;
	// "" when the listener has no TLS.
	TLSVersion         string
	RequireCertificate bool

	// Security is the listener's own with per_listener_settings.
	Security Security
	// AllowAnonymous is Mosquitto 2.1's listener_allow_anonymous: nil
	// when the listener takes the global allow_anonymous.
	AllowAnonymous *bool
	// ProtocolVersions is 2.1's accept_protocol_versions: the protocol
	// levels (3 for 3.1, 4 for 3.1.1, 5) the listener accepts; nil: all.
	ProtocolVersions []byte
}

// Accepts reports whether the listener accepts a client of protocol level
// v (3, 4 or 5).
func (l *Listener) Accepts(v byte) bool {
	return l.ProtocolVersions == nil || slices.Contains(l.ProtocolVersions, v)
}

// TLS reports whether the listener serves TLS.
func (l *Listener) TLS() bool { return l.CertFile != "" }

// Address is the host:port to listen on.
func (l *Listener) Address() string {
	return netJoin(l.Bind, l.Port)
}

// ID names the listener in logs and in the broker: its port, and its address
// when it has one, as Mosquitto names listeners.
func (l *Listener) ID() string {
	if l.Bind == "" {
		return strconv.Itoa(l.Port)
	}
	return l.Address()
}

func netJoin(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// SecurityFor returns the security options that apply to clients of l.
func (c *Config) SecurityFor(l *Listener) Security {
	if c.PerListenerSettings {
		return l.Security
	}
	s := c.Security
	if l.AllowAnonymous != nil {
		s.AllowAnonymous = l.AllowAnonymous
	}
	return s
}

// LogDest is one log_dest line.
type LogDest struct {
	// Kind is stdout, stderr, syslog, topic, file or none.
	Kind string
	// Path is the file of Kind "file".
	Path string
}

// LogTypes is the set of log_type lines.
type LogTypes map[string]bool

// Has reports whether messages of type t are logged.
func (t LogTypes) Has(typ string) bool { return t["all"] || t[typ] }

// Bridge is one `connection` section.
type Bridge struct {
	Line int
	Name string
	// Addresses are host:port, tried in order.
	Addresses []string
	// ProtocolVersion is mqttv31, mqttv311 or mqttv50.
	ProtocolVersion string
	RemoteClientID  string
	RemoteUsername  string
	RemotePassword  string
	// HasPassword distinguishes an empty remote_password from none.
	HasPassword  bool
	CleanSession bool
	// NoPrivate is try_private false: connect with the plain protocol
	// level, never Mosquitto's bridge flag.
	NoPrivate bool
	// CAFile or CAPath verify the remote's certificate; one is set when the
	// bridge uses TLS.
	CAFile, CAPath string
	TLSVersion     string
	Topics         []BridgeTopic
}

// TLS reports whether the bridge connects with TLS.
func (b *Bridge) TLS() bool { return b.CAFile != "" || b.CAPath != "" }

// BridgeTopic is one `topic` line of a bridge.
type BridgeTopic struct {
	Pattern string
	// Direction is in, out or both.
	Direction    string
	QoS          byte
	LocalPrefix  string
	RemotePrefix string
}

// Error is a problem at one line of a configuration file.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Errors are every problem of a file, in line order.
type Errors []*Error

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, x := range e {
		msgs[i] = x.Error()
	}
	return strings.Join(msgs, "\n")
}

// Load reads and checks the configuration file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return Parse(abs, f)
}

// Defaults are Mosquitto 2.0's values for options a file leaves out.
func defaults(file string) *Config {
	return &Config{
		DenySpecialChars:    true,
		File:                file,
		LogTypes:            LogTypes{},
		ConnectionMessages:  true,
		LogTimestamp:        true,
		MaxQueuedMessages:   1000,
		MaxInflightMessages: 20,
		MaxKeepalive:        65535,
		AutosaveInterval:    1800 * time.Second,
	}
}

// parser holds the state of one pass over a file.
type parser struct {
	c    *Config
	file string
	errs Errors
	// security options seen so far, for per_listener_settings' placement.
	securitySeen int
	listener     *Listener
	bridge       *Bridge
	// currentPlugin is the file name of the last plugin line.
	currentPlugin string
	// set records single-valued options already given, by scope.
	set map[string]int
	// logTypeSet and logDestSet: the first line replaces the defaults.
	logTypeSet bool
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Parse reads a configuration from r; file names it in messages. On
// problems the error is Errors.
func Parse(file string, r io.Reader) (*Config, error) {
	p := &parser{c: defaults(file), file: file, set: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		// As Mosquitto: '#' starts a comment only in the first column, and
		// trailing spaces and line ends are dropped.
		if raw == "" || raw[0] == '#' {
			continue
		}
		line := strings.TrimRight(raw, " \t\r\n")
		line = strings.TrimLeft(line, " \t")
		if line == "" {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(key, '\t'); i >= 0 {
			key, value = line[:i], line[i+1:]
		}
		value = strings.TrimLeft(value, " \t")
		p.option(n, key, value)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	p.finish()
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return p.c, nil
}

// renderedBridgeOptions are the bridge options mqttgen renders, that belong to the current `connection`.
var renderedBridgeOptions = map[string]bool{
	"address": true, "addresses": true, "bridge_protocol_version": true, "remote_clientid": true,
	"remote_username": true, "remote_password": true, "cleansession": true, "bridge_cafile": true,
	"bridge_capath": true, "bridge_tls_version": true, "topic": true, "bridge_reload_type": true,
	"try_private": true,
}

// renderedListenerOptions are the listener options mqttgen renders, that belong to the current `listener`.
var renderedListenerOptions = map[string]bool{
	"protocol": true, "max_connections": true, "certfile": true, "keyfile": true, "cafile": true,
	"tls_version": true, "require_certificate": true,
	"listener_allow_anonymous": true, "accept_protocol_versions": true,
}

// plugins are the plugins the bundled broker reads the files of, by file
// name, and the option naming each one's file.
var plugins = map[string]string{
	"mosquitto_acl_file.so":      "plugin_opt_acl_file",
	"mosquitto_password_file.so": "plugin_opt_password_file",
}

// refused names options Mosquitto knows but mqttgen never renders, with the
// reason the bundled broker does not take them.
var refused = map[string]string{
	"port":                     "deprecated in Mosquitto 2.0: use `listener PORT [ADDRESS]`",
	"bind_address":             "deprecated in Mosquitto 2.0: use `listener PORT ADDRESS`",
	"message_size_limit":       "deprecated in Mosquitto 2.0: use max_packet_size",
	"include_dir":              "not rendered by mqttgen: the bundled broker reads one file",
	"reconnect_delay":          "unknown to Mosquitto: a bridge's retry delay is restart_timeout",
	"reconnect_delay_max":      "unknown to Mosquitto: a bridge's retry delay is restart_timeout",
	"auth_plugin":              "plugins are Mosquitto's own: the bundled broker has none",
	"psk_file":                 "TLS-PSK is not supported by the bundled broker",
	"psk_hint":                 "TLS-PSK is not supported by the bundled broker",
	"use_identity_as_username": "not rendered by mqttgen: client certificates authenticate, usernames come from CONNECT",
	"use_subject_as_username":  "not rendered by mqttgen: client certificates authenticate, usernames come from CONNECT",
}

func (p *parser) once(n int, scope, key string) bool {
	k := scope + "\x00" + key
	if prev, ok := p.set[k]; ok {
		p.errorf(n, "%s is already set at line %d", key, prev)
		return false
	}
	p.set[k] = n
	return true
}

func (p *parser) option(n int, key, value string) {
	if p.bridge != nil && renderedBridgeOptions[key] {
		p.bridgeOption(n, key, value)
		return
	}
	if renderedBridgeOptions[key] {
		p.errorf(n, "%s is a bridge option: it must follow a `connection NAME` line", key)
		return
	}
	if renderedListenerOptions[key] {
		if p.listener == nil {
			p.errorf(n, "%s is a listener option: it must follow a `listener PORT [ADDRESS]` line (the default listener of `port` is not supported)", key)
			return
		}
		p.listenerOption(n, key, value)
		return
	}
	switch key {
	case "per_listener_settings":
		if b, ok := p.boolean(n, key, value); ok && p.once(n, "", key) {
			if p.securitySeen > 0 {
				p.errorf(n, "per_listener_settings must come before every security option (allow_anonymous, password_file, acl_file); the first is at line %d", p.securitySeen)
				return
			}
			p.c.PerListenerSettings = b
		}
	case "user":
		if s, ok := p.word(n, key, value); ok && p.once(n, "", key) {
			p.c.User = s
		}
	case "persistence":
		if b, ok := p.boolean(n, key, value); ok && p.once(n, "", key) {
			p.c.Persistence = b
		}
	case "persistence_location":
		if value == "" {
			p.errorf(n, "persistence_location needs a folder")
		} else if p.once(n, "", key) {
			p.c.PersistenceLocation = value
		}
	case "autosave_interval":
		if i, ok := p.integer(n, key, value, 0, math.MaxInt32); ok && p.once(n, "", key) {
			p.c.AutosaveInterval = time.Duration(i) * time.Second
		}
	case "log_dest":
		p.logDest(n, value)
	case "log_type":
		if !logTypes[value] {
			p.errorf(n, "log_type %q is not one of error, warning, notice, information, debug, subscribe, unsubscribe, websockets, all, none", value)
			return
		}
		p.logTypeSet = true
		p.c.LogTypes[value] = true
	case "connection_messages":
		if b, ok := p.boolean(n, key, value); ok && p.once(n, "", key) {
			p.c.ConnectionMessages = b
		}
	case "log_timestamp":
		if b, ok := p.boolean(n, key, value); ok && p.once(n, "", key) {
			p.c.LogTimestamp = b
		}
	case "log_timestamp_format":
		if value == "" {
			p.errorf(n, "log_timestamp_format needs a strftime format, e.g. %%Y-%%m-%%dT%%H:%%M:%%S")
		} else if err := checkStrftime(value); err != nil {
			p.errorf(n, "log_timestamp_format: %v", err)
		} else if p.once(n, "", key) {
			p.c.LogTimestampFormat = value
		}
	case "max_packet_size":
		if i, ok := p.integer(n, key, value, 0, 268435455+5); ok && p.once(n, "", key) {
			if i < 20 {
				p.errorf(n, "max_packet_size %d is below 20, which Mosquitto refuses: no client could connect", i)
				return
			}
			p.c.MaxPacketSize = uint32(i)
		}
	case "max_queued_messages":
		if i, ok := p.integer(n, key, value, 0, math.MaxInt32); ok && p.once(n, "", key) {
			p.c.MaxQueuedMessages = i
		}
	case "max_inflight_messages":
		if i, ok := p.integer(n, key, value, 0, 65535); ok && p.once(n, "", key) {
			p.c.MaxInflightMessages = i
		}
	case "persistent_client_expiration":
		if d, err := parseExpiration(value); err != nil {
			p.errorf(n, "persistent_client_expiration: %v", err)
		} else if p.once(n, "", key) {
			p.c.PersistentClientExpiration = d
		}
	case "max_keepalive":
		if i, ok := p.integer(n, key, value, 0, 65535); ok && p.once(n, "", key) {
			p.c.MaxKeepalive = i
		}
	case "allow_anonymous", "password_file", "acl_file":
		p.security(n, key, value)
	case "plugin", "global_plugin", "plugin_opt_acl_file", "plugin_opt_password_file":
		p.plugin(n, key, value)
	case "auth_plugin_deny_special_chars":
		if b, ok := p.boolean(n, key, value); ok && p.once(n, "", key) {
			if p.currentPlugin == "" {
				p.errorf(n, "auth_plugin_deny_special_chars must follow a plugin line: Mosquitto applies it to the plugin above it")
				return
			}
			p.c.DenySpecialChars = b
		}
	case "listener":
		p.newListener(n, value)
	case "connection":
		p.newBridge(n, value)
	default:
		if why, ok := refused[key]; ok {
			p.errorf(n, "option %s is not supported: %s", key, why)
			return
		}
		p.errorf(n, "unknown option %q: the bundled broker reads only the options mqttgen renders (and Mosquitto would refuse to start on an option it does not know)", key)
	}
}

var logTypes = map[string]bool{
	"error": true, "warning": true, "notice": true, "information": true, "debug": true,
	"subscribe": true, "unsubscribe": true, "websockets": true, "all": true, "none": true,
}

func (p *parser) logDest(n int, value string) {
	kind, rest, _ := strings.Cut(value, " ")
	rest = strings.TrimSpace(rest)
	switch kind {
	case "stdout", "stderr", "syslog", "topic", "none":
		if rest != "" {
			p.errorf(n, "log_dest %s takes nothing after it, not %q", kind, rest)
			return
		}
	case "file":
		if rest == "" {
			p.errorf(n, "log_dest file needs a path: log_dest file /mosquitto/log/mosquitto.log")
			return
		}
	case "dlt":
		p.errorf(n, "log_dest dlt (the GENIVI log daemon) is not supported by the bundled broker")
		return
	default:
		p.errorf(n, "log_dest %q is not one of stdout, stderr, syslog, topic, file PATH, none", kind)
		return
	}
	p.c.LogDest = append(p.c.LogDest, LogDest{Kind: kind, Path: rest})
}

func (p *parser) security(n int, key, value string) {
	if p.securitySeen == 0 {
		p.securitySeen = n
	}
	s := &p.c.Security
	scope := ""
	if p.c.PerListenerSettings {
		if p.listener == nil {
			p.errorf(n, "%s before any listener: with per_listener_settings true it applies to the default listener of `port`, which the bundled broker does not support; move it under a `listener` line", key)
			return
		}
		s = &p.listener.Security
		scope = "listener" + strconv.Itoa(p.listener.Line)
	}
	switch key {
	case "allow_anonymous":
		if b, ok := p.boolean(n, key, value); ok && p.once(n, scope, key) {
			s.AllowAnonymous = &b
		}
	case "password_file":
		if value == "" {
			p.errorf(n, "password_file needs a path")
		} else if p.once(n, scope, key) {
			s.PasswordFile = value
		}
	case "acl_file":
		if value == "" {
			p.errorf(n, "acl_file needs a path")
		} else if p.once(n, scope, key) {
			s.ACLFile = value
		}
	}
}

// plugin reads Mosquitto 2.1's plugin lines for the acl-file and
// password-file plugins: the bundled broker reads their files itself.
func (p *parser) plugin(n int, key, value string) {
	if p.listener != nil || p.bridge != nil {
		p.errorf(n, "%s under a listener or bridge: the bundled broker reads the plugins for every listener; put them before the first listener", key)
		return
	}
	if p.c.PerListenerSettings {
		p.errorf(n, "%s with per_listener_settings true: the bundled broker reads plugins for every listener only (Mosquitto 2.1 replaces per_listener_settings with listener_allow_anonymous)", key)
		return
	}
	if p.securitySeen == 0 {
		p.securitySeen = n
	}
	switch key {
	case "plugin", "global_plugin":
		base := path.Base(value)
		if _, ok := plugins[base]; !ok {
			p.errorf(n, "%s %s is not supported: the bundled broker reads the files of mosquitto_acl_file.so and mosquitto_password_file.so, and has no other plugin", key, value)
			return
		}
		if p.once(n, "", "plugin "+base) {
			p.currentPlugin = base
		}
	default:
		if plugins[p.currentPlugin] != key {
			p.errorf(n, "%s must follow its plugin line (plugin .../%s)", key, map[string]string{"plugin_opt_acl_file": "mosquitto_acl_file.so", "plugin_opt_password_file": "mosquitto_password_file.so"}[key])
			return
		}
		if value == "" {
			p.errorf(n, "%s needs a path", key)
			return
		}
		if !p.once(n, "", key) {
			return
		}
		if key == "plugin_opt_acl_file" {
			p.c.Security.ACLFile = value
		} else {
			p.c.Security.PasswordFile = value
		}
	}
}

func (p *parser) newListener(n int, value string) {
	p.bridge = nil
	fields := strings.Fields(value)
	if len(fields) == 0 || len(fields) > 2 {
		p.errorf(n, "listener takes a port and optionally an address: listener 1883 [0.0.0.0]")
		p.listener = &Listener{Line: n} // keep reading its options
		return
	}
	port, err := strconv.Atoi(fields[0])
	if err != nil || port < 1 || port > 65535 {
		p.errorf(n, "listener port %q is not a number from 1 to 65535 (unix sockets are not supported)", fields[0])
	}
	l := &Listener{Line: n, Port: port, Protocol: "mqtt", MaxConnections: -1}
	if len(fields) == 2 {
		l.Bind = fields[1]
	}
	for _, o := range p.c.Listeners {
		if o.Port == l.Port && o.Bind == l.Bind && port > 0 {
			p.errorf(n, "listener %s is already defined at line %d", value, o.Line)
		}
	}
	p.listener = l
	p.c.Listeners = append(p.c.Listeners, l)
}

func (p *parser) listenerOption(n int, key, value string) {
	l := p.listener
	scope := "listener" + strconv.Itoa(l.Line)
	switch key {
	case "protocol":
		if value != "mqtt" && value != "websockets" {
			p.errorf(n, "protocol %q is not mqtt or websockets", value)
		} else if p.once(n, scope, key) {
			l.Protocol = value
		}
	case "max_connections":
		if i, ok := p.integer(n, key, value, -1, math.MaxInt32); ok && p.once(n, scope, key) {
			l.MaxConnections = i
		}
	case "certfile", "keyfile", "cafile":
		if value == "" {
			p.errorf(n, "%s needs a path", key)
			return
		}
		if !p.once(n, scope, key) {
			return
		}
		switch key {
		case "certfile":
			l.CertFile = value
		case "keyfile":
			l.KeyFile = value
		default:
			l.CAFile = value
		}
	case "tls_version":
		switch value {
		case "tlsv1.1", "tlsv1.2", "tlsv1.3":
			if p.once(n, scope, key) {
				l.TLSVersion = value
			}
		default:
			p.errorf(n, "tls_version %q is not tlsv1.1, tlsv1.2 or tlsv1.3", value)
		}
	case "require_certificate":
		if b, ok := p.boolean(n, key, value); ok && p.once(n, scope, key) {
			l.RequireCertificate = b
		}
	case "listener_allow_anonymous":
		if b, ok := p.boolean(n, key, value); ok && p.once(n, scope, key) {
			l.AllowAnonymous = &b
		}
	case "accept_protocol_versions":
		if !p.once(n, scope, key) {
			return
		}
		l.ProtocolVersions = []byte{}
		for _, f := range strings.Split(value, ",") {
			switch f = strings.TrimSpace(f); f {
			case "3", "4", "5":
				if v := f[0] - '0'; !slices.Contains(l.ProtocolVersions, v) {
					l.ProtocolVersions = append(l.ProtocolVersions, v)
				}
			default:
				p.errorf(n, "accept_protocol_versions %q: list protocol levels 3 (MQTT 3.1), 4 (3.1.1) and 5, separated by commas", value)
				return
			}
		}
	}
}

func (p *parser) newBridge(n int, value string) {
	p.listener = nil
	name := strings.TrimSpace(value)
	if name == "" || strings.ContainsAny(name, " \t") {
		p.errorf(n, "connection takes one name: connection cloud")
	}
	for _, b := range p.c.Bridges {
		if b.Name == name {
			p.errorf(n, "bridge %s is already defined at line %d", name, b.Line)
		}
	}
	b := &Bridge{Line: n, Name: name, ProtocolVersion: "mqttv311"}
	p.bridge = b
	p.c.Bridges = append(p.c.Bridges, b)
}

func (p *parser) bridgeOption(n int, key, value string) {
	b := p.bridge
	scope := "bridge" + strconv.Itoa(b.Line)
	if key != "topic" && !p.once(n, scope, key) {
		return
	}
	switch key {
	case "address", "addresses":
		fields := strings.Fields(value)
		if len(fields) == 0 {
			p.errorf(n, "%s needs host:port", key)
		}
		for _, a := range fields {
			host, port, ok := strings.Cut(a, ":")
			if !ok {
				port = "1883"
			}
			if pn, err := strconv.Atoi(port); host == "" || err != nil || pn < 1 || pn > 65535 {
				p.errorf(n, "bridge address %q is not host:port", a)
				continue
			}
			b.Addresses = append(b.Addresses, netJoin(host, mustAtoi(port)))
		}
	case "bridge_reload_type":
		// The bundled broker reads bridges at start only (docs/broker.md).
		if value != "lazy" && value != "immediate" {
			p.errorf(n, "bridge_reload_type %q is not lazy or immediate", value)
		}
	case "bridge_protocol_version":
		switch value {
		case "mqttv31", "mqttv311", "mqttv50":
			b.ProtocolVersion = value
		default:
			p.errorf(n, "bridge_protocol_version %q is not mqttv31, mqttv311 or mqttv50", value)
		}
	case "remote_clientid":
		if s, ok := p.word(n, key, value); ok {
			b.RemoteClientID = s
		}
	case "remote_username":
		if s, ok := p.word(n, key, value); ok {
			b.RemoteUsername = s
		}
	case "remote_password":
		b.RemotePassword, b.HasPassword = value, true
	case "cleansession":
		if v, ok := p.boolean(n, key, value); ok {
			b.CleanSession = v
		}
	case "try_private":
		if v, ok := p.boolean(n, key, value); ok {
			b.NoPrivate = !v
		}
	case "bridge_cafile":
		b.CAFile = value
	case "bridge_capath":
		b.CAPath = value
	case "bridge_tls_version":
		switch value {
		case "tlsv1.1", "tlsv1.2", "tlsv1.3":
			b.TLSVersion = value
		default:
			p.errorf(n, "bridge_tls_version %q is not tlsv1.1, tlsv1.2 or tlsv1.3", value)
		}
	case "topic":
		t, err := parseBridgeTopic(value)
		if err != nil {
			p.errorf(n, "topic: %v", err)
			return
		}
		b.Topics = append(b.Topics, t)
	}
}

func mustAtoi(s string) int { i, _ := strconv.Atoi(s); return i }

// parseBridgeTopic reads `pattern [[[out|in|both] qos] local-prefix
// remote-prefix]`, where "" is an empty pattern or prefix.
func parseBridgeTopic(value string) (BridgeTopic, error) {
	f := strings.Fields(value)
	unquote := func(s string) string {
		if s == `""` {
			return ""
		}
		return s
	}
	t := BridgeTopic{Direction: "out"}
	switch len(f) {
	case 1, 2, 3, 5:
	case 4:
		return t, errors.New("a local prefix needs a remote prefix after it (write \"\" for none)")
	default:
		return t, errors.New("want PATTERN [DIRECTION [QOS [LOCAL-PREFIX REMOTE-PREFIX]]]")
	}
	t.Pattern = unquote(f[0])
	if len(f) >= 2 {
		switch f[1] {
		case "in", "out", "both":
			t.Direction = f[1]
		default:
			return t, fmt.Errorf("direction %q is not in, out or both", f[1])
		}
	}
	if len(f) >= 3 {
		switch f[2] {
		case "0", "1", "2":
			t.QoS = f[2][0] - '0'
		default:
			return t, fmt.Errorf("qos %q is not 0, 1 or 2", f[2])
		}
	}
	if len(f) == 5 {
		t.LocalPrefix, t.RemotePrefix = unquote(f[3]), unquote(f[4])
	}
	if t.Pattern == "" && t.LocalPrefix == "" && t.RemotePrefix == "" {
		return t, errors.New(`an empty pattern ("") needs a local or remote prefix`)
	}
	for _, s := range []string{t.Pattern, t.LocalPrefix, t.RemotePrefix} {
		if strings.ContainsAny(s, "\x00") {
			return t, errors.New("topics must not hold NUL")
		}
	}
	if t.LocalPrefix != "" && strings.ContainsAny(t.LocalPrefix, "+#") || t.RemotePrefix != "" && strings.ContainsAny(t.RemotePrefix, "+#") {
		return t, errors.New("prefixes must not hold wildcards")
	}
	return t, nil
}

func (p *parser) finish() {
	c := p.c
	if len(c.Listeners) == 0 {
		p.errorf(1, "no listener: the bundled broker needs at least one `listener PORT` line (Mosquitto's implicit local-only listener is not supported)")
	}
	for _, l := range c.Listeners {
		if l.CertFile != "" || l.KeyFile != "" {
			if l.CertFile == "" || l.KeyFile == "" {
				p.errorf(l.Line, "listener %s: certfile and keyfile go together", l.ID())
			}
			if l.TLSVersion == "" {
				l.TLSVersion = "tlsv1.2"
			}
		}
		if (l.RequireCertificate || l.CAFile != "") && l.CertFile == "" {
			p.errorf(l.Line, "listener %s: require_certificate and cafile need certfile and keyfile", l.ID())
		}
		if l.RequireCertificate && l.CAFile == "" {
			p.errorf(l.Line, "listener %s: require_certificate needs cafile, the CA that signs client certificates", l.ID())
		}
		if l.TLSVersion != "" && l.CertFile == "" {
			p.errorf(l.Line, "listener %s: tls_version without certfile and keyfile", l.ID())
		}
	}
	if c.Persistence && c.PersistenceLocation == "" {
		p.errorf(1, "persistence true needs persistence_location (the folder of the database)")
	}
	for _, b := range c.Bridges {
		if len(b.Addresses) == 0 {
			p.errorf(b.Line, "bridge %s has no address", b.Name)
		}
		if len(b.Topics) == 0 {
			p.errorf(b.Line, "bridge %s has no topic line", b.Name)
		}
		if b.CAFile != "" && b.CAPath != "" {
			p.errorf(b.Line, "bridge %s: bridge_cafile and bridge_capath exclude each other", b.Name)
		}
		if b.TLSVersion != "" && !b.TLS() {
			p.errorf(b.Line, "bridge %s: bridge_tls_version without bridge_cafile or bridge_capath", b.Name)
		}
		if b.RemoteClientID == "" {
			b.RemoteClientID = b.Name
		}
	}
	if !p.logTypeSet {
		for _, t := range []string{"error", "warning", "notice", "information"} {
			c.LogTypes[t] = true
		}
	}
	if c.LogTypes["none"] {
		c.LogTypes = LogTypes{}
	}
	if len(c.LogDest) == 0 {
		c.LogDest = []LogDest{{Kind: "stderr"}}
	}
	p.sortErrors()
}

func (p *parser) sortErrors() {
	errs := p.errs
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Line < errs[j-1].Line; j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

func (p *parser) boolean(n int, key, value string) (bool, bool) {
	switch value {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	p.errorf(n, "%s takes true or false, not %q", key, value)
	return false, false
}

func (p *parser) word(n int, key, value string) (string, bool) {
	if value == "" || strings.ContainsAny(value, " \t") {
		p.errorf(n, "%s takes one word, not %q", key, value)
		return "", false
	}
	return value, true
}

func (p *parser) integer(n int, key, value string, lo, hi int) (int, bool) {
	i, err := strconv.Atoi(value)
	if err != nil {
		p.errorf(n, "%s takes a whole number, not %q", key, value)
		return 0, false
	}
	if i < lo || i > hi {
		p.errorf(n, "%s %d is out of range (%d to %d)", key, i, lo, hi)
		return 0, false
	}
	return i, true
}

// parseExpiration reads persistent_client_expiration as Mosquitto does: a
// number and h, d, w, m (months) or y.
func parseExpiration(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("%q: want a number and h, d, w, m (month) or y, e.g. 14d", s)
	}
	num, unit := s[:len(s)-1], s[len(s)-1]
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q: want a whole number of at least 1 and h, d, w, m (month) or y, e.g. 14d", s)
	}
	day := 24 * time.Hour
	var per time.Duration
	switch unit {
	case 'h':
		per = time.Hour
	case 'd':
		per = day
	case 'w':
		per = 7 * day
	case 'm':
		per = 30 * day
	case 'y':
		per = 365 * day
	case 's':
		return 0, fmt.Errorf("%q: seconds are refused by Mosquitto here; use h, d, w, m (month) or y", s)
	default:
		return 0, fmt.Errorf("%q: unknown unit %q; use h, d, w, m (month) or y", s, string(unit))
	}
	if int64(n) > math.MaxInt64/int64(per) {
		return 0, fmt.Errorf("%q is too long", s)
	}
	return time.Duration(n) * per, nil
}
