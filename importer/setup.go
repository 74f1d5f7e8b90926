package importer

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// setup is a mosquitto.conf read with Mosquitto 2.0's meaning: what the
// broker would do, whoever wrote the file. The same reader reads the
// original and the rendered files, so that the proof compares like with like.
type setup struct {
	perListener bool
	global      security
	listeners   []*listener

	persistence      bool
	persistenceAt    *conf.Directive
	autosaveInterval int // seconds

	logDest     []string
	logDestAt   []conf.Directive
	logTypes    []string
	logTypesAt  *conf.Directive
	connMsgs    bool
	connMsgsAt  *conf.Directive
	logTime     bool
	logTimeAt   *conf.Directive
	maxPacket   int // 0: no limit
	maxPacketAt *conf.Directive
	maxQueued   int
	maxInflight int
	expiration  string // as written: "1m", "12h"
	expAt       *conf.Directive
	keepalive   int
	keepaliveAt *conf.Directive

	// dflt collects listener options given before any listener, and port
	// and bind_address: Mosquitto's default listener.
	dflt    *listener
	hasPort bool
	// dfltBy are the options that opened the default listener without a
	// port line.
	dfltBy []conf.Directive

	bridges []*bridge
	// rest are the options this reader does not interpret, in order, with
	// their translation decided by the importer.
	rest []conf.Directive
	// at remembers where each global option was set, for comments.
	at map[string]conf.Directive
}

type security struct {
	allowAnonymous *bool
	passwordFile   string
	aclFile        string
	at             map[string]conf.Directive
}

type listener struct {
	at          conf.Directive
	port        int
	bind        string
	protocol    string
	certFile    string
	keyFile     string
	caFile      string
	requireCert bool
	tlsVersion  string
	maxConn     int
	sec         security
	opts        map[string]conf.Directive
}

func (l *listener) tls() bool { return l.certFile != "" }

// name is how messages and facts name the listener.
func (l *listener) name() string {
	if l.bind != "" {
		return fmt.Sprintf("%d on %s", l.port, l.bind)
	}
	return strconv.Itoa(l.port)
}

type bridge struct {
	at       conf.Directive
	name     string
	opts     map[string]string
	optsAt   map[string]conf.Directive
	topics   []string
	topicsAt []conf.Directive
}

var securityKeys = map[string]bool{"allow_anonymous": true, "password_file": true, "acl_file": true}

