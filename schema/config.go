package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Config is a home.cue after validation: every default filled in, every
// field checked. The json tags are the field names users write.
type Config struct {
	Broker        Broker              `json:"broker"`
	Listeners     map[string]Listener `json:"listeners"`
	TLS           *TLS                `json:"tls,omitempty"`
	Anonymous     Anonymous           `json:"anonymous"`
	Users         map[string]User     `json:"users"`
	Patterns      []string            `json:"patterns"`
	DevicesTopic  string              `json:"devices_topic"`
	Devices       map[string]Device   `json:"devices"`
	Persistence   Persistence         `json:"persistence"`
	Logging       Logging             `json:"logging"`
	Limits        Limits              `json:"limits"`
	Bridges       map[string]Bridge   `json:"bridges"`
	Backup        *Backup             `json:"backup,omitempty"`
	HomeAssistant *HomeAssistant      `json:"homeassistant,omitempty"`
	Zigbee2MQTT   *Zigbee2MQTT        `json:"zigbee2mqtt,omitempty"`
	Monitoring    Monitoring          `json:"monitoring"`
	Deploy        Deploy              `json:"deploy"`
	Expect        []Expect            `json:"expect"`
	Sites         map[string]Site     `json:"sites,omitempty"`

	// RemoteDevices are the devices that log in at another site: in the
	// hub's view of a home with sites (see package generators' SiteConfig)
	// they are known for Home Assistant's discovery and ACL, but have no
	// login here. Never set by loading.
	RemoteDevices map[string]bool `json:"-"`
	// SiteName is the site a view of a home with sites is of (see
	// package generators' SiteConfig); "" for a home. Never set by loading.
	SiteName string `json:"-"`

	pos *positions
}

// fillDefaults sets the defaults the CUE schema cannot carry: a default list
// of enumerations makes CUE report the user's list against the default
// element by element when the list has an error.
func (c *Config) fillDefaults() {
	if c.Logging.Destinations == nil {
		c.Logging.Destinations = []string{"stderr"}
	}
	if c.Logging.Types == nil {
		c.Logging.Types = []string{"error", "warning", "notice", "information"}
	}
}

// Errorf makes a diagnostic at the user's text of path (e.g.
// "users.admin.password"), for problems found after loading.
func (c *Config) Errorf(path, format string, args ...any) Diagnostic {
	d := Diagnostic{Path: path, Msg: fmt.Sprintf(format, args...)}
	if c.pos != nil {
		d.Pos = c.pos.of(path)
	}
	return d
}

// Broker engines.
const (
	EngineMosquitto = "mosquitto"
	EngineMqttgen   = "mqttgen"
)

// DefaultMosquittoImage is the image of engine "mosquitto" when none is set.
const DefaultMosquittoImage = "eclipse-mosquitto:2.1.2"

// ProbeUser is the account of the container's healthcheck: it logs in so
// that neither engine logs a refused login every 30 seconds, and its acl
// section denies everything. Its password is generated into the state
// directory like an account's. Names beginning with ReservedUserPrefix are
// mqttgen's own: #UserName refuses them, and so does vet's own check.
const (
	ProbeUser          = "mqttgen.healthcheck"
	ReservedUserPrefix = "mqttgen."
)

type Broker struct {
	Engine             string `json:"engine"`
	Image              string `json:"image,omitempty"`
	Version            string `json:"version,omitempty"`
	Hostname           string `json:"hostname"`
	PasswordIterations int    `json:"password_iterations"`
}

type Listener struct {
	Port      int    `json:"port"`
	Bind      string `json:"bind,omitempty"`
	Protocol  string `json:"protocol"`
	TLS       bool   `json:"tls"`
	Anonymous *bool  `json:"anonymous,omitempty"`
	// Protocols are the MQTT versions accepted ("3.1", "3.1.1", "5");
	// nil accepts every one.
	Protocols []string `json:"protocols,omitempty"`
}

// Accepts reports whether the listener accepts the MQTT version ("5").
func (l Listener) Accepts(protocol string) bool {
	return l.Protocols == nil || slices.Contains(l.Protocols, protocol)
}

type TLS struct {
	ServerNames              []string `json:"server_names"`
	MinVersion               string   `json:"min_version"`
	RequireClientCertificate bool     `json:"require_client_certificate"`
	CertFile                 string   `json:"cert_file,omitempty"`
	KeyFile                  string   `json:"key_file,omitempty"`
	CAFile                   string   `json:"ca_file,omitempty"`
}

type Anonymous struct {
	Allowed bool     `json:"allowed"`
	ACL     []string `json:"acl"`
}

