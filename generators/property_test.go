package generators

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/schema"
)

// The property (issue 11): for any home vet accepts, the rendered
// mosquitto.conf and acl, read back with the project's own parsers (the
// bundled broker's), hold exactly the listeners, security options, bridges
// and access rules the home declares: no string of the home can add an
// option, a listener, a bridge, a user section or a rule, or change one.
// Homes are generated with the strings of every field fuzzed; the ones vet
// refuses are skipped, and for inputs read at render (bridge passwords)
// Render itself must refuse what the password grammar refuses.

// nasty are fragments that end a line, split a word, open a section or
// mean something to one of the rendered formats.
var nasty = []string{
	"\n", "\r", "\r\n", "\t", " ", "  ", "\x00", "\x7f", "\u0085", "\u2028", "\"", "'", "`", "\\", "#", "%", "%%", "$", "${X}", ":", "+", "/", "//", "ü", "\ufffd",
	"\nlistener 40102\nallow_anonymous true",
	"\ncleansession false\ntopic x/# out 0\nconnection evil\naddress 127.0.0.1:40198\ntopic # both 0",
	"\nuser porch-sensor\ntopic readwrite zigbee2mqtt",
	"\ntopic readwrite #",
	"\npattern readwrite #",
	" both 0 x/ y/",
	"\nExecStartPre=/bin/sh",
	"\nMQTT_USER=admin",
}

// homeGen builds one home from a seed and extra fragments (the fuzzer's).
type homeGen struct {
	r     *rand.Rand
	extra []string
	// oneIn: a string is mutated with probability 1/oneIn (0: never).
	oneIn int
	// full takes every optional branch; with target > 0, the target-th
	// string alone gets frag spliced in (a systematic sweep).
	full   bool
	target int
	frag   string
	n      int
}

// maybe takes an optional branch: always for a full home.
func (g *homeGen) maybe() bool { return g.full || g.r.IntN(2) == 0 }

func newHomeGen(seed uint64, extra ...string) *homeGen {
	r := rand.New(rand.NewPCG(seed, 11))
	// Most homes get a mutation or two, so that each reaches vet alone
	// and vet's grammar, not a neighbour's, decides; some get many.
	return &homeGen{r: r, extra: extra, oneIn: []int{0, 60, 30, 15, 4}[r.IntN(5)]}
}

// s returns good, or now and then good mutated with a nasty fragment.
func (g *homeGen) s(good string) string {
	g.n++
	if g.target > 0 {
		if g.n == g.target {
			return good + g.frag
		}
		return good
	}
	if g.oneIn == 0 || g.r.IntN(g.oneIn) > 0 {
		return good
	}
	pool := nasty
	if len(g.extra) > 0 && g.r.IntN(2) == 0 {
		pool = g.extra
	}
	frag := pool[g.r.IntN(len(pool))]
	switch g.r.IntN(4) {
	case 0:
		return good + frag
	case 1:
		return frag + good
	case 2:
		i := g.r.IntN(len(good) + 1)
		return good[:i] + frag + good[i:]
	}
	return frag
}

func (g *homeGen) pick(list ...string) string { return list[g.r.IntN(len(list))] }

