package deploy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

// reloadedOptions are the global mosquitto.conf options Mosquitto 2.0
// applies again on SIGHUP (mosquitto.conf(5): "Reloaded on reload signal").
// Listener and bridge options are read only at start.
var reloadedOptions = map[string]bool{
	"acl_file": true, "allow_anonymous": true, "allow_duplicate_messages": true, "allow_zero_length_clientid": true,
	"auto_id_prefix": true, "autosave_interval": true, "autosave_on_changes": true, "check_retain_source": true,
	"clientid_prefixes": true, "connection_messages": true, "log_dest": true, "log_facility": true,
	"log_timestamp": true, "log_timestamp_format": true, "log_type": true, "max_inflight_bytes": true,
	"max_inflight_messages": true, "max_keepalive": true, "max_packet_size": true, "max_queued_bytes": true,
	"max_queued_messages": true, "memory_limit": true, "message_size_limit": true, "password_file": true,
	"persistence": true, "persistence_file": true, "persistence_location": true, "persistent_client_expiration": true,
	"queue_qos0_messages": true, "retain_available": true, "set_tcp_nodelay": true, "sys_interval": true,
	"upgrade_outgoing_qos": true,
}

// bundledReloadedOptions are those the bundled broker (broker.engine
// "mqttgen") applies again on SIGHUP: security, log_type and
// connection_messages (docs/broker.md, Signals). It reads limits,
// persistence and the other logging options only at start, so a change of
// them needs a new container where Mosquitto would reload it.
var bundledReloadedOptions = map[string]bool{
	"allow_anonymous": true, "password_file": true, "acl_file": true,
	"log_type": true, "connection_messages": true,
}

// reloadedFiles are re-read on SIGHUP: the password and acl files, and the
// listeners' certificates and keys.
var reloadedFiles = map[string]bool{
	"passwd": true, "acl": true,
	"certs/server.crt": true, "certs/server.key": true, "certs/ca.crt": true, "certs/client-ca.crt": true,
}

// fileForcesRestart says why a change of a broker file needs a new
// container, or "" when SIGHUP applies it. engine is the broker's
// (mosquitto or mqttgen), which reload different options.
func fileForcesRestart(engine, p string, old, want []byte) string {
	switch {
	case p == "mosquitto.conf":
		if engine == "mqttgen" {
			if why := confForcesRestart(old, want, bundledReloadedOptions); why != "" {
				return why + " by the bundled broker"
			}
			return ""
		}
		return confForcesRestart(old, want, reloadedOptions)
	case reloadedFiles[p]:
		return ""
	case strings.HasPrefix(p, "certs/bridge-"):
		return "bridges read their CA only at start"
	case old == nil || want == nil:
		// A file mosquitto.conf does not name yet, or no longer names.
		return ""
	}
	return "Mosquitto reads it only at start"
}

// confSection is a listener or bridge block of mosquitto.conf.
type confSection struct {
	head  string
	lines []string
}

// parseConf splits mosquitto.conf into global options and sections, without
// comments and blank lines.
func parseConf(data []byte) (global map[string][]string, sections []confSection) {
	global = map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var cur *confSection
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, _ := strings.Cut(line, " ")
		if key == "listener" || key == "connection" {
			sections = append(sections, confSection{head: line})
			cur = &sections[len(sections)-1]
			continue
		}
		if cur != nil {
			cur.lines = append(cur.lines, line)
			continue
		}
		global[key] = append(global[key], line)
	}
	return global, sections
}

// confForcesRestart compares two mosquitto.conf files; reloaded are the
// global options the broker applies again on SIGHUP.
func confForcesRestart(old, want []byte, reloaded map[string]bool) string {
	if old == nil {
		return "mosquitto.conf is new"
	}
	og, os := parseConf(old)
	wg, ws := parseConf(want)
	var fixed []string
	for _, k := range sortedKeys(union(og, wg)) {
		if !slices.Equal(og[k], wg[k]) && !reloaded[k] {
			fixed = append(fixed, k)
		}
	}
	if len(fixed) > 0 {
		return fmt.Sprintf("option %s is read only at start", strings.Join(fixed, ", "))
	}
	if !slices.EqualFunc(os, ws, func(a, b confSection) bool { return a.head == b.head && slices.Equal(a.lines, b.lines) }) {
		return "listener and bridge options are read only at start"
	}
	return ""
}

func union(a, b map[string][]string) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// validateFiles checks what Mosquitto would take badly, before anything is
// changed: Mosquitto 2.0 runs without any ACL check when the acl file does
// not parse at SIGHUP, drops users whose hash it cannot read, and refuses a
// certificate that does not match its key.
func validateFiles(files map[string][]byte) error {
	if data, ok := files["acl"]; ok {
		if _, err := acl.Parse(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("acl: %w (Mosquitto 2.0 would apply no ACL at all)", err)
		}
	}
	if data, ok := files["passwd"]; ok {
		if _, err := passwd.Parse(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("passwd: %w (Mosquitto 2.0 would drop the user)", err)
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
