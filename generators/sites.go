package generators

import (
	"fmt"
	"maps"
	"net"
	"path"
	"strings"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/schema"
)

// HubBridge is the name of the bridge every satellite has to the hub (its
// `connection` in mosquitto.conf).
const HubBridge = "hub"

// SitesDir is where render writes a home with sites: one folder per site,
// sites/<name>/, each laid out as a home without sites (config/,
// docker-compose.yml, ...).
const SitesDir = "sites"

// SitePath is the rendered file p of site, relative to the output folder.
func SitePath(site, p string) string { return path.Join(SitesDir, site, p) }

// SiteTopic is one topic line of a satellite's bridge and where it comes
// from in home.cue (a device's publishes or subscribes, or a share entry).
type SiteTopic struct {
	schema.BridgeTopic
	Origin string
}

// SiteTopics are the topic lines of a satellite's bridge to the hub: each
// device's states and other publishes out, its commands in (its firmware's
// topics: exactly what its login may use), all at QoS 1, then the site's
// share entries. Topics keep their names: Home Assistant on the hub sees a
// satellite's device as if it logged in there.
func SiteTopics(cfg *schema.Config, site string) []SiteTopic {
	var out []SiteTopic
	for _, name := range schema.SortedKeys(cfg.Devices) {
		if cfg.DeviceSite(name) != site {
			continue
		}
		pub, sub := FirmwareTopics(cfg, name)
		for i, t := range pub {
			out = append(out, SiteTopic{schema.BridgeTopic{Pattern: t, Direction: "out", QoS: 1}, deviceOrigin(cfg, name, "publishes", i).Path})
		}
		for i, t := range sub {
			out = append(out, SiteTopic{schema.BridgeTopic{Pattern: t, Direction: "in", QoS: 1}, deviceOrigin(cfg, name, "subscribes", i).Path})
		}
	}
	for _, name := range schema.SortedKeys(cfg.Users) {
		if cfg.Users[name].Site == "" || cfg.UserSite(name) != site {
			continue
		}
		out = append(out, userSiteTopics(cfg, name)...)
	}
	for i, sh := range cfg.Sites[site].Share {
		out = append(out, SiteTopic{schema.BridgeTopic{Pattern: sh.Pattern, Direction: sh.Direction, QoS: sh.QoS,
			LocalPrefix: sh.LocalPrefix, RemotePrefix: sh.RemotePrefix}, schema.Path("sites", site, "share", i)})
	}
	return out
}

// userSiteTopics are the bridged topics of a user who logs in at a
// satellite, from its ACL: what it may write goes out, what it may read
// comes in, and readwrite both ways (which CheckSites refuses); $SYS stays
// on each broker. Zigbee2MQTT's preset is its program's topics instead of
// its two readwrite rules, split so the two ways cannot meet: device
// states, availability and the bridge's own topics out, set, get and
// bridge requests in, and with Home Assistant its discovery configs out and
// Home Assistant's status in.
func userSiteTopics(cfg *schema.Config, name string) []SiteTopic {
	u := cfg.Users[name]
	var out []SiteTopic
	add := func(pattern, dir, origin string) {
		if strings.HasPrefix(pattern, "$") {
			return
		}
		out = append(out, SiteTopic{schema.BridgeTopic{Pattern: pattern, Direction: dir, QoS: 1}, origin})
	}
	fromRules := func(rules []acl.Rule, origin func(int) string) {
		for i, r := range rules {
			switch r.Access {
			case acl.Write:
				add(r.Topic, "out", origin(i))
			case acl.Read:
				add(r.Topic, "in", origin(i))
			case acl.ReadWrite:
				add(r.Topic, "both", origin(i))
			}
		}
	}
	preset := schema.Path("users", name, "preset")
	switch u.Preset {
	case "":
	case "zigbee2mqtt":
		base := "zigbee2mqtt"
		if cfg.Zigbee2MQTT != nil {
			base = cfg.Zigbee2MQTT.BaseTopic
		}
		for _, t := range []string{"+", "+/availability", "bridge/state", "bridge/info", "bridge/devices",
			"bridge/groups", "bridge/definitions", "bridge/extensions", "bridge/event", "bridge/logging", "bridge/response/#"} {
			add(base+"/"+t, "out", preset)
		}
		for _, t := range []string{"+/set", "+/get", "bridge/request/#"} {
			add(base+"/"+t, "in", preset)
		}
		if cfg.HomeAssistant != nil {
			add(DiscoveryPrefix(cfg)+"/+/+/+/config", "out", preset)
			add(DiscoveryPrefix(cfg)+"/status", "in", preset)
		}
	default:
		fromRules(PresetRules(cfg, u.Preset, name), func(int) string { return preset })
	}
	fromRules(mustRules(u.ACL, false), func(i int) string { return schema.Path("users", name, "acl", i) })
	return out
}