// readSetup interprets directives in order. It fails only where Mosquitto
// itself would not start and the meaning cannot be guessed (a listener
// without a port); everything else is kept for the importer to judge.
func readSetup(ds []conf.Directive) (*setup, error) {
	s := &setup{
		autosaveInterval: 1800, connMsgs: true, logTime: true,
		maxQueued: 1000, maxInflight: 20, keepalive: 65535,
		at: map[string]conf.Directive{},
	}
	s.global.at = map[string]conf.Directive{}
	s.dflt = &listener{port: 1883, protocol: "mqtt", maxConn: -1, opts: map[string]conf.Directive{}}
	s.dflt.sec.at = map[string]conf.Directive{}
	var cur *listener = s.dflt
	var br *bridge
	for _, d := range ds {
		d := d
		v := d.Value
		if br != nil && conf.BridgeOption(d.Key) {
			if d.Key == "topic" {
				if err := checkBridgeTopic(v); err != nil {
					return nil, fmt.Errorf("%s: topic %s: %v", d.Pos(), v, err)
				}
				br.topics = append(br.topics, v)
				br.topicsAt = append(br.topicsAt, d)
			} else {
				br.opts[d.Key] = v
				br.optsAt[d.Key] = d
			}
			continue
		}
		switch {
		case d.Key == "include_dir":
			// Followed by the reader; nothing to carry.
		case d.Key == "per_listener_settings":
			s.perListener = v == "true"
			s.at[d.Key] = d
		case d.Key == "listener":
			f := strings.Fields(v)
			if len(f) == 0 {
				return nil, fmt.Errorf("%s: listener without a port", d.Pos())
			}
			port, err := strconv.Atoi(f[0])
			if err != nil || port < 0 || port > 65535 {
				return nil, fmt.Errorf("%s: listener %q: the port is not a number from 0 to 65535", d.Pos(), f[0])
			}
			l := &listener{at: d, port: port, protocol: "mqtt", maxConn: -1, opts: map[string]conf.Directive{}}
			l.sec.at = map[string]conf.Directive{}
			if len(f) > 1 {
				l.bind = f[1]
			}
			s.listeners = append(s.listeners, l)
			cur = l
			br = nil
		case d.Key == "port":
			port, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%s: port %q is not a number", d.Pos(), v)
			}
			s.dflt.port, s.dflt.at, s.hasPort = port, d, true
		case d.Key == "bind_address":
			s.dflt.bind = v
			s.dflt.opts[d.Key] = d
		case d.Key == "connection":
			if v == "" {
				return nil, fmt.Errorf("%s: connection without a name", d.Pos())
			}
			br = &bridge{at: d, name: v, opts: map[string]string{}, optsAt: map[string]conf.Directive{}}
			s.bridges = append(s.bridges, br)
		case conf.ListenerOption(d.Key, false):
			cur.opts[d.Key] = d
			switch d.Key {
			case "protocol":
				cur.protocol = v
			case "certfile":
				cur.certFile = v
			case "keyfile":
				cur.keyFile = v
			case "cafile":
				cur.caFile = v
			case "require_certificate":
				cur.requireCert = v == "true"
			case "tls_version":
				cur.tlsVersion = v
			case "max_connections":
				cur.maxConn = atoi(v)
			}
		case securityKeys[d.Key]:
			sec := &s.global
			if s.perListener {
				sec = &cur.sec
			}
			sec.at[d.Key] = d
			switch d.Key {
			case "allow_anonymous":
				b := v == "true"
				sec.allowAnonymous = &b
			case "password_file":
				sec.passwordFile = v
			case "acl_file":
				sec.aclFile = v
			}
		default:
			s.at[d.Key] = d
			switch d.Key {
			case "persistence":
				s.persistence, s.persistenceAt = v == "true", &d
			case "autosave_interval":
				s.autosaveInterval = atoi(v)
			case "log_dest":
				s.logDest = append(s.logDest, v)
				s.logDestAt = append(s.logDestAt, d)
			case "log_type":
				s.logTypes = append(s.logTypes, v)
				s.logTypesAt = &d
			case "connection_messages":
				s.connMsgs, s.connMsgsAt = v == "true", &d
			case "log_timestamp":
				s.logTime, s.logTimeAt = v == "true", &d
			case "max_packet_size":
				s.maxPacket, s.maxPacketAt = atoi(v), &d
			case "max_queued_messages":
				s.maxQueued = atoi(v)
			case "max_inflight_messages":
				s.maxInflight = atoi(v)
			case "persistent_client_expiration":
				s.expiration, s.expAt = v, &d
			case "max_keepalive":
				s.keepalive, s.keepaliveAt = atoi(v), &d
			default:
				s.rest = append(s.rest, d)
			}
		}
	}
	for _, l := range append([]*listener{s.dflt}, s.listeners...) {
		if (l.certFile == "") != (l.keyFile == "") {
			d := l.opts["certfile"]
			if d.File == "" {
				d = l.opts["keyfile"]
			}
			return nil, fmt.Errorf("%s: certfile and keyfile go together: Mosquitto refuses to start with one alone", d.Pos())
		}
	}
	// Listener options before any listener configure the default listener,
	// which some of them open on port 1883, all addresses, beside the others.
	for _, k := range slices.Sorted(maps.Keys(s.dflt.opts)) {
		if conf.OpensDefaultListener(k, s.dflt.opts[k].Value) {
			s.dfltBy = append(s.dfltBy, s.dflt.opts[k])
		}
	}
	// Mosquitto 2.0 with no listener at all listens on the loopback
	// interface alone, port 1883, and admits anonymous clients there.
	if len(s.listeners) == 0 || s.hasPort || len(s.dfltBy) > 0 {
		l := s.dflt
		if !s.hasPort && len(s.dfltBy) > 0 {
			l.at = s.dfltBy[0]
		}
		if len(s.listeners) == 0 && !s.hasPort && len(s.dfltBy) == 0 {
			l.bind = "127.0.0.1"
			if s.global.allowAnonymous == nil {
				t := true
				s.global.allowAnonymous = &t
			}
		}
		s.listeners = append([]*listener{l}, s.listeners...)
	}
	return s, nil
}

// securityOf is the security a listener runs with.
func (s *setup) securityOf(l *listener) security {
	if s.perListener {
		return l.sec
	}
	return s.global
}

// atoi reads a number as C's atoi does: leading digits, the rest ignored
// ("10M" is 10), 0 when there are none.
func atoi(v string) int {
	v = strings.TrimSpace(v)
	end := 0
	if end < len(v) && (v[end] == '-' || v[end] == '+') {
		end++
	}
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}

// checkBridgeTopic refuses a bridge topic line Mosquitto refuses to start
// with: PATTERN [in|out|both [QOS [LOCAL REMOTE]]].
func checkBridgeTopic(v string) error {
	f := strings.Fields(v)
	switch {
	case len(f) == 0:
		return fmt.Errorf("no pattern")
	case len(f) > 1 && f[1] != "in" && f[1] != "out" && f[1] != "both":
		return fmt.Errorf("direction %q: want in, out or both", f[1])
	case len(f) > 2 && f[2] != "0" && f[2] != "1" && f[2] != "2":
		return fmt.Errorf("QoS %q: want 0, 1 or 2", f[2])
	case len(f) > 5:
		return fmt.Errorf("too many words: want PATTERN DIRECTION QOS LOCAL_PREFIX REMOTE_PREFIX")
	}
	return nil
}
