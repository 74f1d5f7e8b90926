package schema

import (
	"regexp"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/version"
)

// MosquittoVersion is the release the home is rendered for: the image tag's,
// else broker.version; the bundled broker reads both dialects and gets 2.1's
// (nothing deprecated) unless broker.version says otherwise. false when
// neither names one (vet refuses such a home).
func (c *Config) MosquittoVersion() (version.Version, bool) {
	b := c.Broker
	if b.Engine == EngineMosquitto {
		if v, ok := version.FromImage(b.ImageRef()); ok {
			return v, true
		}
	}
	if b.Version != "" {
		v, err := version.Parse(b.Version)
		return v, err == nil
	}
	if b.Engine == EngineMqttgen {
		return version.V2_1, true
	}
	return version.Version{}, false
}

// SafeSpecialChars reports whether the acl has no pattern with %u or %c, so
// that letting usernames and client ids hold '/', '+' and '#'
// (auth_plugin_deny_special_chars false) cannot widen any rule: such a name
// only ever reaches a pattern through %u or %c, where "a/b" would expand
// into another client's subtree and "+" or "#" into a wildcard.
func (c *Config) SafeSpecialChars() bool {
	for _, p := range c.Patterns {
		if strings.Contains(p, "%u") || strings.Contains(p, "%c") {
			return false
		}
	}
	return true
}

var entityIDRE = regexp.MustCompile(`^(?:([a-z_]+)\.)?([a-z0-9_]+)$`)

// DefaultEntityID is the entity's default_entity_id ("<domain>.<id>"), or
// "" when entity_id is not set.
func (e Entity) DefaultEntityID() string {
	m := entityIDRE.FindStringSubmatch(e.EntityID)
	if m == nil {
		return ""
	}
	return e.Component + "." + m[2]
}

// dialect checks what depends on the Mosquitto release and on Home
// Assistant's move to MQTT 5.
func (c *checker) dialect() {
	cfg := c.cfg
	b := cfg.Broker
	var v version.Version
	if b.Version != "" {
		var err error
		if v, err = version.Parse(b.Version); err != nil {
			c.errorf("broker.version", "%v", err)
			return
		}
	}
	if b.Engine == EngineMosquitto {
		if ImageRef.Check(b.ImageRef()) != nil {
			return // its grammar's error says what is wrong with it
		}
		tag, tagged := version.FromImage(b.ImageRef())
		switch {
		case tagged && b.Version != "" && (tag.Major != v.Major || tag.Minor != v.Minor):
			c.errorf("broker.version", "%s but the image %s is %s: remove version, or make it match the image", b.Version, b.ImageRef(), tag)
			v = tag
		case tagged:
			v = tag
		case b.Version == "":
			c.errorf("broker.image", "the tag of %s names no Mosquitto release, which decides the dialect of mosquitto.conf: set broker.version, e.g. version: \"2.1.2\"", b.ImageRef())
			return
		}
	}
	if v.IsZero() {
		v, _ = cfg.MosquittoVersion()
	}
	if !v.AtLeast(2, 0) {
		if _, tagged := version.FromImage(b.ImageRef()); tagged && b.Engine == EngineMosquitto {
			c.errorf("broker.image", "%s is older than Mosquitto 2.0, which mqttgen renders for: use eclipse-mosquitto:2.0 or later", b.ImageRef())
		} else {
			c.errorf("broker.version", "Mosquitto %s is older than 2.0, which mqttgen renders for: use 2.0 or later", v)
		}
		return
	}

	for _, name := range SortedKeys(cfg.Listeners) {
		l := cfg.Listeners[name]
		p := Path("listeners", name, "protocols")
		if l.Protocols == nil {
			continue
		}
		switch {
		case len(l.Protocols) == 0:
			c.errorf(p, "no protocol: the listener would refuse every client; list at least one, e.g. [\"3.1.1\", \"5\"]")
		case !v.Plugins() && b.Engine == EngineMosquitto:
			c.errorf(p, "Mosquitto %s accepts every protocol version on every listener (accept_protocol_versions came in 2.1): remove protocols, or use eclipse-mosquitto:2.1.2", v)
		}
		seen := map[string]bool{}
		for i, pr := range l.Protocols {
			if seen[pr] {
				c.errorf(at(p, i), "%q is listed twice", pr)
			}
			seen[pr] = true
		}
	}
	if ha := cfg.HomeAssistant; ha != nil {
		// Every listener takes logins, so the HA user reaches all of them.
		for _, name := range SortedKeys(cfg.Listeners) {
			if l := cfg.Listeners[name]; l.Protocols != nil && len(l.Protocols) > 0 && !l.Accepts("5") {
				c.errorf(Path("listeners", name, "protocols"), "Home Assistant's user %s can log in here, and Home Assistant speaks MQTT 5 (3.x is removed in 2027.1): add \"5\"", ha.User)
			}
		}
	}

	if v.Plugins() {
		// 2.1's plugins deny names holding '/', '+' or '#' (unless
		// auth_plugin_deny_special_chars is false, which mqttgen renders only
		// without %u/%c patterns): refuse them rather than render a login
		// that cannot log in.
		for _, a := range cfg.Accounts() {
			if strings.ContainsAny(a.Name, "/+#") {
				c.errorf(accountPath(a), "Mosquitto %s denies usernames holding '/', '+' or '#': rename it", v)
			}
		}
	}
	for _, name := range SortedKeys(cfg.Bridges) {
		br := cfg.Bridges[name]
		if strings.ContainsAny(br.ClientID, "/+#") {
			c.errorf(Path("bridges", name, "client_id"), "%q holds '/', '+' or '#', which Mosquitto 2.1 denies in client ids (and %%c patterns deny everywhere): use letters, digits, '-' and '_'", br.ClientID)
		}
		if strings.ContainsAny(br.Username, "/+#") {
			c.errorf(Path("bridges", name, "username"), "%q holds '/', '+' or '#', which Mosquitto 2.1 denies in usernames", br.Username)
		}
	}
}

