package deploy

import (
	"bytes"
	"crypto/tls"
	"fmt"
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

// fileForcesRestart says why a change of a broker file needs a new
// container, or "" when SIGHUP applies it. engine is the broker's
// (mosquitto or mqttgen), which reload different options.
func fileForcesRestart(engine, p string, old, want []byte) string {
	switch {
	case p == "mosquitto.conf":
		if engine == conf.Bundled {
			if why := conf.RestartReason(engine, old, want); why != "" {
				return why + " by the bundled broker"
			}
			return ""
		}
		return conf.RestartReason(conf.Mosquitto, old, want)
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
