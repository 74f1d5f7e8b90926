package conf

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The engines a mosquitto.conf is served by, as broker.engine names them.
// A Mosquitto version whose tables differ gets its own key here.
const (
	// Mosquitto is eclipse-mosquitto 2.0.
	Mosquitto = "mosquitto"
	// Bundled is mqttgen's own broker (mqttgen broker, package broker).
	Bundled = "mqttgen"
)

// reloaded are, per engine, the global options applied again on SIGHUP.
// Listener and bridge options are read only at start by both.
var reloaded = map[string]map[string]bool{
	// mosquitto.conf(5): "Reloaded on reload signal".
	Mosquitto: set("acl_file", "allow_anonymous", "allow_duplicate_messages", "allow_zero_length_clientid",
		"auto_id_prefix", "autosave_interval", "autosave_on_changes", "check_retain_source",
		"clientid_prefixes", "connection_messages", "log_dest", "log_facility",
		"log_timestamp", "log_timestamp_format", "log_type", "max_inflight_bytes",
		"max_inflight_messages", "max_keepalive", "max_packet_size", "max_queued_bytes",
		"max_queued_messages", "memory_limit", "message_size_limit", "password_file",
		"persistence", "persistence_file", "persistence_location", "persistent_client_expiration",
		"queue_qos0_messages", "retain_available", "set_tcp_nodelay", "sys_interval",
		"upgrade_outgoing_qos"),
	// The bundled broker (broker.Broker.reload, docs/broker.md, Signals)
	// applies security, log_type and connection_messages again; limits,
	// persistence and the other logging options only at start.
	Bundled: set("allow_anonymous", "password_file", "acl_file", "log_type", "connection_messages"),
}

// Reloads says engine applies the global option again on SIGHUP.
func Reloads(engine, option string) bool { return reloaded[engine][option] }

// Reloaded are the global options engine applies again on SIGHUP, sorted.
func Reloaded(engine string) []string { return slices.Sorted(maps.Keys(reloaded[engine])) }

// RestartReason compares two versions of a mosquitto.conf and says why
// engine needs a new process to apply the change, or "" when SIGHUP
// applies it. old is nil when there was no file.
func RestartReason(engine string, old, want []byte) string {
	if old == nil {
		return "mosquitto.conf is new"
	}
	o, w := Read("old", old), Read("new", want)
	var fixed []string
	keys := map[string]bool{}
	for _, d := range append(o.Global, w.Global...) {
		keys[d.Key] = true
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !slices.Equal(o.Values(k), w.Values(k)) && !Reloads(engine, k) {
			fixed = append(fixed, k)
		}
	}
	if len(fixed) > 0 {
		return fmt.Sprintf("option %s is read only at start", strings.Join(fixed, ", "))
	}
	if !slices.EqualFunc(o.Sections, w.Sections, sameSection) {
		return "listener and bridge options are read only at start"
	}
	return ""
}

func sameSection(a, b Section) bool {
	same := func(x, y Directive) bool { return x.Key == y.Key && x.Value == y.Value }
	return same(a.Head, b.Head) && slices.EqualFunc(a.Directives, b.Directives, same)
}

// secret are the options whose value is a secret in plain text: a plan
// shows a digest of it, a backup leaves it out.
var secret = set("remote_password", "local_password", "bridge_psk", "psk")

// Secret says the option's value is a secret.
func Secret(option string) bool { return secret[option] }

// secretFile are the options naming a file that holds secrets.
var secretFile = set("keyfile", "bridge_keyfile", "password_file", "psk_file")

// NamesSecretFile says the option's value is the path of a file holding
// secrets (a private key, password hashes, pre-shared keys).
func NamesSecretFile(option string) bool { return secretFile[option] }

// Database is the name of the engine's persistence database in
// persistence_location when persistence_file does not name one; "" for
// an engine this package does not know. The two engines do not read each
// other's.
func Database(engine string) string {
	return map[string]string{Mosquitto: "mosquitto.db", Bundled: "mqttgen-broker.db"}[engine]
}

// listenerOptions are Mosquitto 2.0's options that belong to the listener
// above them (mosquitto.conf(5), Listeners), those of per_listener_settings
// aside.
var listenerOptions = set("bind_interface", "http_dir", "max_connections", "max_qos", "max_topic_alias",
	"mount_point", "protocol", "socket_domain", "use_username_as_clientid", "websockets_headers_size",
	"certfile", "keyfile", "cafile", "capath", "ciphers", "ciphers_tls1.3", "crlfile", "dhparamfile",
	"require_certificate", "tls_engine", "tls_engine_kpass_sha1", "tls_keyform", "tls_version",
	"use_identity_as_username", "use_subject_as_username", "psk_hint")

// perListenerOptions belong to the listener above them when
// per_listener_settings is true, else they are global.
var perListenerOptions = set("allow_anonymous", "password_file", "acl_file", "psk_file", "auth_plugin",
	"plugin", "plugin_opt", "auth_opt", "auto_id_prefix", "allow_zero_length_clientid")

// bridgeOptions are Mosquitto 2.0's options that belong to the connection
// (bridge) above them (mosquitto.conf(5), Bridges).
var bridgeOptions = set("address", "addresses", "bridge_attempt_unsubscribe", "bridge_bind_address",
	"bridge_insecure", "bridge_max_packet_size", "bridge_outgoing_retain", "bridge_protocol_version",
	"bridge_receive_maximum", "bridge_reload_type", "bridge_session_expiry_interval", "bridge_tcp_keepalive",
	"bridge_tcp_user_timeout", "cleansession", "local_cleansession", "local_clientid", "local_password",
	"local_username", "notifications", "notifications_local_only", "notification_topic",
	"keepalive_interval", "idle_timeout", "remote_clientid", "remote_password", "remote_username",
	"restart_timeout", "round_robin", "start_type", "threshold", "topic", "try_private",
	"bridge_cafile", "bridge_capath", "bridge_certfile", "bridge_keyfile", "bridge_alpn",
	"bridge_identity", "bridge_psk", "bridge_require_ocsp", "bridge_tls_version")

// ListenerOption says the option belongs to the listener above it; with
// perListener (per_listener_settings true) the security options too.
func ListenerOption(option string, perListener bool) bool {
	return listenerOptions[option] || perListener && perListenerOptions[option]
}

// BridgeOption says the option belongs to the connection above it.
func BridgeOption(option string) bool { return bridgeOptions[option] }

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}
