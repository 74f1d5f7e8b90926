package deploy

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

// reloadedFiles are re-read on SIGHUP: the password and acl files, and the
// listeners' certificates and keys.
var reloadedFiles = map[string]bool{
	"passwd": true, "acl": true,
	"certs/server.crt": true, "certs/server.key": true, "certs/ca.crt": true, "certs/client-ca.crt": true,
}

// ReloadedOnSIGHUP says the engine (a conf.TableKey) reads the file of its
// config folder at path p (not mosquitto.conf) again on SIGHUP, so that a
// change of it needs no new process.
func ReloadedOnSIGHUP(key, p string) bool {
	return fileForcesRestart(key, p, []byte{0}, []byte{1}) == ""
}

// fileForcesRestart says why a change of a broker file needs a new
// container, or "" when SIGHUP applies it. key is the reload table's
// (conf.TableKey: mosquitto 2.0, mosquitto 2.1, or mqttgen), which reload
// different options.
func fileForcesRestart(key, p string, old, want []byte) string {
	switch {
	case p == "mosquitto.conf":
		if oldKey := conf.TableKey(conf.Mosquitto, old); key == conf.Mosquitto21 && old != nil && oldKey != key {
			return "the dialect changed from Mosquitto 2.0's"
		}
		if key == conf.Bundled {
			if why := conf.RestartReason(key, old, want); why != "" {
				return why + " by the bundled broker"
			}
			return ""
		}
		return conf.RestartReason(key, old, want)
	case reloadedFiles[p]:
		return ""
	case strings.HasPrefix(p, "certs/bridge-") && conf.ReloadsBridges(key):
		return ""
	case strings.HasPrefix(p, "certs/bridge-"):
		return "bridges read their CA only at start"
	case old == nil || want == nil:
		// A file mosquitto.conf does not name yet, or no longer names.
		return ""
	}
	return "Mosquitto reads it only at start"
}

// ValidateFiles checks what Mosquitto would take badly, before every
// SIGHUP and every new container (and, in a Kubernetes pod, the reloader
// before it signals): Mosquitto 2.0 runs without any ACL check
// when the acl file does not parse at SIGHUP and drops users whose hash it
// cannot read; 2.1 quits on either; both refuse a certificate that does
// not match its key. It never runs mosquitto --test-config: with
// persistence on, 2.1 replaces the live database with an empty one
// (upstream issue 3712).
func ValidateFiles(files map[string][]byte) error {
	if data, ok := files["acl"]; ok {
		if _, err := acl.Parse(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("acl: %w (Mosquitto 2.0 would apply no ACL at all, 2.1 would quit)", err)
		}
	}
	if data, ok := files["passwd"]; ok {
		if _, err := passwd.Parse(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("passwd: %w (Mosquitto 2.0 would drop the user, 2.1 would quit)", err)
		}
	}
	crt, key := files["certs/server.crt"], files["certs/server.key"]
	if crt != nil || key != nil {
		if _, err := tls.X509KeyPair(crt, key); err != nil {
			return fmt.Errorf("certs/server.crt and server.key: %w", err)
		}
	}
	return nil
}

// packetLimitChange shows the broker's packet limit when it changes
// without max_packet_size changing: the default is 268,435,455 bytes in
// Mosquitto 2.0 and 2,000,000 in 2.1, so moving a home to 2.1 lowers it.
func packetLimitChange(engineName string, old, want []byte) []Change {
	if old == nil || want == nil || engineName != conf.Mosquitto {
		return nil
	}
	limit := func(file []byte) (int, string) {
		if v := conf.Read("", file).Values("max_packet_size"); len(v) > 0 {
			n, _ := strconv.Atoi(v[len(v)-1])
			return n, v[len(v)-1]
		}
		n := conf.DefaultMaxPacketSize(conf.TableKey(engineName, file))
		return n, fmt.Sprintf("%d (default)", n)
	}
	o, os := limit(old)
	w, ws := limit(want)
	if o == w {
		return nil
	}
	return []Change{{Attr: "max_packet_size", Old: os, New: ws}}
}