// hubListener is the hub's listener the satellites' bridges connect to:
// its first MQTT listener serving TLS with a certificate the bridge can
// verify without one of its own, else its first plain MQTT listener.
func hubListener(cfg *schema.Config) (schema.Listener, bool) {
	_, l, ok := hubListenerNamed(cfg)
	return l, ok
}

func hubListenerNamed(cfg *schema.Config) (string, schema.Listener, bool) {
	ls := cfg.SiteListeners(cfg.Hub())
	view := &schema.Config{Listeners: ls}
	plain := ""
	for _, name := range listenerOrder(view) {
		l := ls[name]
		if l.Protocol != "mqtt" {
			continue
		}
		if l.TLS && !(cfg.TLS != nil && cfg.TLS.RequireClientCertificate) {
			return name, l, true
		}
		if !l.TLS && plain == "" {
			plain = name
		}
	}
	if plain != "" {
		return plain, ls[plain], true
	}
	return "", schema.Listener{}, false
}

// SiteConfig is the home as one site's broker sees it, a home without
// sites that the generators and deploy render and converge as ever:
//   - every site: the site's hostname and listeners; a satellite's compose
//     project is <project>-<site>, the hub's the home's;
//   - the hub: every user, the devices of all sites (Home Assistant's
//     discovery and ACL name them) with logins for its own alone, and per
//     satellite a user bridge-<site> whose ACL is exactly the topics its
//     bridge carries (and its connection state, which a Mosquitto bridge
//     publishes there);
//   - a satellite: its devices, the users that only read $SYS (they
//     watch every broker), the home's anonymous rules and patterns,
//     and a bridge "hub" to the hub: cleansession false (the hub keeps the
//     satellite's subscriptions, and the satellite what it could not send
//     while the link is down, up to limits.max_queued_messages), TLS with
//     mqttgen's CA when the hub serves TLS; no users, no Home Assistant,
//     Zigbee2MQTT, exporter or expectations, which are the hub's.
//
// A home without sites is returned as it is.
func SiteConfig(cfg *schema.Config, site string) (*schema.Config, error) {
	if !cfg.HasSites() {
		return cfg, nil
	}
	s, ok := cfg.Sites[site]
	if !ok {
		return nil, fmt.Errorf("no site %s: the home's sites are %s", site, strings.Join(cfg.SiteNames(), ", "))
	}
	v := *cfg
	v.Sites = nil
	v.SiteName = site
	v.Broker.Hostname = s.Hostname
	if e := cfg.SiteEngine(site); e != cfg.Broker.Engine {
		// Another engine than the home's: its default image and release.
		v.Broker.Engine, v.Broker.Image, v.Broker.Version = e, "", ""
	}
	if s.Image != "" {
		// The site's own image: its tag names the release.
		v.Broker.Image, v.Broker.Version = s.Image, ""
	}
	v.Listeners = cfg.SiteListeners(site)
	if !v.HasTLS() {
		v.TLS = nil
	}
	v.Bridges = map[string]schema.Bridge{}
	v.Devices = map[string]schema.Device{}
	if s.Hub {
		maps.Copy(v.Bridges, cfg.Bridges)
		maps.Copy(v.Devices, cfg.Devices)
		v.RemoteDevices = map[string]bool{}
		v.Users = map[string]schema.User{}
		for name, u := range cfg.Users {
			if cfg.UserSite(name) == site {
				v.Users[name] = u
			}
		}
		for _, d := range schema.SortedKeys(cfg.Devices) {
			if cfg.DeviceSite(d) != site {
				v.RemoteDevices[d] = true
			}
		}
		for _, sat := range cfg.SiteNames() {
			if sat == site {
				continue
			}
			var rules []string
			for _, t := range SiteTopics(cfg, sat) {
				remote := t.RemotePrefix + t.Pattern
				switch t.Direction {
				case "out":
					rules = append(rules, "write "+remote)
				case "in":
					rules = append(rules, "read "+remote)
				default:
					rules = append(rules, "readwrite "+remote)
				}
			}
			rules = append(rules, "write "+bridgeStateTopic(cfg, sat))
			v.Users[schema.BridgeAccount(sat)] = schema.User{ACL: rules}
		}
		return &v, nil
	}
	v.Deploy.Project = cfg.Deploy.Project + "-" + site
	for name, d := range cfg.Devices {
		if cfg.DeviceSite(name) == site {
			v.Devices[name] = d
		}
	}
	v.Users = map[string]schema.User{}
	for name, u := range cfg.Users {
		if u.Site == site || (u.Site == "" && watchesSYS(u)) {
			// A login that only reads $SYS watches every broker: status
			// reads a satellite's bridge state and queue with it.
			v.Users[name] = u
		}
	}
	if z := cfg.Zigbee2MQTT; z == nil || cfg.UserSite(z.User) != site {
		// Home Assistant stays for Zigbee2MQTT's discovery settings alone:
		// its files are the hub's.
		v.HomeAssistant, v.Zigbee2MQTT = nil, nil
	}
	v.Monitoring = schema.Monitoring{}
	v.Expect = nil
	hub := cfg.Sites[cfg.Hub()]
	l, ok := hubListener(cfg)
	if !ok {
		return nil, fmt.Errorf("site %s: the hub %s has no MQTT listener a bridge can connect to", site, cfg.Hub())
	}
	b := schema.Bridge{
		Address:  fmt.Sprintf("%s:%d", hub.Hostname, l.Port),
		TLS:      l.TLS,
		Protocol: "mqttv311",
		ClientID: bridgeClientID(cfg, site),
		Username: schema.BridgeAccount(site),
		Site: &schema.SiteBridge{
			Account:    schema.BridgeAccount(site),
			HubCA:      l.TLS && (cfg.TLS == nil || cfg.TLS.CertFile == ""),
			TryPrivate: cfg.SiteEngine(cfg.Hub()) != schema.EngineMqttgen,
		},
	}
	for _, t := range SiteTopics(cfg, site) {
		b.Topics = append(b.Topics, t.BridgeTopic)
	}
	v.Bridges[HubBridge] = b
	return &v, nil
}