func accountPath(a Account) string {
	if a.Device {
		return Path("devices", a.Name)
	}
	return Path("users", a.Name)
}

// deviceKinds checks the fields each device kind takes.
func (c *checker) deviceKinds() {
	cfg := c.cfg
	for _, name := range SortedKeys(cfg.Devices) {
		d := cfg.Devices[name]
		p := Path("devices", name)
		if d.TopicPrefix != "" {
			if err := checkTopicRoot(d.TopicPrefix); err != nil {
				c.errorf(p+".topic_prefix", "%v", err)
			}
		}
		if d.Kind != KindGeneric {
			if len(d.Publishes) > 0 {
				c.errorf(p+".publishes", "%s's topics follow from its firmware: remove publishes", kindNames[d.Kind])
			}
			if len(d.Subscribes) > 0 {
				c.errorf(p+".subscribes", "%s's topics follow from its firmware: remove subscribes", kindNames[d.Kind])
			}
			if d.Availability {
				c.errorf(p+".availability", "%s always says whether it is online, on its own topic: remove availability", kindNames[d.Kind])
			}
		}
		for _, en := range SortedKeys(d.Entities) {
			e := d.Entities[en]
			ep := Path("devices", name, "entities", en)
			if e.EntityID != "" {
				m := entityIDRE.FindStringSubmatch(e.EntityID)
				switch {
				case m == nil:
					c.errorf(ep+".entity_id", "%q is not an entity id: lower-case letters, digits and '_', optionally after the domain, e.g. %q", e.EntityID, e.Component+"."+strings.ReplaceAll(en, "-", "_"))
				case m[1] != "" && m[1] != e.Component:
					c.errorf(ep+".entity_id", "%q is in domain %s but the entity is a %s: write %q", e.EntityID, m[1], e.Component, e.Component+"."+m[2])
				}
			}
			switch d.Kind {
			case KindESPHome, KindTasmota:
				c.errorf(ep, "%s publishes its own discovery: remove entities (Home Assistant learns them from the device)", kindNames[d.Kind])
			case KindShelly:
				if e.Shelly == "" {
					c.errorf(ep, "a Shelly entity needs shelly: the component it shows, e.g. shelly: \"switch:0\"")
				} else if !shellyComponentRE.MatchString(e.Shelly) {
					c.errorf(ep+".shelly", "%q is not a Shelly component: write <type>:<id>, e.g. \"switch:0\"", e.Shelly)
				}
				if e.State != "" || e.Command != "" {
					c.errorf(ep, "a Shelly entity's topics follow from shelly: remove state and command")
				}
				if _, ok := ShellySensorFields[e.DeviceClass]; e.Component == "sensor" && !ok {
					c.errorf(ep, "a Shelly sensor shows a field of the component's status chosen by device_class: one of %s", strings.Join(SortedKeys(ShellySensorFields), ", "))
				}
				if !shellyComponents[e.Component] {
					c.errorf(ep+".component", "mqttgen describes Shelly entities of component switch, sensor or binary_sensor, not %s", e.Component)
				}
			default:
				if e.Shelly != "" {
					c.errorf(ep+".shelly", "only Shelly devices (kind: \"shelly\") take shelly")
				}
			}
		}
	}
}

var kindNames = map[string]string{KindESPHome: "ESPHome", KindShelly: "Shelly", KindTasmota: "Tasmota"}

var shellyComponentRE = regexp.MustCompile(`^[a-z]+:[0-9]+$`)

var shellyComponents = map[string]bool{"switch": true, "sensor": true, "binary_sensor": true}

// ShellySensorFields are the fields of a Shelly component's status that a
// sensor of each device_class shows.
var ShellySensorFields = map[string]string{
	"power": "apower", "energy": "aenergy.total", "voltage": "voltage", "current": "current",
	"temperature": "temperature.tC", "frequency": "freq",
}