// home returns the home as CUE (JSON embedded in package home) and the
// bridge passwords Render gets from the environment.
func (g *homeGen) home() ([]byte, map[string]string) {
	h := map[string]any{}
	listeners := map[string]any{g.s("mqtt"): map[string]any{"port": 1883}}
	if g.maybe() {
		l := map[string]any{"port": 8883, "tls": true}
		if g.maybe() {
			l["bind"] = g.s(g.pick("127.0.0.1", "::1", "0.0.0.0"))
		}
		if !g.full && g.r.IntN(3) == 0 {
			l["anonymous"] = true
		}
		listeners[g.s("secure")] = l
		h["tls"] = map[string]any{"server_names": []string{g.s("mqtt.home.arpa"), g.s("192.168.1.2")}}
	}
	h["listeners"] = listeners
	broker := map[string]any{"hostname": g.s("mqtt.home.arpa")}
	if g.maybe() {
		image := g.pick("eclipse-mosquitto:2.0.20", "eclipse-mosquitto:2.1", "registry.example.com:5000/mosq/eclipse-mosquitto@sha256:"+strings.Repeat("ab", 32))
		broker["image"] = g.s(image)
		if strings.Contains(image, "@") {
			// A digest names no release: the home says which.
			broker["version"] = g.s("2.0.20")
		}
	}
	h["broker"] = broker
	anon := map[string]any{"allowed": g.full || g.r.IntN(3) == 0}
	anon["acl"] = []string{g.s("read public/#"), g.s("read " + g.s("weather") + "/+")}
	h["anonymous"] = anon
	users := map[string]any{
		g.s("admin"):         map[string]any{"acl": []string{g.s("readwrite #"), g.s("deny " + g.s("secret") + "/#")}},
		g.s("homeassistant"): map[string]any{"preset": "homeassistant"},
		g.s("z2m"):           map[string]any{"preset": "zigbee2mqtt"},
	}
	if g.maybe() {
		users[g.s("tasmota-1")] = map[string]any{"preset": "tasmota"}
	}
	h["users"] = users
	h["patterns"] = []string{g.s("readwrite users/%u/#"), g.s("read clients/%c/" + g.s("state"))}
	h["devices_topic"] = g.s("home")
	h["devices"] = map[string]any{
		g.s("porch-sensor"): map[string]any{
			"publishes": []string{g.s("temp"), "state"}, "subscribes": []string{g.s("set")}, "availability": true,
			"manufacturer": g.s("ACME"), "model": g.s("T-1000"),
			"entities": map[string]any{g.s("temp"): map[string]any{"component": "sensor", "state": "state", "name": g.s("Porch temperature"), "unit": g.s("°C"), "device_class": g.s("temperature")}},
		},
	}
	h["homeassistant"] = map[string]any{"user": "homeassistant", "discovery_prefix": g.s("homeassistant")}
	h["zigbee2mqtt"] = map[string]any{"user": "z2m", "base_topic": g.s("zigbee2mqtt")}
	passwords := map[string]string{}
	bridges := map[string]any{}
	nb := g.r.IntN(3)
	if g.full {
		nb = 2
	}
	for i := range nb {
		name := g.s(fmt.Sprintf("cloud%d", i))
		b := map[string]any{
			"address":  g.s(g.pick("cloud.example.com", "192.0.2.7", "[2001:db8::7]")) + ":" + g.s("8883"),
			"protocol": g.pick("mqttv311", "mqttv50"),
		}
		if g.maybe() {
			b["client_id"] = g.s("house-" + name)
		}
		if g.maybe() {
			b["username"] = g.s("house")
			b["password"] = map[string]any{"env": "PW"}
			passwords[name] = g.s("s3cret pass")
		}
		topics := []any{}
		for range 1 + g.r.IntN(2) + map[bool]int{true: 1}[g.full] {
			t := map[string]any{"pattern": g.s(g.pick("sensors/#", "a/+/b", "#")), "direction": g.pick("in", "out", "both"), "qos": g.r.IntN(3)}
			if g.maybe() {
				t["local_prefix"] = g.s("cloud/")
				t["remote_prefix"] = g.s("house/")
			}
			topics = append(topics, t)
		}
		b["topics"] = topics
		bridges[name] = b
	}
	h["bridges"] = bridges
	if g.maybe() {
		h["backup"] = map[string]any{"dir": g.s("backups"), "schedule": g.s("0 3 * * *")}
	}
	h["deploy"] = map[string]any{"project": g.s("home")}
	body, err := json.Marshal(h)
	if err != nil {
		panic(err)
	}
	return append([]byte("package home\n"), body...), passwords
}

var (
	hashOnce sync.Once
	aHash    string
)

// propertyInputs are fixed inputs with hashes that passwd.Parse reads.
func propertyInputs(cfg *schema.Config, passwords map[string]string) Inputs {
	hashOnce.Do(func() {
		h, err := passwd.Hash("x", 1)
		if err != nil {
			panic(err)
		}
		aHash = h
	})
	in := fixedInputs(cfg, ContainerLayout)
	for name := range in.Hashes {
		in.Hashes[name] = aHash
	}
	in.ProbeHash = aHash
	in.BridgePasswords = passwords
	return in
}