// watchesSYS reports whether every rule of u reads $SYS, and nothing else.
func watchesSYS(u schema.User) bool {
	if u.Preset != "" || len(u.ACL) == 0 {
		return false
	}
	for _, r := range mustRules(u.ACL, false) {
		if r.Access != acl.Read || !strings.HasPrefix(r.Topic, "$SYS/") {
			return false
		}
	}
	return true
}

// IsSatellite reports whether cfg is a satellite's view (SiteConfig).
func IsSatellite(cfg *schema.Config) bool {
	b, ok := cfg.Bridges[HubBridge]
	return ok && b.Site != nil
}

// BridgeClientID is the client id of a satellite's bridge on the hub.
func BridgeClientID(cfg *schema.Config, site string) string { return bridgeClientID(cfg, site) }

func bridgeClientID(cfg *schema.Config, site string) string {
	return cfg.Deploy.Project + "-" + site
}

// BridgeStateTopic is where the hub (and the satellite) hold whether the
// satellite's bridge is connected, "1" or "0": Mosquitto's notification
// topic of the bridge, which the bundled broker keeps too.
func BridgeStateTopic(cfg *schema.Config, site string) string { return bridgeStateTopic(cfg, site) }

func bridgeStateTopic(cfg *schema.Config, site string) string {
	return "$SYS/broker/connection/" + bridgeClientID(cfg, site) + "/state"
}

