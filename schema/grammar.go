package schema

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/distribution/reference"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/version"
)

// A Grammar is the set of values one kind of field may hold: every string of
// home.cue that reaches a rendered file has one (StringFields lists them), so
// that no value can end a line, open a section or change a word of the file
// it lands in. Check returns the cause and the fix.
type Grammar struct {
	Name  string
	Check func(string) error
}

// maxMQTTString is the longest string MQTT carries (a two-byte length).
const maxMQTTString = 65535

// plain refuses what no rendered file can carry as it is: invalid UTF-8,
// control characters (newlines, tabs, NUL, DEL, C1) and, when edges is set,
// leading or trailing white space, which Mosquitto strips from a line.
func plain(s string, edges bool) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("holds the control character %U, which would end or break the line it is written on: remove it", r)
		}
	}
	if edges && strings.TrimFunc(s, unicode.IsSpace) != s {
		return errors.New("has leading or trailing white space, which Mosquitto and YAML readers strip: remove it")
	}
	return nil
}

// word is plain text without any white space, at most max bytes.
func word(s string, max int) error {
	if s == "" {
		return errors.New("is empty")
	}
	if err := plain(s, true); err != nil {
		return err
	}
	if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return errors.New("holds a space: Mosquitto's option takes one word")
	}
	if len(s) > max {
		return fmt.Errorf("is %d bytes long: at most %d", len(s), max)
	}
	return nil
}