// checkHome renders one generated home and checks the property. It reports
// whether vet accepted the home.
func checkHome(t *testing.T, src []byte, passwords map[string]string) bool {
	cfg, diags := schema.LoadSource("home.cue", src)
	if diags.Errors() > 0 {
		return false
	}
	badPassword := false
	for name := range cfg.Bridges {
		if pw, ok := passwords[name]; ok && schema.Password.Check(pw) != nil {
			badPassword = true // secrets.External refuses it; Render must too
		}
	}
	files, err := Render(cfg, propertyInputs(cfg, passwords))
	if badPassword {
		if err == nil {
			t.Errorf("a bridge password the grammar refuses was rendered: %q\n%s", passwords, src)
		}
		return true
	}
	if err != nil {
		t.Errorf("vet accepted a home that does not render: %v\n%s", err, src)
		return true
	}
	byPath := map[string][]byte{}
	for _, f := range files {
		byPath[f.Path] = f.Data
	}
	c, err := conf.Parse("mosquitto.conf", bytes.NewReader(byPath["config/mosquitto.conf"]))
	if err != nil {
		t.Errorf("rendered mosquitto.conf does not parse: %v\n%s\n%s", err, src, byPath["config/mosquitto.conf"])
		return true
	}
	for _, msg := range confDiffers(cfg, passwords, c) {
		t.Errorf("mosquitto.conf: %s\n%s\n%s", msg, src, byPath["config/mosquitto.conf"])
	}
	a, err := acl.Parse(bytes.NewReader(byPath["config/acl"]))
	if err != nil {
		t.Errorf("rendered acl does not parse: %v\n%s\n%s", err, src, byPath["config/acl"])
		return true
	}
	for _, msg := range aclDiffers(cfg, a) {
		t.Errorf("acl: %s\n%s\n%s", msg, src, byPath["config/acl"])
	}
	entries, err := passwd.Parse(bytes.NewReader(byPath["config/passwd"]))
	if err != nil {
		t.Errorf("rendered passwd does not parse: %v\n%s", err, src)
		return true
	}
	var users []string
	for _, e := range entries {
		users = append(users, e.User)
	}
	var accounts []string
	for _, a := range cfg.Accounts() {
		accounts = append(accounts, a.Name)
	}
	accounts = append(accounts, schema.ProbeUser) // the healthcheck's login
	slices.Sort(accounts)
	if !slices.Equal(users, accounts) {
		t.Errorf("passwd users %q, want %q\n%s", users, accounts, src)
	}
	return true
}

