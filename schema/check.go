package schema

import (
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
)

// checker collects the diagnostics of the checks that need more than types.
type checker struct {
	cfg   *Config
	pos   *positions
	diags Diagnostics
}

func (c *checker) errorf(path, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Pos: c.pos.of(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) warnf(path, format string, args ...any) {
	c.diags = append(c.diags, Diagnostic{Pos: c.pos.of(path), Path: path, Msg: fmt.Sprintf(format, args...), Warning: true})
}

func check(cfg *Config, pos *positions) Diagnostics {
	c := &checker{cfg: cfg, pos: pos}
	c.strings()
	c.broker()
	c.listeners()
	c.tls()
	c.accessRules()
	c.devices()
	c.deviceKinds()
	c.integrations()
	c.dialect()
	c.persistenceAndLimits()
	c.bridges()
	c.backup()
	c.expectations()
	if err := Project.Check(cfg.Deploy.Project); err != nil {
		c.errorf("deploy.project", "%s", describe(cfg.Deploy.Project, err))
	}
	c.kubernetes()
	c.sites()
	return c.diags
}

// minMaxPacket is the smallest max_packet_size mqttgen allows: a CONNECT
// carries a client id, a username and a password (and maybe a will), and a
// broker that cuts it off makes every client fail to log in.
const minMaxPacket = 1024

var (
	hostnameRE = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	projectRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// Kubernetes' names: an RFC 1123 label (namespaces), an RFC 1035 label
	// (Services: starts with a letter), an RFC 1123 subdomain (StorageClasses).
	dns1123LabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1035LabelRE     = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	dns1123SubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

func validHost(s string) bool { return net.ParseIP(s) != nil || hostnameRE.MatchString(s) }

func (c *checker) broker() {
	b := c.cfg.Broker
	if !validHost(b.Hostname) {
		c.errorf("broker.hostname", "%q is not a DNS name or IP address", b.Hostname)
	}
	if b.Engine == EngineMqttgen && strings.Contains(b.Image, "mosquitto") {
		c.errorf("broker.image", "%s is a Mosquitto image but engine is \"mqttgen\": remove image, or set engine: \"mosquitto\"", b.Image)
	}
}

func (c *checker) listeners() {
	cfg := c.cfg
	if len(cfg.Listeners) == 0 {
		c.errorf("listeners", "no listener: declare at least one, e.g. listeners: mqtt: port: 1883")
		return
	}
	type bound struct{ name, bind string }
	byPort := map[int][]bound{}
	plain := false
	for _, name := range SortedKeys(cfg.Listeners) {
		l := cfg.Listeners[name]
		if l.Bind != "" && net.ParseIP(l.Bind) == nil {
			c.errorf(Path("listeners", name, "bind"), "%q is not an IP address: write the address to listen on, e.g. \"0.0.0.0\" or \"127.0.0.1\"", l.Bind)
		}
		for _, other := range byPort[l.Port] {
			if overlaps(other.bind, l.Bind) {
				c.errorf(Path("listeners", name, "port"), "port %d is also used by listener %s: give each listener its own port", l.Port, other.name)
			}
		}
		byPort[l.Port] = append(byPort[l.Port], bound{name, l.Bind})
		if l.Protocol == "mqtt" {
			plain = true
		}
		if l.TLS && cfg.TLS == nil {
			c.errorf(Path("listeners", name, "tls"), "tls is true but there are no TLS settings: add tls: server_names: [%q]", cfg.Broker.Hostname)
		}
		if l.Anonymous != nil && *l.Anonymous && !cfg.Anonymous.Allowed && len(cfg.Anonymous.ACL) == 0 {
			c.errorf(Path("listeners", name, "anonymous"), "this listener admits anonymous clients but anonymous.acl grants them nothing: add anonymous.acl rules for them, or remove the override")
		} else if l.Anonymous != nil && *l.Anonymous && !cfg.Anonymous.Allowed {
			c.warnf(Path("listeners", name, "anonymous"), "anonymous clients may connect on this listener alone, with the rights of anonymous.acl and every pattern that does not use %%u")
		}
	}
	if !plain && cfg.Broker.Engine == EngineMosquitto {
		c.errorf("listeners", "only websockets listeners: Mosquitto 2.0 cannot start with websockets alone; add a plain listener, e.g. mqtt: {port: 1883, bind: \"127.0.0.1\"}")
	}
	if pr := cfg.Monitoring.Prometheus; pr.Enabled {
		for _, other := range byPort[pr.Port] {
			c.errorf("monitoring.prometheus.port", "port %d is also used by listener %s: give the exporter its own port", pr.Port, other.name)
		}
	}
}

// overlaps reports whether two bind addresses can collide on one port.
func overlaps(a, b string) bool {
	wild := func(s string) bool { return s == "" || s == "0.0.0.0" || s == "::" }
	return wild(a) || wild(b) || net.ParseIP(a).Equal(net.ParseIP(b))
}

func (c *checker) tls() {
	t := c.cfg.TLS
	if t == nil {
		return
	}
	if !c.cfg.HasTLS() {
		c.warnf("tls", "no listener has tls: true, so these settings are unused")
	}
	for i, n := range t.ServerNames {
		if !validHost(n) {
			c.errorf(Path("tls", "server_names", i), "%q is not a DNS name or IP address", n)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		c.errorf("tls", "cert_file and key_file go together: give both, or neither to have mqttgen make the certificate")
	}
	if t.CertFile == "" && len(t.ServerNames) == 0 && c.cfg.Broker.Hostname == "localhost" {
		c.warnf("tls.server_names", "the server certificate will name only localhost: list the names clients connect to, e.g. server_names: [\"mqtt.home.arpa\"]")
	}
	if t.RequireClientCertificate && t.CertFile != "" && t.CAFile == "" {
		c.errorf("tls.ca_file", "require_client_certificate with your own certificate needs ca_file: the CA that signs the client certificates")
	}
}

// accessRules checks every ACL rule and warns about anonymous access.
func (c *checker) accessRules() {
	cfg := c.cfg
	rules := func(path string, list []string, pattern bool) []acl.Rule {
		var out []acl.Rule
		for i, s := range list {
			r, err := acl.ParseRule(s, pattern)
			if err != nil {
				c.errorf(at(path, i), "%v", err)
				continue
			}
			out = append(out, r)
		}
		return out
	}
	anon := rules("anonymous.acl", cfg.Anonymous.ACL, false)
	for _, name := range SortedKeys(cfg.Users) {
		if strings.HasPrefix(name, ReservedUserPrefix) {
			c.errorf(Path("users", name), "%s", reservedUser(name))
		}
		rules(Path("users", name, "acl"), cfg.Users[name].ACL, false)
		if cfg.Users[name].Password != nil {
			c.secret(Path("users", name, "password"), *cfg.Users[name].Password)
		}
	}
	patterns := rules("patterns", cfg.Patterns, true)
	for i, r := range patterns {
		if r.Access != acl.Deny {
			continue
		}
		if !strings.Contains(r.Topic, "%u") && !strings.Contains(r.Topic, "%c") {
			c.errorf(at("patterns", i), "a deny pattern without %%u or %%c: Mosquitto checks each client's own rules before patterns, so it would only take back what other patterns grant; narrow those patterns, or put the deny in the users' acl")
		} else {
			c.warnf(at("patterns", i), "a deny pattern does not override a client's own rules: Mosquitto checks the user's (or anonymous) rules first and a grant there wins; put the deny in the users' acl to be sure")
		}
	}

	if !cfg.Anonymous.Allowed {
		return
	}
	if len(cfg.Anonymous.ACL) == 0 {
		c.warnf("anonymous.allowed", "anonymous clients may connect but anonymous.acl is empty: they get only what patterns without %%u grant; add anonymous.acl rules or set allowed: false")
	}
	for i, r := range anon {
		if r.Access&acl.Read != 0 && (r.Topic == "#" || r.Topic == "+/#") {
			c.warnf(at("anonymous.acl", i), "anonymous clients can read every topic, device states and discovery included: narrow it, e.g. \"read public/#\"")
		}
	}
	for i, r := range patterns {
		switch {
		case strings.Contains(r.Topic, "%u"):
		case strings.Contains(r.Topic, "%c"):
			c.warnf(at("patterns", i), "anonymous clients get this pattern too, and choose their own client id (%%c): they can use any client's topics; use %%u, or keep anonymous off")
		default:
			c.warnf(at("patterns", i), "a pattern without %%u or %%c applies to every client, anonymous or not: for anonymous clients alone, put it in anonymous.acl")
		}
	}
}

// at is the path of element i of the list at path.
func at(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func (c *checker) secret(path string, s Secret) {
	switch {
	case s.Hash:
	case s.Env != "" && !envNameRE.MatchString(s.Env):
		c.errorf(path+".env", "%q is not an environment variable name", s.Env)
	case s.Env == "" && s.File == "":
		c.errorf(path+".file", "empty file name: give the path of a file holding the password")
	}
}

func (c *checker) devices() {
	cfg := c.cfg
	for _, name := range SortedKeys(cfg.Devices) {
		d := cfg.Devices[name]
		p := Path("devices", name)
		if _, ok := cfg.Users[name]; ok {
			c.errorf(p, "a user named %s exists too: every device gets a login of its own name, so rename the device or the user", name)
		}
		if d.Password != nil {
			c.secret(p+".password", *d.Password)
		}
		pubs := setOf(c, p+".publishes", d.Publishes)
		subs := setOf(c, p+".subscribes", d.Subscribes)
		if d.Kind != KindGeneric {
			continue // deviceKinds checks the others' entities
		}
		for _, en := range SortedKeys(d.Entities) {
			e := d.Entities[en]
			ep := Path("devices", name, "entities", en)
			state := e.StateTopic(en)
			switch {
			case e.State != "" && !pubs[e.State]:
				c.errorf(ep+".state", "%q is not in publishes: add it there, or name a topic the device publishes", e.State)
			case e.State == "" && e.Component != "button" && !pubs[state]:
				c.errorf(ep, "no state topic: the device publishes no %q; set state: to one of its publishes", en)
			}
			needsCommand := e.Component == "switch" || e.Component == "light" || e.Component == "cover" || e.Component == "button" || e.Component == "number"
			switch {
			case e.Command != "" && !subs[e.Command]:
				c.errorf(ep+".command", "%q is not in subscribes: add it there, or name a topic the device subscribes to", e.Command)
			case e.Command == "" && needsCommand:
				c.errorf(ep, "a %s needs a command topic: set command: to one of the device's subscribes", e.Component)
			}
		}
	}
}

// StateTopic is the device topic an entity reports on: state, or the
// entity's own name.
func (e Entity) StateTopic(name string) string {
	if e.State != "" {
		return e.State
	}
	return name
}

func setOf(c *checker, path string, names []string) map[string]bool {
	set := map[string]bool{}
	for i, n := range names {
		if set[n] {
			c.errorf(at(path, i), "%q is listed twice", n)
		}
		set[n] = true
	}
	return set
}

// checkTopicRoot checks a topic prefix such as a base topic: one or more
// levels, no wildcards, no leading or trailing slash.
func checkTopicRoot(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty topic root")
	case strings.ContainsAny(s, "+#"):
		return fmt.Errorf("%q holds a wildcard: a topic root is plain levels, e.g. \"home\"", s)
	case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") || strings.Contains(s, "//"):
		return fmt.Errorf("%q has an empty level: write levels without leading or trailing '/', e.g. \"home\"", s)
	case strings.HasPrefix(s, "$"):
		return fmt.Errorf("%q starts with '$', which is reserved for the broker", s)
	}
	return nil
}

func (c *checker) integrations() {
	cfg := c.cfg
	needUser := func(path, user, preset string) {
		if _, ok := cfg.Users[user]; ok {
			return
		}
		if _, ok := cfg.Devices[user]; ok {
			c.errorf(path, "%s is a device; name a user, e.g. users: %s: preset: %q", user, user, preset)
			return
		}
		fix := fmt.Sprintf("users: %s: preset: %q", user, preset)
		if preset == "" {
			fix = fmt.Sprintf("users: %s: acl: [\"read $SYS/#\"]", user)
		}
		c.errorf(path, "no user %s: add %s", user, fix)
	}
	if ha := cfg.HomeAssistant; ha != nil {
		needUser("homeassistant.user", ha.User, "homeassistant")
	}
	if z := cfg.Zigbee2MQTT; z != nil {
		needUser("zigbee2mqtt.user", z.User, "zigbee2mqtt")
	}
	// Mosquitto's exporter logs in as this user; the bundled broker serves
	// /metrics itself and needs none, unless the home names one for status.
	if pr := cfg.Monitoring.Prometheus; pr.Enabled && (cfg.Broker.Engine == EngineMosquitto || pr.User != "exporter") {
		needUser("monitoring.prometheus.user", pr.User, "")
	}
}

func (c *checker) persistenceAndLimits() {
	cfg := c.cfg
	if n, err := ParseDuration(cfg.Persistence.AutosaveInterval); err != nil {
		c.errorf("persistence.autosave_interval", "%v", err)
	} else if n < 1 {
		c.errorf("persistence.autosave_interval", "must be at least 1s")
	}
	l := cfg.Limits
	if l.MaxConnections == 0 {
		c.errorf("limits.max_connections", "0 means no limit at all to Mosquitto, not no connections: write -1 for no limit, or at least 1")
	}
	if l.MaxPacketSize != "" {
		n, err := ParseSize(l.MaxPacketSize)
		switch {
		case err != nil:
			c.errorf("limits.max_packet_size", "%v", err)
		case n < minMaxPacket:
			c.errorf("limits.max_packet_size", "%d bytes is too small: a client's CONNECT with its id, username and password would not fit and the broker would cut it off; use at least \"1KiB\"", n)
		case n > 268435455:
			c.errorf("limits.max_packet_size", "%d bytes is more than MQTT's largest packet (268435455 bytes, \"255MiB\")", n)
		}
	}
	if l.PersistentClientExpiration != "" {
		if _, _, err := ParseExpiration(l.PersistentClientExpiration); err != nil {
			c.errorf("limits.persistent_client_expiration", "%v", err)
		}
	}
	if l.MaxKeepalive != "" {
		n, err := ParseDuration(l.MaxKeepalive)
		switch {
		case err != nil:
			c.errorf("limits.max_keepalive", "%v", err)
		case n < 10 || n > 65535:
			c.errorf("limits.max_keepalive", "%ds is outside 10s to 65535s (18h12m15s), what MQTT allows", n)
		}
	}
}

func (c *checker) bridges() {
	for _, name := range SortedKeys(c.cfg.Bridges) {
		b := c.cfg.Bridges[name]
		p := Path("bridges", name)
		if err := HostPort.Check(b.Address); err != nil {
			c.errorf(p+".address", "%q: %v", b.Address, err)
		}
		if b.Password != nil {
			c.secret(p+".password", *b.Password)
			if b.Username == "" {
				c.errorf(p+".password", "a password without a username: add username")
			}
		}
		if b.CAFile != "" && !b.TLS {
			c.errorf(p+".ca_file", "ca_file is set but tls is false: set tls: true, or remove ca_file")
		}
	}
}

func (c *checker) backup() {
	b := c.cfg.Backup
	if b == nil || b.Schedule == "" {
		return
	}
	if _, err := ParseCron(b.Schedule); err != nil {
		c.errorf("backup.schedule", "%v", err)
	}
}

// maxObjectName leaves room in 63 characters for what Kubernetes appends to
// the StatefulSet's name: "-" and an 10-character revision hash in the
// controller-revision-hash label of its pods.
const maxObjectName = 52

func (c *checker) kubernetes() {
	d := c.cfg.Deploy
	if d.Target != TargetKubernetes {
		if d.Kubernetes != nil {
			c.warnf("deploy.kubernetes", "target is %q, so these settings are unused: set target: \"kubernetes\" or remove them", d.Target)
		}
		return
	}
	k := d.Kubernetes
	if !dns1035LabelRE.MatchString(d.Project) || len(d.Project) > maxObjectName {
		c.errorf("deploy.project", "%q cannot name the broker's StatefulSet and Service: lower-case letters, digits and '-', starting with a letter, ending with a letter or digit, at most %d characters", d.Project, maxObjectName)
	}
	if !dns1123LabelRE.MatchString(k.Namespace) || len(k.Namespace) > 63 {
		c.errorf("deploy.kubernetes.namespace", "%q is not a namespace name (an RFC 1123 label): lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters", k.Namespace)
	}
	if k.StorageClass != "" && (!dns1123SubdomainRE.MatchString(k.StorageClass) || len(k.StorageClass) > 253) {
		c.errorf("deploy.kubernetes.storage_class", "%q is not a StorageClass name (an RFC 1123 subdomain): lower-case letters, digits, '-' and '.', e.g. \"local-path\"", k.StorageClass)
	}
	// In a pod every listener listens on all of its addresses; listeners()
	// already reports the binds that overlap.
	ports := map[int]string{}
	for _, name := range SortedKeys(c.cfg.Listeners) {
		l := c.cfg.Listeners[name]
		if other, ok := ports[l.Port]; ok && !overlaps(c.cfg.Listeners[other].Bind, l.Bind) {
			c.errorf(Path("listeners", name, "port"), "port %d is also used by listener %s: in a pod listeners have no bind address of their own, so give each its own port", l.Port, other)
		}
		ports[l.Port] = name
	}
	// Mosquitto 2.1 refuses the symlinked files of Secret and ConfigMap
	// volumes: the pod's reloader copies them out (package kube).
	b := c.cfg.Broker
	if b.Engine == EngineMqttgen && b.Image == "" {
		c.errorf("broker.engine", "the bundled broker's image %s is built on this host by apply, which a cluster cannot pull: push it to a registry and set broker.image", b.ImageRef())
	}
	if c.cfg.Monitoring.Prometheus.Enabled {
		c.warnf("monitoring.prometheus", "metrics are not rendered for Kubernetes yet: the manifests hold the broker alone, without the exporter or the metrics port")
	}
}
