package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ReadTree reads the mosquitto.conf at path with Read and, where an
// include_dir line stands, the files ending in .conf of that folder in
// alphabetical order, as Mosquitto does (the include_dir line itself comes
// before them). resolve maps a folder as the file names it (the broker's
// view, say a container path) to where it is here; nil keeps it. A file
// included again while it is being read is an include loop, reported at
// the include_dir line. Section indices are those of each directive's own
// file.
func ReadTree(path string, resolve func(string) string) ([]Directive, error) {
	if resolve == nil {
		resolve = func(p string) string { return p }
	}
	var out []Directive
	var read func(path string, stack []string) error
	read = func(path string, stack []string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return pathError(err)
		}
		stack = append(stack, path)
		for _, d := range Read(path, data).Directives() {
			out = append(out, d)
			if d.Key != "include_dir" {
				continue
			}
			if d.Value == "" {
				return fmt.Errorf("%s: include_dir without a folder", d.Pos())
			}
			dir := resolve(d.Value)
			entries, err := os.ReadDir(dir)
			if err != nil {
				return fmt.Errorf("%s: include_dir %s: %v", d.Pos(), d.Value, pathError(err))
			}
			var names []string
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
					names = append(names, e.Name())
				}
			}
			slices.Sort(names)
			for _, n := range names {
				p := filepath.Join(dir, n)
				if slices.ContainsFunc(stack, func(s string) bool { return sameFile(s, p) }) {
					return fmt.Errorf("%s: include_dir %s includes %s again: an include loop", d.Pos(), d.Value, p)
				}
				if err := read(p, stack); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return out, read(path, nil)
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(sa, sb)
}

// pathError drops the "open" of a PathError: "PATH: permission denied".
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}

// globalOptions are Mosquitto 2.0's options that are neither listener,
// per-listener nor bridge options, beyond those reloaded on SIGHUP.
var globalOptions = set("include_dir", "per_listener_settings", "listener", "port", "bind_address",
	"connection", "user", "pid_file", "persistent_client_expiration", "sys_interval", "global_plugin",
	"plugin_opt", "websockets_log_level", "log_facility", "retain_available")

// Known says Mosquitto 2.0 knows the option; it refuses to start with any
// other. Plugin options (plugin_opt_*, auth_opt_*) are known by prefix.
func Known(option string) bool {
	return reloaded[Mosquitto][option] || listenerOptions[option] || perListenerOptions[option] ||
		bridgeOptions[option] || globalOptions[option] ||
		strings.HasPrefix(option, "plugin_opt_") || strings.HasPrefix(option, "auth_opt_")
}

// options21 are options Mosquitto 2.1 added (FACTS.md): 2.0 refuses to
// start with them, 2.1 serves them.
var options21 = set("listener_allow_anonymous", "listener_auto_id_prefix", "accept_protocol_versions",
	"global_max_clients", "global_max_connections", "http_api", "websockets_origin", "enable_proxy_protocol",
	"bridge_tls_use_os_certs", "persist-sqlite")

// Since21 says the option is one of Mosquitto 2.1's own.
func Since21(option string) bool { return options21[option] }

// optionDefaults are Mosquitto 2.0's defaults of options mqttgen does not
// render: the value that means the same as leaving the option out.
var optionDefaults = map[string]string{
	"autosave_on_changes": "false", "upgrade_outgoing_qos": "false", "allow_duplicate_messages": "false",
	"retain_available": "true", "sys_interval": "10", "allow_zero_length_clientid": "true",
	"check_retain_source": "false", "set_tcp_nodelay": "false", "queue_qos0_messages": "false",
	"max_queued_bytes": "0", "max_inflight_bytes": "0", "memory_limit": "0", "max_qos": "2",
	"auto_id_prefix": "auto-", "use_username_as_clientid": "false", "use_identity_as_username": "false",
	"use_subject_as_username": "false", "bridge_insecure": "false", "try_private": "true",
	"start_type": "automatic", "max_topic_alias": "10", "websockets_log_level": "0",
	"bridge_tls_version": "tlsv1.2", "require_certificate": "false",
}

// IsDefault says value is Mosquitto 2.0's default of option, so that the
// line changes nothing.
func IsDefault(option, value string) bool {
	v, ok := optionDefaults[option]
	return ok && v == value
}

// opensDefault are the listener options that, given before any listener,
// make Mosquitto 2.0 open its default listener on port 1883, all
// addresses, beside the others (observed on 2.0.11 for max_connections and
// certfile; not for tls_version or require_certificate; the rest as its
// config__read decides).
var opensDefault = set("bind_address", "max_connections", "certfile", "keyfile", "cafile", "capath",
	"ciphers", "crlfile", "mount_point", "protocol", "max_qos", "socket_domain", "use_identity_as_username",
	"use_subject_as_username", "use_username_as_clientid", "psk_hint", "http_dir")

// OpensDefaultListener says the listener option, given before any
// listener with value, opens the default listener on port 1883.
func OpensDefaultListener(option, value string) bool {
	switch option {
	case "protocol":
		return value != "mqtt"
	case "max_connections":
		return value != "-1"
	}
	return opensDefault[option]
}