// confDiffers compares the parsed mosquitto.conf with what the home says.
func confDiffers(cfg *schema.Config, passwords map[string]string, c *conf.Config) []string {
	var out []string
	l := ContainerLayout
	wantSecurity := func(anonymous bool) conf.Security {
		return conf.Security{AllowAnonymous: &anonymous, PasswordFile: path.Join(l.ConfigDir, "passwd"), ACLFile: path.Join(l.ConfigDir, "acl")}
	}
	sameSecurity := func(a, b conf.Security) bool {
		return a.Anonymous() == b.Anonymous() && a.AllowAnonymous != nil && a.PasswordFile == b.PasswordFile && a.ACLFile == b.ACLFile
	}
	// 2.0 says per_listener_settings; 2.1 and later listener_allow_anonymous
	// under each listener, with the plugins global: what each listener
	// enforces is compared below, whichever the dialect.
	plugins := TargetVersion(cfg, Inputs{}).Plugins()
	if c.PerListenerSettings != (cfg.PerListenerSettings() && !plugins) {
		out = append(out, fmt.Sprintf("per_listener_settings %v", c.PerListenerSettings))
	}
	if !plugins && !c.PerListenerSettings && !sameSecurity(c.Security, wantSecurity(cfg.Anonymous.Allowed)) {
		out = append(out, fmt.Sprintf("security %+v", c.Security))
	}
	if c.User != "" {
		out = append(out, "user "+c.User)
	}
	order := listenerOrder(cfg)
	if len(c.Listeners) != len(order) {
		out = append(out, fmt.Sprintf("%d listeners, want %d", len(c.Listeners), len(order)))
	} else {
		for i, name := range order {
			want, got := cfg.Listeners[name], c.Listeners[i]
			if got.Port != want.Port || got.Bind != "" || got.Protocol != want.Protocol || got.TLS() != want.TLS {
				out = append(out, fmt.Sprintf("listener %d: %+v, want %+v", i, got, want))
			}
			if sec := c.SecurityFor(got); !sameSecurity(sec, wantSecurity(cfg.AnonymousOn(want))) {
				out = append(out, fmt.Sprintf("listener %d security %+v", i, sec))
			}
		}
	}
	if c.MaxPacketSize != uint32(cfg.Limits.MaxPacketBytes()) {
		out = append(out, fmt.Sprintf("max_packet_size %d", c.MaxPacketSize))
	}
	names := schema.SortedKeys(cfg.Bridges)
	if len(c.Bridges) != len(names) {
		return append(out, fmt.Sprintf("%d bridges, want %d", len(c.Bridges), len(names)))
	}
	for i, name := range names {
		b, got := cfg.Bridges[name], c.Bridges[i]
		clientID := b.ClientID
		if clientID == "" {
			clientID = cfg.Deploy.Project + "-" + name
		}
		pw, hasPW := passwords[name]
		if b.Password == nil {
			pw, hasPW = "", false
		}
		want := &conf.Bridge{
			Line: got.Line, Name: name, Addresses: []string{b.Address}, ProtocolVersion: b.Protocol,
			RemoteClientID: clientID, RemoteUsername: b.Username, RemotePassword: pw, HasPassword: hasPW,
			CleanSession: b.CleanSession, CAPath: got.CAPath, CAFile: got.CAFile, TLSVersion: got.TLSVersion,
		}
		for _, t := range b.Topics {
			want.Topics = append(want.Topics, conf.BridgeTopic{Pattern: t.Pattern, Direction: t.Direction, QoS: byte(t.QoS), LocalPrefix: t.LocalPrefix, RemotePrefix: t.RemotePrefix})
		}
		if !reflect.DeepEqual(got, want) {
			out = append(out, fmt.Sprintf("bridge %s:\n got %+v\nwant %+v", name, got, want))
		}
	}
	return out
}

// aclDiffers compares the parsed acl with the rules the home declares.
func aclDiffers(cfg *schema.Config, a *acl.File) []string {
	var out []string
	var everyone, patterns []acl.Rule
	for _, s := range cfg.Patterns {
		r, _ := acl.ParseRule(s, true)
		if strings.Contains(r.Topic, "%u") || strings.Contains(r.Topic, "%c") {
			patterns = append(patterns, r)
		} else {
			everyone = append(everyone, r)
		}
	}
	var anon []acl.Rule
	for _, s := range cfg.Anonymous.ACL {
		r, _ := acl.ParseRule(s, false)
		anon = append(anon, r)
	}
	anon = append(anon, everyone...)
	if !slices.Equal(a.Anonymous, anon) {
		out = append(out, fmt.Sprintf("anonymous rules %v, want %v", a.Anonymous, anon))
	}
	if !slices.Equal(a.Patterns, patterns) {
		out = append(out, fmt.Sprintf("patterns %v, want %v", a.Patterns, patterns))
	}
	var want []acl.Section
	for _, acc := range cfg.Accounts() {
		if rules := append(AccountRules(cfg, acc.Name), everyone...); len(rules) > 0 {
			want = append(want, acl.Section{User: acc.Name, Rules: rules})
		}
	}
	// The healthcheck's login may do nothing at all.
	want = append(want, acl.Section{User: schema.ProbeUser, Rules: []acl.Rule{{Access: acl.Deny, Topic: "#"}, {Access: acl.Deny, Topic: "$SYS/#"}}})
	if !reflect.DeepEqual(a.Users, want) {
		out = append(out, fmt.Sprintf("user sections\n got %v\nwant %v", a.Users, want))
	}
	// The rules themselves, from the home's text, not from the generator:
	// a device writes and reads only below <devices_topic>/<device>/.
	for _, s := range a.Users {
		if d, ok := cfg.Devices[s.User]; ok {
			for _, r := range s.Rules {
				if !strings.HasPrefix(r.Topic, cfg.DevicesTopic+"/"+s.User+"/") || r.Access == acl.ReadWrite {
					out = append(out, fmt.Sprintf("device %s has rule %v", s.User, r))
				}
			}
			if n := len(d.Publishes) + len(d.Subscribes); len(s.Rules) > n+1+len(everyone) {
				out = append(out, fmt.Sprintf("device %s has %d rules", s.User, len(s.Rules)))
			}
		}
	}
	return out
}