// The grammars of home.cue's strings.
var (
	// Text is free text that reaches YAML and JSON (Home Assistant's entity
	// names, units, device classes, manufacturers, models): one line.
	Text = Grammar{"text", func(s string) error {
		if err := plain(s, true); err != nil {
			return err
		}
		if len(s) > 255 {
			return fmt.Errorf("is %d bytes long: at most 255", len(s))
		}
		return nil
	}}
	// FilePath names a file mqttgen reads (certificates, password files,
	// the backup folder).
	FilePath = Grammar{"file path", func(s string) error {
		if strings.TrimSpace(s) == "" {
			return errors.New("is empty: give a path")
		}
		return plain(s, true)
	}}
	// EnvName is an environment variable's name.
	EnvName = Grammar{"environment variable name", func(s string) error {
		if !envNameRE.MatchString(s) {
			return errors.New("is not an environment variable name: letters, digits and '_', not starting with a digit")
		}
		return nil
	}}
	// Host is a DNS name or an IP address.
	Host = Grammar{"host", func(s string) error {
		if !validHost(s) {
			return errors.New("is not a DNS name or IP address")
		}
		return nil
	}}
	// IP is an IP address (listeners' bind).
	IP = Grammar{"IP address", func(s string) error {
		if net.ParseIP(s) == nil {
			return errors.New(`is not an IP address: write the address to listen on, e.g. "0.0.0.0" or "127.0.0.1"`)
		}
		return nil
	}}
	// HostPort is a bridge's address: host:port. An IPv6 literal is
	// refused: Mosquitto 2.0.11 splits the address at its last ':' and then
	// fails to resolve "[::1]" (seen here), so no form of it works on both
	// engines.
	HostPort = Grammar{"host:port", func(s string) error {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return errors.New(`want host:port, e.g. "broker.example.com:8883"`)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("port must be a number from 1 to 65535")
		}
		if !validHost(host) {
			return fmt.Errorf("%q is not a DNS name or IP address", host)
		}
		if strings.Contains(host, ":") {
			return fmt.Errorf("%q is an IPv6 address, which Mosquitto's bridge address cannot carry: use a DNS name for it", host)
		}
		return nil
	}}
	// ImageRef is a container image reference, as the Docker engine reads it.
	ImageRef = Grammar{"image reference", func(s string) error {
		if err := plain(s, true); err != nil {
			return err
		}
		if _, err := reference.ParseNormalizedNamed(s); err != nil {
			return fmt.Errorf("is not an image reference (%v): write NAME[:TAG][@DIGEST], e.g. %q", err, DefaultMosquittoImage)
		}
		return nil
	}}
	// MQTTWord is a bridge's remote username or client id: one word of an
	// MQTT string.
	MQTTWord = Grammar{"MQTT username or client id", func(s string) error { return word(s, maxMQTTString) }}
	// Password is a password read from a file or the environment: one
	// line, as Mosquitto's remote_password and a CONNECT carry it.
	Password = Grammar{"password", func(s string) error {
		if s == "" {
			return errors.New("is empty")
		}
		if err := plain(s, true); err != nil {
			return err
		}
		if len(s) > maxMQTTString {
			return fmt.Errorf("is %d bytes long: MQTT carries at most %d", len(s), maxMQTTString)
		}
		return nil
	}}
	// TopicRoot is one or more plain topic levels (devices_topic,
	// zigbee2mqtt.base_topic), which rules and topics are built on.
	TopicRoot = Grammar{"topic root", func(s string) error {
		if err := plain(s, true); err != nil {
			return err
		}
		return checkTopicRoot(s)
	}}
	// BridgePattern is a topic filter on a bridge's topic line, where
	// words are split at spaces and "" means empty.
	BridgePattern = Grammar{"bridge topic pattern", func(s string) error {
		if err := acl.CheckFilter(s, false); err != nil {
			return err
		}
		if strings.ContainsAny(s, " \"") || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			return fmt.Errorf("%q holds a space or quote, which Mosquitto's topic line cannot carry", s)
		}
		return nil
	}}
	// BridgePrefix is a bridge's local or remote prefix: plain levels and a
	// trailing '/'.
	BridgePrefix = Grammar{"bridge topic prefix", func(s string) error {
		if err := plain(s, true); err != nil {
			return err
		}
		switch {
		case strings.ContainsAny(s, "+#"):
			return fmt.Errorf("%q holds a wildcard: a prefix is plain levels, e.g. \"cloud/\"", s)
		case strings.ContainsAny(s, " \"") || strings.IndexFunc(s, unicode.IsSpace) >= 0:
			return fmt.Errorf("%q holds a space or quote, which Mosquitto's topic line cannot carry", s)
		case !strings.HasSuffix(s, "/"):
			return fmt.Errorf("%q does not end in '/': Mosquitto glues prefix and topic together, so write %q", s, s+"/")
		}
		return nil
	}}
	// Rule is an ACL rule, ACCESS TOPIC.
	Rule = Grammar{"ACL rule", func(s string) error { _, err := acl.ParseRule(s, false); return err }}
	// PatternRule is an ACL pattern, where %u and %c may stand.
	PatternRule = Grammar{"ACL pattern", func(s string) error { _, err := acl.ParseRule(s, true); return err }}
	// CronExpr is a five-field cron expression systemd can express.
	CronExpr = Grammar{"cron expression", func(s string) error { _, err := ParseCron(s); return err }}
	// Release is a Mosquitto release, as broker.version takes it ("2.1.2").
	Release = Grammar{"Mosquitto release", func(s string) error { _, err := version.Parse(s); return err }}
	// Closed strings are checked elsewhere against a fixed set (the CUE
	// schema's enumerations, units, a map key, an account's name): a
	// closed value can only be one of a few known words.
	Closed = Grammar{"closed", func(string) error { return nil }}
)

// StringField is one string of a home with the grammar it must follow.
type StringField struct {
	Path    string
	Value   string
	Grammar Grammar
}