// Secret names where an existing password lives. Exactly one field is set.
type Secret struct {
	File string `json:"file,omitempty"`
	Env  string `json:"env,omitempty"`
	// Hash is `password: "hash"`: the account's hash is kept in the state
	// directory as imported; its password is unknown.
	Hash bool `json:"-"`
}

// HashSource is how home.cue spells a kept hash.
const HashSource = "hash"

// UnmarshalJSON reads {file: ...}, {env: ...} or "hash".
func (s *Secret) UnmarshalJSON(data []byte) error {
	if string(data) == `"`+HashSource+`"` {
		*s = Secret{Hash: true}
		return nil
	}
	type plain Secret
	return json.Unmarshal(data, (*plain)(s))
}

// MarshalJSON writes what UnmarshalJSON reads.
func (s Secret) MarshalJSON() ([]byte, error) {
	if s.Hash {
		return []byte(`"` + HashSource + `"`), nil
	}
	type plain Secret
	return json.Marshal(plain(s))
}

type User struct {
	Password *Secret  `json:"password,omitempty"`
	Preset   string   `json:"preset,omitempty"`
	ACL      []string `json:"acl"`
	Site     string   `json:"site,omitempty"`
}

// Device kinds: the firmware whose topic layout a device follows.
const (
	KindGeneric = "generic"
	KindESPHome = "esphome"
	KindShelly  = "shelly"
	KindTasmota = "tasmota"
)

type Device struct {
	Kind         string            `json:"kind"`
	TopicPrefix  string            `json:"topic_prefix,omitempty"`
	Publishes    []string          `json:"publishes"`
	Subscribes   []string          `json:"subscribes"`
	Password     *Secret           `json:"password,omitempty"`
	Availability bool              `json:"availability"`
	Manufacturer string            `json:"manufacturer,omitempty"`
	Model        string            `json:"model,omitempty"`
	Entities     map[string]Entity `json:"entities"`
	Site         string            `json:"site,omitempty"`
}

type Entity struct {
	Component   string `json:"component"`
	Name        string `json:"name,omitempty"`
	DeviceClass string `json:"device_class,omitempty"`
	Unit        string `json:"unit,omitempty"`
	State       string `json:"state,omitempty"`
	Command     string `json:"command,omitempty"`
	EntityID    string `json:"entity_id,omitempty"`
	Shelly      string `json:"shelly,omitempty"`
}

type Persistence struct {
	Enabled          bool   `json:"enabled"`
	AutosaveInterval string `json:"autosave_interval"`
}

type Logging struct {
	Destinations       []string `json:"destinations"`
	Types              []string `json:"types"`
	ConnectionMessages bool     `json:"connection_messages"`
	Timestamps         bool     `json:"timestamps"`
}

type Limits struct {
	MaxConnections             int    `json:"max_connections"`
	MaxPacketSize              string `json:"max_packet_size,omitempty"`
	MaxQueuedMessages          int    `json:"max_queued_messages"`
	MaxInflightMessages        int    `json:"max_inflight_messages"`
	PersistentClientExpiration string `json:"persistent_client_expiration,omitempty"`
	MaxKeepalive               string `json:"max_keepalive,omitempty"`
}

type Bridge struct {
	Address      string        `json:"address"`
	TLS          bool          `json:"tls"`
	Protocol     string        `json:"protocol"`
	ClientID     string        `json:"client_id,omitempty"`
	Username     string        `json:"username,omitempty"`
	Password     *Secret       `json:"password,omitempty"`
	CAFile       string        `json:"ca_file,omitempty"`
	CleanSession bool          `json:"clean_session"`
	Topics       []BridgeTopic `json:"topics"`

	// Site is set on the bridge mqttgen generates from a satellite to the
	// hub (never by loading): its login, the hub's CA, its queue.
	Site *SiteBridge `json:"-"`
}

// SiteBridge is what a generated satellite-to-hub bridge needs besides
// what home.cue can say of a bridge.
type SiteBridge struct {
	// Account is the hub's user the bridge logs in as; its password is
	// generated in the state directory.
	Account string
	// HubCA says the hub serves TLS with mqttgen's CA: the bridge trusts it.
	HubCA bool
	// TryPrivate false: the hub is the bundled broker, which refuses
	// Mosquitto's bridge protocol levels (0x83/0x84).
	TryPrivate bool
}