// propertyHomes is how many generated homes `go test` checks: a fixed
// budget of a few seconds. `make fuzz` runs FuzzRenderedFilesMeanTheHome
// for longer.
const propertyHomes = 250

// TestRenderedFilesMeanTheHome checks the property on generated homes,
// deterministically (seeds 0 to propertyHomes-1).
func TestRenderedFilesMeanTheHome(t *testing.T) {
	accepted := 0
	for seed := range uint64(propertyHomes) {
		src, pw := newHomeGen(seed).home()
		if checkHome(t, src, pw) {
			accepted++
		}
		if t.Failed() {
			t.Fatalf("seed %d", seed)
		}
	}
	// The generator must reach rendering often enough to mean something.
	if accepted < propertyHomes/20 {
		t.Errorf("vet accepted only %d of %d generated homes", accepted, propertyHomes)
	}
	t.Logf("vet accepted %d of %d generated homes", accepted, propertyHomes)
}

// sweepFragments are spliced, one at a time, into each string of a full
// home by TestRenderedFilesMeanTheHomeSweep: a line break, a space, and
// issue 11's two shapes of injection (a hidden bridge in mosquitto.conf, a
// user section in the acl). The random test and the fuzz target's seeds
// carry the other fragments and reproductions.
var sweepFragments = []string{
	"\n", " ",
	"\ncleansession false\ntopic x/# out 0\nconnection evil\naddress 127.0.0.1:40198\ntopic # both 0",
	"\nuser porch-sensor\ntopic readwrite zigbee2mqtt",
}

// TestRenderedFilesMeanTheHomeSweep splices each of sweepFragments into each
// string of one full home in turn (every field at once is the random test's
// job): whatever vet accepts must keep the property.
func TestRenderedFilesMeanTheHomeSweep(t *testing.T) {
	base := &homeGen{r: rand.New(rand.NewPCG(0, 11)), full: true}
	src, pw := base.home()
	if !checkHome(t, src, pw) {
		t.Fatalf("the full home does not vet:\n%s", src)
	}
	sites, homes, accepted := base.n, 0, 0
	for _, frag := range sweepFragments {
		for target := 1; target <= sites; target++ {
			g := &homeGen{r: rand.New(rand.NewPCG(0, 11)), full: true, target: target, frag: frag}
			src, pw := g.home()
			homes++
			if checkHome(t, src, pw) {
				accepted++
			}
			if t.Failed() {
				t.Fatalf("fragment %q in string %d", frag, target)
			}
		}
	}
	t.Logf("%d strings, %d homes, vet accepted %d", sites, homes, accepted)
}

// FuzzRenderedFilesMeanTheHome: the fuzzer chooses the seed of the home's
// shape and two fragments that the generator splices into its strings.
func FuzzRenderedFilesMeanTheHome(f *testing.F) {
	// Issue 11's reproductions.
	f.Add(uint64(1), "\ncleansession false\ntopic x/# out 0\nconnection evil\naddress 127.0.0.1:40198\ntopic # both 0", "")
	f.Add(uint64(2), "\nlistener 40102\nallow_anonymous true", "")
	f.Add(uint64(3), "\nuser porch-sensor\ntopic readwrite zigbee2mqtt", "\ntopic readwrite #")
	f.Add(uint64(4), " ", "\n")
	f.Add(uint64(5), "", "")
	f.Fuzz(func(t *testing.T, seed uint64, a, b string) {
		src, pw := newHomeGen(seed, a, b).home()
		checkHome(t, src, pw)
	})
}
