package schema

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// HasSites reports whether the home declares several sites.
func (c *Config) HasSites() bool { return len(c.Sites) > 0 }

// Hub is the name of the hub site; "" without sites (or without a hub,
// which vet refuses).
func (c *Config) Hub() string {
	for _, name := range SortedKeys(c.Sites) {
		if c.Sites[name].Hub {
			return name
		}
	}
	return ""
}

// SiteNames are the sites, the hub first, then the satellites by name:
// the order apply converges them in.
func (c *Config) SiteNames() []string {
	hub := c.Hub()
	names := []string{}
	if hub != "" {
		names = append(names, hub)
	}
	for _, n := range SortedKeys(c.Sites) {
		if n != hub {
			names = append(names, n)
		}
	}
	return names
}

// DeviceSite is the site a device logs in at: its site, else the hub.
func (c *Config) DeviceSite(device string) string {
	if s := c.Devices[device].Site; s != "" {
		return s
	}
	return c.Hub()
}

// UserSite is the site a user logs in at: its site, else the hub.
func (c *Config) UserSite(user string) string {
	if s := c.Users[user].Site; s != "" {
		return s
	}
	return c.Hub()
}

// SiteListeners are a site's listeners: its own, else the home's (on a
// satellite, the home's plain ones: mqttgen makes the server certificate
// of the hub alone).
func (c *Config) SiteListeners(site string) map[string]Listener {
	s := c.Sites[site]
	if s.Listeners != nil {
		return s.Listeners
	}
	if s.Hub {
		return c.Listeners
	}
	out := map[string]Listener{}
	for name, l := range c.Listeners {
		if !l.TLS {
			out[name] = l
		}
	}
	return out
}

// SiteEngine is the broker engine of a site: its own, else broker.engine.
func (c *Config) SiteEngine(site string) string {
	if e := c.Sites[site].Engine; e != "" {
		return e
	}
	return c.Broker.Engine
}

// BridgeAccount is the hub's user a satellite's bridge logs in as.
func BridgeAccount(site string) string { return "bridge-" + site }

// Docker host schemes a site's engine may be reached by.
const (
	SchemeUnix = "unix"
	SchemeTCP  = "tcp"
	SchemeSSH  = "ssh"
)

// ParseDockerHost checks a site's docker_host and returns its scheme.
func ParseDockerHost(s string) (string, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", fmt.Errorf("%q has no scheme: write unix:///var/run/docker.sock, tcp://HOST:2376 or ssh://USER@HOST", s)
	}
	switch scheme {
	case SchemeUnix:
		if !strings.HasPrefix(rest, "/") || strings.ContainsAny(rest, " \t\n?#") {
			return "", fmt.Errorf("%q: a unix socket is an absolute path, e.g. unix:///var/run/docker.sock", s)
		}
	case SchemeTCP:
		host, port, err := net.SplitHostPort(rest)
		if err != nil || strings.Contains(rest, "/") {
			return "", fmt.Errorf("%q: write tcp://HOST:PORT, e.g. tcp://garage.home.arpa:2376", s)
		}
		if !validHost(host) {
			return "", fmt.Errorf("%q: %q is not a DNS name or IP address", s, host)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%q: %q is not a port: ports are 1 to 65535", s, port)
		}
	case SchemeSSH:
		u, err := url.Parse(s)
		// A path is the engine's socket there (docker's connection helper
		// runs docker --host=unix://PATH system dial-stdio).
		if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(u.Path, " \t\n") {
			return "", fmt.Errorf("%q: write ssh://USER@HOST, ssh://USER@HOST:PORT, or ssh://USER@HOST/PATH/OF/docker.sock", s)
		}
		if _, set := u.User.Password(); set {
			return "", fmt.Errorf("%q holds a password: ssh logs in with the keys of ssh-agent or ~/.ssh, never a password in home.cue", s)
		}
		if u.User == nil || u.User.Username() == "" {
			return "", fmt.Errorf("%q names no user: write ssh://USER@%s (a user in the docker group there)", s, u.Host)
		}
		if !validHost(u.Hostname()) {
			return "", fmt.Errorf("%q: %q is not a DNS name or IP address", s, u.Hostname())
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return "", fmt.Errorf("%q: %q is not a port: ports are 1 to 65535", s, p)
			}
		}
	default:
		return "", fmt.Errorf("%q: scheme %s is not one mqttgen reaches an engine by: use unix://, tcp:// or ssh://", s, scheme)
	}
	return scheme, nil
}