// Site is one broker of a home with several: its Docker engine, its name
// on the network, whether it is the hub.
type Site struct {
	DockerHost     string              `json:"docker_host"`
	DockerCertPath string              `json:"docker_cert_path,omitempty"`
	Hostname       string              `json:"hostname"`
	Hub            bool                `json:"hub"`
	Engine         string              `json:"engine,omitempty"`
	Image          string              `json:"image,omitempty"`
	Share          []Share             `json:"share"`
	Listeners      map[string]Listener `json:"listeners,omitempty"`
}

// Share is a topic a satellite bridges besides its devices'.
type Share struct {
	Pattern      string `json:"pattern"`
	Direction    string `json:"direction"`
	QoS          int    `json:"qos"`
	LocalPrefix  string `json:"local_prefix,omitempty"`
	RemotePrefix string `json:"remote_prefix,omitempty"`
}

type BridgeTopic struct {
	Pattern      string `json:"pattern"`
	Direction    string `json:"direction"`
	QoS          int    `json:"qos"`
	LocalPrefix  string `json:"local_prefix,omitempty"`
	RemotePrefix string `json:"remote_prefix,omitempty"`
}

type Backup struct {
	Dir      string `json:"dir"`
	Keep     int    `json:"keep"`
	Schedule string `json:"schedule,omitempty"`
}

type HomeAssistant struct {
	User            string `json:"user"`
	DiscoveryPrefix string `json:"discovery_prefix"`
}

type Zigbee2MQTT struct {
	User      string `json:"user"`
	BaseTopic string `json:"base_topic"`
}

type Monitoring struct {
	Prometheus Prometheus `json:"prometheus"`
}

type Prometheus struct {
	Enabled bool   `json:"enabled"`
	Port    int    `json:"port"`
	User    string `json:"user"`
}

type Deploy struct {
	Project    string      `json:"project"`
	Target     string      `json:"target"`
	Kubernetes *Kubernetes `json:"kubernetes,omitempty"`
}

// Deploy targets.
const (
	TargetDocker     = "docker"
	TargetKubernetes = "kubernetes"
)

type Kubernetes struct {
	Namespace    string `json:"namespace"`
	StorageClass string `json:"storage_class,omitempty"`
	ServiceType  string `json:"service_type"`
	KubeContext  string `json:"kube_context,omitempty"`
}

// Image is the broker image: the configured one, or the engine's default.
func (b Broker) ImageRef() string {
	if b.Image != "" {
		return b.Image
	}
	if b.Engine == EngineMqttgen {
		return "mqttgen/broker:latest"
	}
	return DefaultMosquittoImage
}

// ReadsLongSalts reports whether the broker reads the 64-byte salts of
// Mosquitto 2.1's $7$ hashes: an eclipse-mosquitto image of 2.1 or later
// (a tag "2", "latest" or none is the newest release, 2.1.x). Mosquitto 2.0
// and the bundled broker read only 12-byte salts.
func (b Broker) ReadsLongSalts() bool {
	if b.Engine != EngineMosquitto {
		return false
	}
	ref := b.ImageRef()
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	tag := "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		tag = ref[i+1:]
	}
	if tag == "latest" || tag == "2" || strings.HasPrefix(tag, "2-") {
		return true
	}
	var major, minor int
	if n, _ := fmt.Sscanf(tag, "%d.%d", &major, &minor); n < 2 {
		return false
	}
	return major > 2 || (major == 2 && minor >= 1)
}

// Account is one login of the broker: a user or a device.
type Account struct {
	Name     string
	Password *Secret
	Device   bool
}

// Accounts lists every login, users and devices, sorted by name.
func (c *Config) Accounts() []Account {
	var out []Account
	for name, u := range c.Users {
		out = append(out, Account{Name: name, Password: u.Password})
	}
	for name, d := range c.Devices {
		if c.RemoteDevices[name] {
			continue
		}
		out = append(out, Account{Name: name, Password: d.Password, Device: true})
	}
	slices.SortFunc(out, func(a, b Account) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// HasTLS reports whether any listener serves TLS.
func (c *Config) HasTLS() bool {
	for _, l := range c.Listeners {
		if l.TLS {
			return true
		}
	}
	return false
}

// AnonymousOn reports whether the listener admits clients without a login.
func (c *Config) AnonymousOn(l Listener) bool {
	if l.Anonymous != nil {
		return *l.Anonymous
	}
	return c.Anonymous.Allowed
}

// PerListenerSettings reports whether a listener overrides anonymous access,
// which Mosquitto can express only with per_listener_settings.
func (c *Config) PerListenerSettings() bool {
	for _, l := range c.Listeners {
		if l.Anonymous != nil && *l.Anonymous != c.Anonymous.Allowed {
			return true
		}
	}
	return false
}

// SortedKeys returns the keys of a map in order, for deterministic output.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