// StringFields lists every string field of the home that is set, with its
// grammar. A test fills every string field of Config and checks that this
// list names it, so a new field cannot reach a file without a grammar.
func (c *Config) StringFields() []StringField {
	var out []StringField
	must := func(path, value string, g Grammar) { out = append(out, StringField{path, value, g}) }
	add := func(path, value string, g Grammar) {
		if value != "" {
			must(path, value, g)
		}
	}
	secret := func(path string, s *Secret) {
		if s == nil {
			return
		}
		add(path+".file", s.File, FilePath)
		add(path+".env", s.Env, EnvName)
	}
	list := func(path string, values []string, g Grammar) {
		for i, v := range values {
			out = append(out, StringField{at(path, i), v, g})
		}
	}
	add("broker.engine", c.Broker.Engine, Closed)
	add("broker.image", c.Broker.Image, ImageRef)
	add("broker.version", c.Broker.Version, Release)
	must("broker.hostname", c.Broker.Hostname, Host)
	for _, name := range SortedKeys(c.Listeners) {
		l := c.Listeners[name]
		add(Path("listeners", name, "bind"), l.Bind, IP)
		add(Path("listeners", name, "protocol"), l.Protocol, Closed)
		list(Path("listeners", name, "protocols"), l.Protocols, Closed)
	}
	if t := c.TLS; t != nil {
		list("tls.server_names", t.ServerNames, Host)
		add("tls.min_version", t.MinVersion, Closed)
		add("tls.cert_file", t.CertFile, FilePath)
		add("tls.key_file", t.KeyFile, FilePath)
		add("tls.ca_file", t.CAFile, FilePath)
	}
	list("anonymous.acl", c.Anonymous.ACL, Rule)
	for _, name := range SortedKeys(c.Users) {
		u := c.Users[name]
		secret(Path("users", name, "password"), u.Password)
		add(Path("users", name, "preset"), u.Preset, Closed)
		list(Path("users", name, "acl"), u.ACL, Rule)
		add(Path("users", name, "site"), u.Site, Closed) // #Name, and a site that exists
	}
	list("patterns", c.Patterns, PatternRule)
	must("devices_topic", c.DevicesTopic, TopicRoot)
	for _, name := range SortedKeys(c.Devices) {
		d := c.Devices[name]
		p := Path("devices", name)
		// publishes, subscribes, state and command are #Name in the CUE schema.
		list(p+".publishes", d.Publishes, Closed)
		list(p+".subscribes", d.Subscribes, Closed)
		secret(p+".password", d.Password)
		add(p+".manufacturer", d.Manufacturer, Text)
		add(p+".model", d.Model, Text)
		add(p+".kind", d.Kind, Closed)
		add(p+".topic_prefix", d.TopicPrefix, Closed) // checked as a topic root with the kind
		add(p+".site", d.Site, Closed)                // #Name, and a site that exists
		for _, en := range SortedKeys(d.Entities) {
			e := d.Entities[en]
			ep := Path("devices", name, "entities", en)
			add(ep+".component", e.Component, Closed)
			add(ep+".name", e.Name, Text)
			add(ep+".device_class", e.DeviceClass, Text)
			add(ep+".unit", e.Unit, Text)
			add(ep+".state", e.State, Closed)
			add(ep+".command", e.Command, Closed)
			add(ep+".entity_id", e.EntityID, Text)
			add(ep+".shelly", e.Shelly, Text)
		}
	}
	// Durations and sizes are parsed to numbers before they are rendered.
	add("persistence.autosave_interval", c.Persistence.AutosaveInterval, Closed)
	list("logging.destinations", c.Logging.Destinations, Closed)
	list("logging.types", c.Logging.Types, Closed)
	add("limits.max_packet_size", c.Limits.MaxPacketSize, Closed)
	add("limits.persistent_client_expiration", c.Limits.PersistentClientExpiration, Closed)
	add("limits.max_keepalive", c.Limits.MaxKeepalive, Closed)
	for _, name := range SortedKeys(c.Bridges) {
		b := c.Bridges[name]
		p := Path("bridges", name)
		add(p+".address", b.Address, HostPort)
		add(p+".protocol", b.Protocol, Closed)
		add(p+".client_id", b.ClientID, MQTTWord)
		add(p+".username", b.Username, MQTTWord)
		secret(p+".password", b.Password)
		add(p+".ca_file", b.CAFile, FilePath)
		for i, t := range b.Topics {
			tp := Path("bridges", name, "topics", i)
			must(tp+".pattern", t.Pattern, BridgePattern)
			add(tp+".direction", t.Direction, Closed)
			add(tp+".local_prefix", t.LocalPrefix, BridgePrefix)
			add(tp+".remote_prefix", t.RemotePrefix, BridgePrefix)
		}
	}
	for _, name := range SortedKeys(c.Sites) {
		s := c.Sites[name]
		p := Path("sites", name)
		// docker_host is parsed (sites()); it reaches no rendered file.
		add(p+".docker_host", s.DockerHost, Closed)
		add(p+".docker_cert_path", s.DockerCertPath, FilePath)
		must(p+".hostname", s.Hostname, Host)
		add(p+".engine", s.Engine, Closed)
		add(p+".image", s.Image, ImageRef)
		for _, ln := range SortedKeys(s.Listeners) {
			l := s.Listeners[ln]
			add(Path("sites", name, "listeners", ln, "bind"), l.Bind, IP)
			add(Path("sites", name, "listeners", ln, "protocol"), l.Protocol, Closed)
			list(Path("sites", name, "listeners", ln, "protocols"), l.Protocols, Closed)
		}
		for i, t := range s.Share {
			tp := Path("sites", name, "share", i)
			must(tp+".pattern", t.Pattern, BridgePattern)
			add(tp+".direction", t.Direction, Closed)
			add(tp+".local_prefix", t.LocalPrefix, BridgePrefix)
			add(tp+".remote_prefix", t.RemotePrefix, BridgePrefix)
		}
	}
	if b := c.Backup; b != nil {
		add("backup.dir", b.Dir, FilePath)
		add("backup.schedule", b.Schedule, CronExpr)
	}
	// The users these name must exist (checked), so they follow the user
	// name grammar; the discovery prefix is #Name.
	if ha := c.HomeAssistant; ha != nil {
		add("homeassistant.user", ha.User, Closed)
		add("homeassistant.discovery_prefix", ha.DiscoveryPrefix, Closed)
	}
	if z := c.Zigbee2MQTT; z != nil {
		add("zigbee2mqtt.user", z.User, Closed)
		must("zigbee2mqtt.base_topic", z.BaseTopic, TopicRoot)
	}
	add("monitoring.prometheus.user", c.Monitoring.Prometheus.User, Closed)
	must("deploy.project", c.Deploy.Project, Project)
	add("deploy.target", c.Deploy.Target, Closed)
	// Expectations reach no rendered file: vet and verify read them.
	for i, e := range c.Expect {
		p := Path("expect", i)
		add(p+".as", e.As, Text)
		add(p+".client_id", e.ClientID, Text)
		add(p+".read", e.Read, Text)
		add(p+".write", e.Write, Text)
	}
	if k := c.Deploy.Kubernetes; k != nil {
		// Kubernetes' own name rules are checked with the target (kubernetes()).
		add("deploy.kubernetes.namespace", k.Namespace, Text)
		add("deploy.kubernetes.storage_class", k.StorageClass, Text)
		add("deploy.kubernetes.service_type", k.ServiceType, Closed)
		add("deploy.kubernetes.kube_context", k.KubeContext, Text)
	}
	return out
}

// Project is a compose project name.
var Project = Grammar{"compose project name", func(s string) error {
	if !projectRE.MatchString(s) {
		return errors.New("is not a compose project name: lower-case letters, digits, '_' and '-', starting with a letter or digit")
	}
	return nil
}}

// strings checks every string field against its grammar. Fields whose
// grammar has a check of its own below (ACL rules, cron, hosts of a bridge)
// are reported once, there.
func (c *checker) strings() {
	for _, f := range c.cfg.StringFields() {
		switch f.Grammar.Name {
		case Closed.Name, Rule.Name, PatternRule.Name, CronExpr.Name, Project.Name, HostPort.Name, Host.Name, IP.Name, EnvName.Name:
			continue // reported by the checks that give a more precise fix
		}
		if err := f.Grammar.Check(f.Value); err != nil {
			c.errorf(f.Path, "%s", describe(f.Value, err))
		}
	}
}

// describe puts the value before its problem: "x\ny" holds ...
func describe(value string, err error) string {
	msg := err.Error()
	if strings.Contains(msg, strconv.Quote(value)) {
		return msg
	}
	if len(value) > 80 {
		value = value[:80] + "…"
	}
	return strconv.Quote(value) + " " + msg
}