// CheckSites is vet's static loop check of a home with sites: no message
// may come back to a broker it left. The sites form a star (each satellite
// bridges to the hub alone), so a message returns only if it crosses some
// bridge and then that same bridge back; that happens when a topic a
// satellite sends to the hub (as the hub names it) matches one it takes
// from the hub, or a topic it takes from the hub (as it names it) matches
// one it sends. Prefixes can make the two sides disjoint; a "both" line
// never is. Each error is at the later of the two declarations.
func CheckSites(cfg *schema.Config) schema.Diagnostics {
	var out schema.Diagnostics
	if hub := cfg.Hub(); hub != "" && len(cfg.Sites) > 1 {
		name, l, ok := hubListenerNamed(cfg)
		field := schema.Path("listeners", name, "bind")
		if cfg.Sites[hub].Listeners != nil {
			field = schema.Path("sites", hub, "listeners", name, "bind")
		}
		switch {
		case !ok:
			out = append(out, cfg.Errorf(schema.Path("sites", hub), "the hub has no MQTT listener the satellites' bridges can connect to (plain, or TLS without client certificates): add one, e.g. listeners: bridges: port: 1883"))
		case l.Bind != "" && net.ParseIP(l.Bind).IsLoopback():
			out = append(out, cfg.Errorf(field, "the satellites' bridges connect to the hub's listener %s at %s, but it listens on %s alone: bind it to an address they reach, or leave bind out", name, cfg.Sites[hub].Hostname, l.Bind))
		}
	}
	for _, site := range cfg.SiteNames() {
		if cfg.Sites[site].Hub {
			continue
		}
		ts := SiteTopics(cfg, site)
		for j, b := range ts {
			for i := 0; i <= j; i++ {
				a := ts[i]
				why := loop(a.BridgeTopic, b.BridgeTopic)
				if why == "" && i != j {
					why = loop(b.BridgeTopic, a.BridgeTopic)
				}
				if why == "" {
					continue
				}
				what := "this topic is bridged both ways: " + why
				if i != j {
					what = fmt.Sprintf("this topic and %s (%s) make a loop: %s", a.Origin, describeTopic(a.BridgeTopic), why)
				}
				fix := "bridge each topic one way, or give the two sides prefixes that keep them apart"
				if strings.HasPrefix(b.Origin, "users.") {
					fix = "a user on a satellite has its writes bridged out and its reads bridged in: give it write rules for what it publishes and read rules for what it subscribes to, on topics that do not overlap, or let it log in at the hub"
				}
				out = append(out, cfg.Errorf(b.Origin, "site %s: %s; %s", site, what, fix))
				break
			}
		}
	}
	return out
}

func describeTopic(t schema.BridgeTopic) string {
	s := t.Direction + " " + t.Pattern
	if t.LocalPrefix != "" || t.RemotePrefix != "" {
		s += fmt.Sprintf(" (local prefix %q, remote prefix %q)", t.LocalPrefix, t.RemotePrefix)
	}
	return s
}

// loop says why a message sent along out could come back along in, or "".
func loop(out, in schema.BridgeTopic) string {
	if out.Direction == "in" || in.Direction == "out" {
		return ""
	}
	if o, i := out.RemotePrefix+out.Pattern, in.RemotePrefix+in.Pattern; FiltersOverlap(o, i) {
		return fmt.Sprintf("what the satellite sends to the hub as %s, the hub sends back as %s", o, i)
	}
	if o, i := out.LocalPrefix+out.Pattern, in.LocalPrefix+in.Pattern; FiltersOverlap(o, i) {
		return fmt.Sprintf("what the hub sends to the satellite as %s, the satellite sends back as %s", i, o)
	}
	return ""
}

// FiltersOverlap reports whether some topic matches both MQTT filters.
func FiltersOverlap(a, b string) bool {
	x, y := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; ; i++ {
		switch {
		case i < len(x) && x[i] == "#", i < len(y) && y[i] == "#":
			return true
		case i == len(x) || i == len(y):
			return len(x) == len(y)
		case x[i] != "+" && y[i] != "+" && x[i] != y[i]:
			return false
		}
	}
}