// sites checks the sites: exactly one hub, engines and names that parse,
// devices on sites that exist, satellites without TLS listeners.
func (c *checker) sites() {
	cfg := c.cfg
	type sited struct{ field, site string }
	var sitedOnes []sited
	for _, name := range SortedKeys(cfg.Devices) {
		sitedOnes = append(sitedOnes, sited{Path("devices", name, "site"), cfg.Devices[name].Site})
	}
	for _, name := range SortedKeys(cfg.Users) {
		sitedOnes = append(sitedOnes, sited{Path("users", name, "site"), cfg.Users[name].Site})
	}
	for _, sd := range sitedOnes {
		site, p := sd.site, sd.field
		if site == "" {
			continue
		}
		if !cfg.HasSites() {
			c.errorf(p, "no sites are declared: declare sites: %s: {docker_host: ..., hostname: ...}, or remove site", site)
			continue
		}
		if _, ok := cfg.Sites[site]; !ok {
			c.errorf(p, "no site %s: use one of %s, or declare sites: %s", site, strings.Join(SortedKeys(cfg.Sites), ", "), site)
		}
	}
	if !cfg.HasSites() {
		return
	}
	var hubs []string
	for _, name := range SortedKeys(cfg.Sites) {
		if cfg.Sites[name].Hub {
			hubs = append(hubs, name)
		}
	}
	switch len(hubs) {
	case 0:
		c.errorf("sites", "no site is the hub: set hub: true on the one where Home Assistant's broker runs (the others bridge to it)")
	case 1:
	default:
		for _, h := range hubs {
			c.errorf(Path("sites", h, "hub"), "sites %s are all the hub: exactly one site is the hub (the others bridge to it); set hub: false on all but one", strings.Join(hubs, ", "))
		}
	}
	if cfg.Deploy.Target != TargetDocker {
		c.errorf("sites", "sites run on Docker engines, but deploy.target is %q: remove sites, or set target: \"docker\"", cfg.Deploy.Target)
	}
	if len(hubs) == 1 {
		// Home Assistant and the exporter run beside the hub's broker.
		onHub := func(field, user string) {
			if u, ok := cfg.Users[user]; ok && u.Site != "" && u.Site != hubs[0] {
				c.errorf(Path("users", user, "site"), "%s is %s's user, which logs in at the hub %s: remove site, or use another user there", user, field, hubs[0])
			}
		}
		if cfg.HomeAssistant != nil {
			onHub("homeassistant", cfg.HomeAssistant.User)
		}
		if cfg.Monitoring.Prometheus.Enabled {
			onHub("monitoring.prometheus", cfg.Monitoring.Prometheus.User)
		}
	}
	hosts := map[string]string{}
	for _, name := range SortedKeys(cfg.Sites) {
		s := cfg.Sites[name]
		p := Path("sites", name)
		if _, ok := cfg.Users[BridgeAccount(name)]; ok {
			c.errorf(Path("users", BridgeAccount(name)), "%s is the login mqttgen makes on the hub for site %s's bridge: rename the user", BridgeAccount(name), name)
		}
		if _, ok := cfg.Devices[BridgeAccount(name)]; ok {
			c.errorf(Path("devices", BridgeAccount(name)), "%s is the login mqttgen makes on the hub for site %s's bridge: rename the device", BridgeAccount(name), name)
		}
		scheme, err := ParseDockerHost(s.DockerHost)
		if err != nil {
			c.errorf(p+".docker_host", "%v", err)
		}
		switch {
		case scheme == SchemeTCP && s.DockerCertPath == "":
			c.warnf(p+".docker_host", "a tcp:// engine without TLS gives root on %s to anyone who reaches its port: add docker_cert_path: FOLDER (ca.pem, cert.pem, key.pem, as DOCKER_CERT_PATH), or use ssh://", s.DockerHost)
		case scheme != "" && scheme != SchemeTCP && s.DockerCertPath != "":
			c.errorf(p+".docker_cert_path", "TLS files are for a tcp:// engine, and this one is %s://: remove docker_cert_path", scheme)
		}
		if other, ok := hosts[s.DockerHost]; ok && s.DockerHost != "" {
			c.errorf(p+".docker_host", "site %s is on this engine too: each site runs on an engine of its own", other)
		}
		hosts[s.DockerHost] = name
		if s.Image != "" && cfg.SiteEngine(name) == EngineMqttgen && strings.Contains(s.Image, "mosquitto") {
			c.errorf(p+".image", "%s is a Mosquitto image but the site's engine is \"mqttgen\": remove image, or set engine: \"mosquitto\"", s.Image)
		}
		if !validHost(s.Hostname) {
			c.errorf(p+".hostname", "%q is not a DNS name or IP address: write how the other sites reach this one, e.g. \"%s.home.arpa\"", s.Hostname, name)
		}
		ls := cfg.SiteListeners(name)
		if len(ls) == 0 {
			c.errorf(p, "no listener for this site: the home's listeners all serve TLS, whose certificate mqttgen makes for the hub alone; declare sites: %s: listeners: mqtt: port: 1883", name)
		}
		for _, ln := range SortedKeys(s.Listeners) {
			l := s.Listeners[ln]
			if l.TLS && !s.Hub {
				c.errorf(Path("sites", name, "listeners", ln, "tls"), "TLS listeners are served on the hub alone for now (mqttgen makes one server certificate, the hub's): set tls: false here")
			}
			if l.TLS && cfg.TLS == nil {
				c.errorf(Path("sites", name, "listeners", ln, "tls"), "tls is true but there are no TLS settings: add tls: server_names: [%q]", s.Hostname)
			}
			if l.Bind != "" && net.ParseIP(l.Bind) == nil {
				c.errorf(Path("sites", name, "listeners", ln, "bind"), "%q is not an IP address", l.Bind)
			}
		}
		if !s.Hub && len(hubs) > 0 {
			n := 0
			for _, d := range cfg.Devices {
				if d.Site == name {
					n++
				}
			}
			for _, u := range cfg.Users {
				if u.Site == name {
					n++
				}
			}
			if n == 0 {
				c.errorf(p, "no device or user logs in at site %s: apply proves a broker serves by a login, and a satellite's logins are its devices' and users'; add devices: NAME: site: %q (or users: NAME: site:), or remove the site", name, name)
			}
		}
		for i, sh := range s.Share {
			sp := at(p+".share", i)
			if err := checkBridgeFilter(sh.Pattern); err != nil {
				c.errorf(sp+".pattern", "%v", err)
			}
			for _, pre := range []struct{ field, v string }{{"local_prefix", sh.LocalPrefix}, {"remote_prefix", sh.RemotePrefix}} {
				if pre.v == "" {
					continue
				}
				if strings.ContainsAny(pre.v, "+#") || strings.HasPrefix(pre.v, "$") || !strings.HasSuffix(pre.v, "/") {
					c.errorf(sp+"."+pre.field, "%q: a prefix is plain topic levels ending in '/', e.g. \"garage/\"", pre.v)
				}
			}
		}
	}
}

// checkBridgeFilter checks a shared topic filter: a valid MQTT filter,
// never $SYS (each broker's own).
func checkBridgeFilter(f string) error {
	switch {
	case f == "":
		return fmt.Errorf("empty pattern: write a topic filter, e.g. \"garage/weather/#\"")
	case strings.HasPrefix(f, "$"):
		return fmt.Errorf("%q: topics starting with '$' ($SYS) belong to each broker and are never bridged", f)
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if l == "#" && i != len(levels)-1 {
			return fmt.Errorf("%q: '#' may only be the last level", f)
		}
		if l != "#" && l != "+" && strings.ContainsAny(l, "+#") {
			return fmt.Errorf("%q: a wildcard must be a whole level", f)
		}
	}
	return nil
}
