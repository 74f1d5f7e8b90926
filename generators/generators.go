// Package generators turns a checked home into the files a broker runs on.
// Every generator is a pure function of the Config and the Inputs that
// packages secrets and pki resolved beforehand: the same home and secrets
// give byte-identical files.
package generators

import (
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/version"
	"github.com/mqttgen/mqttgen/schema"
)

// Layout says where the broker finds its files.
type Layout struct {
	// ConfigDir holds mosquitto.conf, passwd, acl and certs/ as the broker sees them.
	ConfigDir string
	DataDir   string
	LogDir    string
	// RunAs is Mosquitto's `user` option; empty keeps the broker's default.
	RunAs string
	// Bind says whether listeners bind their own address. In a container
	// they listen on all of its addresses: the host address of `bind` is
	// where compose publishes the port.
	Bind bool
	// PluginDir holds Mosquitto 2.1's mosquitto_acl_file.so and
	// mosquitto_password_file.so.
	PluginDir string
}

// ContainerLayout is the layout of the eclipse-mosquitto image.
var ContainerLayout = Layout{ConfigDir: "/mosquitto/config", DataDir: "/mosquitto/data", LogDir: "/mosquitto/log", PluginDir: "/usr/lib"}

// LocalLayout runs the broker on this host from files rendered into dir
// (absolute). runAs is the user a broker started as root drops to; empty
// when it is started as another user, who keeps running it.
func LocalLayout(dir, runAs string) Layout {
	return Layout{ConfigDir: path.Join(dir, "config"), DataDir: path.Join(dir, "data"), LogDir: path.Join(dir, "log"), RunAs: runAs, Bind: true}
}

// Certs are the PEM files of the TLS listeners.
type Certs struct {
	ServerCert, ServerKey []byte
	// ClientCA verifies client certificates: mqttgen's CA or the user's ca_file.
	ClientCA []byte
	// CA is the certificate clients trust, when mqttgen made the server's.
	CA []byte
}

// Inputs are what rendering needs besides the home.
type Inputs struct {
	Layout Layout
	// Mosquitto is the release the files are for; zero: the home's
	// (cfg.MosquittoVersion). render --local sets the one on PATH.
	Mosquitto version.Version
	// MosquittoSource says where Mosquitto came from when it is not the
	// image's, for the header of mosquitto.conf ("mosquitto on this host").
	MosquittoSource string
	// Passwords in plain text, by account name: only the files that hand a
	// password to a client (Zigbee2MQTT's secret.yaml) use them.
	Passwords map[string]string
	// Hashes of every account's password, by account name.
	Hashes map[string]string
	// BridgePasswords by bridge name.
	BridgePasswords map[string]string
	// BridgeCAs: PEM of each bridge's ca_file, by bridge name.
	BridgeCAs map[string][]byte
	// HomeDir and StateDir are absolute: the home's folder and its state
	// directory, for the files that run mqttgen later (backup schedules).
	HomeDir, StateDir string
	// Certs is nil when no listener serves TLS.
	Certs *Certs
	// ProbePassword and ProbeHash are the healthcheck's login
	// (schema.ProbeUser), generated into the state directory; without
	// them the healthcheck logs in anonymously.
	ProbePassword, ProbeHash string
}

// File is one rendered file, its path relative to the output folder.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

const (
	secretMode fs.FileMode = 0o600
	publicMode fs.FileMode = 0o644
)

// Render returns every file of the home, sorted by path. Each writer checks
// the values it writes with its format's own check and refuses (an error,
// no files) what its file could not carry as it is, even where vet was
// bypassed.
func Render(cfg *schema.Config, in Inputs) ([]File, error) {
	in.Mosquitto = TargetVersion(cfg, in)
	conf, err := MosquittoConf(cfg, in)
	if err != nil {
		return nil, err
	}
	pw, err := Passwd(cfg, in)
	if err != nil {
		return nil, err
	}
	acl, err := ACL(cfg, in)
	if err != nil {
		return nil, err
	}
	files := []File{conf, pw, acl}
	if in.probe() {
		login, err := ProbeLogin(in)
		if err != nil {
			return nil, err
		}
		files = append(files, login)
	}
	files = append(files, CertFiles(cfg, in)...)
	if err := CheckCompose(cfg); err != nil {
		return nil, err
	}
	// Compose reads the rendered config (for the CA of its healthcheck).
	files = append(files, Compose(cfg, files)...)
	if pr := cfg.Monitoring.Prometheus; pr.Enabled && cfg.Broker.Engine == schema.EngineMosquitto {
		// The bundled broker serves /metrics itself; only Mosquitto's
		// exporter logs in.
		f, err := ExporterPassword(cfg, in.Passwords[pr.User])
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	gens := []func(*schema.Config, Inputs) ([]File, error){HomeAssistantFiles, Zigbee2MQTTFiles, BackupScheduleFiles}
	if IsSatellite(cfg) {
		// Home Assistant's discovery of a satellite's devices is the hub's.
		gens = gens[1:]
	}
	for _, gen := range gens {
		more, err := gen(cfg, in)
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// certPath is where the broker finds a file of certs/.
func certPath(l Layout, name string) string { return path.Join(l.ConfigDir, "certs", name) }

// CertFiles are the certificates and keys the listeners and bridges use.
func CertFiles(cfg *schema.Config, in Inputs) []File {
	var out []File
	if c := in.Certs; c != nil {
		out = append(out,
			File{"config/certs/server.crt", publicMode, c.ServerCert},
			File{"config/certs/server.key", secretMode, c.ServerKey},
		)
		if c.CA != nil {
			out = append(out, File{"config/certs/ca.crt", publicMode, c.CA})
		}
		if cfg.TLS != nil && cfg.TLS.RequireClientCertificate {
			out = append(out, File{"config/certs/client-ca.crt", publicMode, c.ClientCA})
		}
	}
	for _, name := range schema.SortedKeys(in.BridgeCAs) {
		out = append(out, File{"config/certs/bridge-" + name + "-ca.crt", publicMode, in.BridgeCAs[name]})
	}
	return out
}

// TargetVersion is the Mosquitto release the files are rendered for.
func TargetVersion(cfg *schema.Config, in Inputs) version.Version {
	if !in.Mosquitto.IsZero() {
		return in.Mosquitto
	}
	if v, ok := cfg.MosquittoVersion(); ok {
		return v
	}
	return version.V2_1 // vet refuses a home without one
}
