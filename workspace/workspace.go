// Package workspace is one home on disk: the folder of home.cue, its state
// directory (generated passwords, hashes, certificates), and the folder
// rendered files go to. It runs the pipeline schema -> secrets and pki ->
// generators -> files, resolving every input before it writes anything.
package workspace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/internal/atomicfile"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/mosquitto/version"
	"github.com/mqttgen/mqttgen/pki"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/secrets"
)

// StateEnv overrides the state directory.
const StateEnv = "MQTTGEN_STATE"

// DefaultStateDir is the state directory's name beside home.cue.
const DefaultStateDir = ".mqttgen"

// Home is a loaded home.
type Home struct {
	// Dir is the folder of the home's .cue files.
	Dir      string
	Config   *schema.Config
	Warnings schema.Diagnostics
	Secrets  *secrets.Store
	// SiteName is the site this Home is the view of (see Site); "" for
	// the whole home.
	SiteName string
	// parent is the whole home of a site's view.
	parent *Home
}

// Open loads and checks the home at path (a folder or a .cue file). The
// state directory is stateDir, else $MQTTGEN_STATE, else .mqttgen beside
// home.cue. On errors, the returned error is schema.Diagnostics.
func Open(path, stateDir string) (*Home, error) {
	cfg, diags := schema.Load(path)
	if diags.Errors() > 0 {
		return nil, diags
	}
	if loops := generators.CheckSites(cfg); len(loops) > 0 {
		return nil, loops
	}
	dir := path
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		dir = filepath.Dir(path)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if stateDir == "" {
		stateDir = os.Getenv(StateEnv)
	}
	if stateDir == "" {
		stateDir = filepath.Join(dir, DefaultStateDir)
	}
	stateDir, err = filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	return &Home{Dir: dir, Config: cfg, Warnings: diags, Secrets: secrets.NewStore(stateDir, dir)}, nil
}

// RenderOptions choose the flavour of the files.
type RenderOptions struct {
	// Local renders paths into Out, to run mosquitto on this host as the
	// current user; otherwise paths are those of the container.
	Local bool
	// Out is the output folder; it must be absolute for Local.
	Out string
	Now time.Time
	// KeepUser renders `user` as the current user: the broker keeps running
	// as the user that starts it (mqttgen serve starts it itself). Without
	// it, a broker started as root drops to its default user, mosquitto.
	KeepUser bool
	// Mosquitto is the mosquitto binary a Local render is for: its release
	// decides the dialect and its plugins are found beside it. Empty: the
	// one on PATH; with none there, the image's release and plugin folder.
	Mosquitto string
	// PluginDir overrides the folder of the acl-file and password-file
	// plugins (render --plugin-dir).
	PluginDir string
	// Bundled renders a Local home for the bundled broker (mqttgen serve),
	// which reads both dialects: no mosquitto is looked for.
	Bundled bool
}

// Render resolves every secret and certificate and returns the files.
// Passwords that come from files or the environment are read first, so a
// missing one stops rendering before anything is written.
func (h *Home) Render(opts RenderOptions) ([]generators.File, error) {
	cfg := h.Config
	in := generators.Inputs{
		Layout:          generators.ContainerLayout,
		HomeDir:         h.Dir,
		StateDir:        h.Secrets.Dir,
		BridgePasswords: map[string]string{},
		BridgeCAs:       map[string][]byte{},
	}
	if opts.Local {
		runAs := LocalRunAs()
		if opts.KeepUser {
			u, err := user.Current()
			if err != nil {
				return nil, err
			}
			runAs = u.Username
		} else if err := reachable(opts.Out, runAs); err != nil {
			return nil, err
		}
		in.Layout = generators.LocalLayout(opts.Out, runAs)
		if err := localMosquitto(&in, opts); err != nil {
			return nil, err
		}
		if err := forRelease(cfg, in); err != nil {
			return nil, err
		}
	}

	kept, problems := h.KeptHashes()
	passwords := map[string]string{}
	for _, a := range cfg.Accounts() {
		if a.Password == nil || a.Password.Hash {
			continue
		}
		pw, err := h.Secrets.External(*a.Password)
		if err != nil {
			problems = append(problems, cfg.Errorf(accountPath(a, "password"), "%v", err))
			continue
		}
		passwords[a.Name] = pw
	}
	for _, name := range schema.SortedKeys(cfg.Bridges) {
		b := cfg.Bridges[name]
		if sb := b.Site; sb != nil {
			// A satellite's bridge: the hub's generated login, the
			// hub's CA (the same state directory made both).
			pw, err := h.Secrets.Password(sb.Account, nil)
			if err != nil {
				return nil, fmt.Errorf("password of %s: %w", sb.Account, err)
			}
			in.BridgePasswords[name] = pw
			if sb.HubCA {
				hub, err := h.parent.Site(h.parent.Config.Hub())
				if err != nil {
					return nil, err
				}
				bundle, err := hub.certs(opts.Now)
				if err != nil {
					return nil, fmt.Errorf("the hub's CA: %w", err)
				}
				in.BridgeCAs[name] = bundle.CACert
			}
			continue
		}
		if b.Password != nil {
			pw, err := h.Secrets.External(*b.Password)
			if err != nil {
				problems = append(problems, cfg.Errorf(schema.Path("bridges", name, "password"), "%v", err))
			} else {
				in.BridgePasswords[name] = pw
			}
		}
		if b.CAFile != "" {
			data, err := h.readPEM(b.CAFile, pki.Certificates)
			if err != nil {
				problems = append(problems, cfg.Errorf(schema.Path("bridges", name, "ca_file"), "%v", err))
			} else {
				in.BridgeCAs[name] = data
			}
		}
	}
	userTLS, err := h.userCerts()
	if err != nil {
		problems = append(problems, err.(schema.Diagnostics)...)
	}
	if len(problems) > 0 {
		return nil, problems
	}

	for _, a := range cfg.Accounts() {
		if _, ok := kept[a.Name]; ok || (a.Password != nil && !a.Password.Hash) {
			continue
		}
		pw, err := h.Secrets.Password(a.Name, nil)
		if err != nil {
			return nil, fmt.Errorf("password of %s: %w", a.Name, err)
		}
		passwords[a.Name] = pw
	}
	// The healthcheck's login: generated and kept like an account's, hashed
	// (and its hash kept) with them, but no account of home.cue.
	probe, err := h.Secrets.Password(schema.ProbeUser, nil)
	if err != nil {
		return nil, fmt.Errorf("password of the healthcheck's login %s: %w", schema.ProbeUser, err)
	}
	passwords[schema.ProbeUser] = probe
	in.Hashes, err = h.Secrets.Hashes(passwords, cfg.Broker.PasswordIterations, h.otherSitesAccounts()...)
	if err != nil {
		return nil, err
	}
	in.ProbePassword, in.ProbeHash = probe, in.Hashes[schema.ProbeUser]
	delete(passwords, schema.ProbeUser)
	delete(in.Hashes, schema.ProbeUser)
	in.Passwords = passwords
	for name, hash := range kept {
		in.Hashes[name] = hash
	}

	switch {
	case !cfg.HasTLS():
	case userTLS != nil:
		in.Certs = userTLS
	default:
		b, err := h.certs(opts.Now)
		if err != nil {
			return nil, fmt.Errorf("certificates: %w", err)
		}
		in.Certs = &generators.Certs{ServerCert: b.ServerCert, ServerKey: b.ServerKey, CA: b.CACert, ClientCA: b.CACert}
	}
	return generators.Render(cfg, in)
}

// Site is the home as one site's broker sees it (generators.SiteConfig):
// rendered, deployed and backed up as a home without sites, with the same
// folder and state directory. A home without sites is its own only site,
// "".
func (h *Home) Site(name string) (*Home, error) {
	if !h.Config.HasSites() {
		if name != "" {
			return nil, fmt.Errorf("--site %s: the home declares no sites", name)
		}
		return h, nil
	}
	cfg, err := generators.SiteConfig(h.Config, name)
	if err != nil {
		return nil, err
	}
	v := *h
	v.Config, v.SiteName, v.parent = cfg, name, h
	return &v, nil
}

// otherSitesAccounts are the logins of every site of the home a site's
// view belongs to: their kept hashes stay while one site renders.
func (h *Home) otherSitesAccounts() []string {
	if h.parent == nil {
		return nil
	}
	cfg := h.parent.Config
	var names []string
	for _, a := range cfg.Accounts() {
		names = append(names, a.Name)
	}
	for _, site := range cfg.SiteNames() {
		names = append(names, schema.BridgeAccount(site))
	}
	return names
}

// Sites are the home's sites in the order apply converges them (the hub
// first), or one "" for a home without sites.
func (h *Home) Sites() []string {
	if !h.Config.HasSites() {
		return []string{""}
	}
	return h.Config.SiteNames()
}

// KeptHashes returns the kept hash of each account with password: "hash"
// that has not been rotated since (a rotated one has a generated password).
// A missing hash, or a 64-byte salt (Mosquitto 2.1's) where the broker is
// Mosquitto 2.0 or the bundled broker, is an error at the account's
// password: 2.0 would drop the user, with only a line in its log.
func (h *Home) KeptHashes() (map[string]string, schema.Diagnostics) {
	cfg := h.Config
	kept := map[string]string{}
	var problems schema.Diagnostics
	for _, a := range cfg.Accounts() {
		if a.Password == nil || !a.Password.Hash {
			continue
		}
		path := accountPath(a, "password")
		if pw, err := h.Secrets.Generated(a.Name); err != nil {
			problems = append(problems, cfg.Errorf(path, "%v", err))
			continue
		} else if pw != "" {
			continue
		}
		hash, err := h.Secrets.KeptHash(a.Name)
		switch {
		case err != nil:
			problems = append(problems, cfg.Errorf(path, "%v", err))
		case hash == "":
			problems = append(problems, cfg.Errorf(path, "no kept hash of %s in %s: import the setup again with mqttgen import, or give it a new password with `mqttgen secrets rotate %s`", a.Name, filepath.Join(h.Secrets.Dir, "hashes"), a.Name))
		case !cfg.Broker.ReadsLongSalts() && longSalt(hash):
			problems = append(problems, cfg.Errorf(path, "the kept hash of %s has a 64-byte salt (Mosquitto 2.1's), which %s cannot read: it would drop the user. Run Mosquitto 2.1 (broker.image: \"eclipse-mosquitto:2.1.2\"), or give %s a new password with `mqttgen secrets rotate %s`", a.Name, brokerName(cfg), a.Name, a.Name))
		default:
			kept[a.Name] = hash
		}
	}
	return kept, problems
}

func longSalt(hash string) bool {
	p, err := passwd.ParseHash21(hash)
	return err == nil && p.LongSalt()
}

func brokerName(cfg *schema.Config) string {
	if cfg.Broker.Engine == schema.EngineMqttgen {
		return "the bundled broker (engine \"mqttgen\")"
	}
	return "Mosquitto 2.0 (" + cfg.Broker.ImageRef() + ")"
}

// localMosquitto sets the release and plugin folder of the mosquitto a
// Local render is for.
func localMosquitto(in *generators.Inputs, opts RenderOptions) error {
	in.Layout.PluginDir = opts.PluginDir
	if in.Layout.PluginDir == "" {
		in.Layout.PluginDir = generators.ContainerLayout.PluginDir
	}
	if opts.Bundled {
		return nil
	}
	bin := opts.Mosquitto
	if bin == "" {
		found, err := exec.LookPath("mosquitto")
		if err != nil {
			return nil // the image's release, and its plugin folder
		}
		bin = found
	}
	l, err := version.Detect(bin, opts.PluginDir)
	if err != nil {
		return err
	}
	in.Mosquitto = l.Version
	in.MosquittoSource = l.Path
	in.Layout.PluginDir = l.PluginDir
	return nil
}

// forRelease refuses what the release a Local render found on PATH cannot
// express, which vet (checking against the image) let through.
func forRelease(cfg *schema.Config, in generators.Inputs) error {
	if in.Mosquitto.IsZero() || in.Mosquitto.Plugins() {
		return nil
	}
	var problems schema.Diagnostics
	for _, name := range schema.SortedKeys(cfg.Listeners) {
		if cfg.Listeners[name].Protocols != nil {
			problems = append(problems, cfg.Errorf(schema.Path("listeners", name, "protocols"), "the mosquitto on this host (%s, %s) accepts every protocol version on every listener: remove protocols, or render for Mosquitto 2.1 (--local with its mosquitto first on PATH)", in.Mosquitto, in.MosquittoSource))
		}
	}
	if len(problems) > 0 {
		return problems
	}
	return nil
}

func accountPath(a schema.Account, field string) string {
	if a.Device {
		return schema.Path("devices", a.Name, field)
	}
	return schema.Path("users", a.Name, field)
}

// Bundle gathers the login of an account for a client: endpoints, password
// and, with TLS, the CA that mqttgen made.
func (h *Home) Bundle(a schema.Account, now time.Time) (generators.Bundle, error) {
	pw, err := h.Secrets.Password(a.Name, a.Password)
	if err != nil {
		return generators.Bundle{}, err
	}
	var ca []byte
	if h.Config.HasTLS() && (h.Config.TLS == nil || h.Config.TLS.CertFile == "") {
		b, err := h.certs(now)
		if err != nil {
			return generators.Bundle{}, err
		}
		ca = b.CACert
	}
	return generators.NewBundle(h.Config, a.Name, pw, ca), nil
}

// ReadOnly makes the home write nothing into its state directory: Render
// and Bundle make what is missing (passwords, hashes, certificates) in
// memory only. plan and status are read-only this way; apply, render and
// serve keep what they make.
func (h *Home) ReadOnly() { h.Secrets.ReadOnly = true }

// HasSecretsOf reports whether everything a's login needs is already in the
// state directory (or elsewhere, for password: file/env): its password and,
// when mqttgen makes the TLS certificates, the CA.
func (h *Home) HasSecretsOf(a schema.Account) bool {
	if a.Password == nil {
		if pw, err := h.Secrets.Generated(a.Name); err != nil || pw == "" {
			return false
		}
	}
	if h.Config.HasTLS() && (h.Config.TLS == nil || h.Config.TLS.CertFile == "") {
		for _, f := range []string{"ca.crt", "ca.key"} {
			if _, err := os.Stat(filepath.Join(h.CertDir(), f)); err != nil {
				return false
			}
		}
	}
	return true
}

func (h *Home) certs(now time.Time) (*pki.Bundle, error) {
	if h.Secrets.ReadOnly {
		return pki.Peek(h.CertDir(), h.ServerNames(), now)
	}
	return pki.Ensure(h.CertDir(), h.ServerNames(), now)
}

// CertDir is where mqttgen keeps its CA and server certificate.
func (h *Home) CertDir() string { return filepath.Join(h.Secrets.Dir, "certs") }

// ServerNames are the names the server certificate carries: the broker's
// hostname and tls.server_names.
func (h *Home) ServerNames() []string {
	names := []string{}
	if h.Config.TLS != nil {
		names = append(names, h.Config.TLS.ServerNames...)
	}
	slices.Sort(names)
	// broker.hostname first: it is the certificate's common name.
	host := h.Config.Broker.Hostname
	return append([]string{host}, slices.DeleteFunc(slices.Compact(names), func(n string) bool { return n == host })...)
}

// userCerts reads the certificate files a user gave in tls:, if any.
func (h *Home) userCerts() (*generators.Certs, error) {
	t := h.Config.TLS
	if t == nil || !h.Config.HasTLS() || (t.CertFile == "" && t.CAFile == "") {
		return nil, nil
	}
	var problems schema.Diagnostics
	read := func(field, p string, kind pki.Kind) []byte {
		if p == "" {
			return nil
		}
		data, err := h.readPEM(p, kind)
		if err != nil {
			problems = append(problems, h.Config.Errorf("tls."+field, "%v", err))
		}
		return data
	}
	c := &generators.Certs{
		ServerCert: read("cert_file", t.CertFile, pki.Certificates),
		ServerKey:  read("key_file", t.KeyFile, pki.PrivateKey),
		ClientCA:   read("ca_file", t.CAFile, pki.Certificates),
	}
	if len(problems) > 0 {
		return nil, problems
	}
	if t.CertFile == "" {
		// Only a client CA of the user's: mqttgen still makes the server's.
		return nil, nil
	}
	if err := pki.Match(c.ServerCert, c.ServerKey); err != nil {
		return nil, schema.Diagnostics{h.Config.Errorf("tls.key_file", "%v", err)}
	}
	return c, nil
}

// readPEM reads a PEM file named in home.cue, relative to the home's
// folder, with a size limit, and checks that it holds only what kind says.
func (h *Home) readPEM(p string, kind pki.Kind) ([]byte, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(h.Dir, p)
	}
	return pki.ReadPEM(p, kind)
}

// CheckFiles reads every certificate and key file the home names and
// reports, at the field that names it, one that is missing, too large or
// holds something else than it must (a private key in a CA file). vet runs
// it; render reads the same files the same way.
func (h *Home) CheckFiles() schema.Diagnostics {
	cfg := h.Config
	var out schema.Diagnostics
	check := func(field, p string, kind pki.Kind) {
		if p == "" {
			return
		}
		if _, err := h.readPEM(p, kind); err != nil {
			out = append(out, cfg.Errorf(field, "%v", err))
		}
	}
	if t := cfg.TLS; t != nil && cfg.HasTLS() {
		check("tls.cert_file", t.CertFile, pki.Certificates)
		check("tls.key_file", t.KeyFile, pki.PrivateKey)
		check("tls.ca_file", t.CAFile, pki.Certificates)
	}
	for _, name := range schema.SortedKeys(cfg.Bridges) {
		check(schema.Path("bridges", name, "ca_file"), cfg.Bridges[name].CAFile, pki.Certificates)
	}
	return out
}

// manifest lists the files the last render wrote, so that a render can
// remove what the home no longer produces: the same list deploy keeps in
// a container.
const manifest = engine.ManifestName

// LocalBrokerUser is the user Debian's mosquitto runs as.
const LocalBrokerUser = "mosquitto"

// LocalRunAs is the user a locally run broker ends up as: started as root,
// Mosquitto drops to its own user (and warns if it stays root); started as
// anyone else, or where there is no such user, it stays who started it.
func LocalRunAs() string {
	if os.Geteuid() != 0 {
		return ""
	}
	if _, err := user.Lookup(LocalBrokerUser); err != nil {
		return ""
	}
	return LocalBrokerUser
}

// Write puts files under out atomically, one by one, and removes files an
// earlier render wrote that are no longer produced. For a local layout it
// also makes the data and log folders and, when run as root, hands the
// broker's files it wrote (config/) and those two folders to the broker's
// user, and nothing else: Mosquitto reads passwd, acl and keys after
// dropping privileges, but out may hold the state directory or other files
// (render -o .), which must stay root's.
func Write(out string, files []generators.File, local bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	old := readManifest(out)
	var list bytes.Buffer
	batch := make([]atomicfile.File, 0, len(files))
	for _, f := range files {
		p := filepath.Join(out, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		fmt.Fprintln(&list, f.Path)
		delete(old, f.Path)
		if unchanged(p, f) {
			continue
		}
		batch = append(batch, atomicfile.File{Path: p, Data: f.Data, Mode: f.Mode})
	}
	if err := atomicfile.WriteAll(batch); err != nil {
		return err
	}
	for p := range old {
		if err := os.Remove(filepath.Join(out, filepath.FromSlash(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := atomicfile.Write(filepath.Join(out, manifest), list.Bytes(), 0o644); err != nil {
		return err
	}
	if !local {
		return nil
	}
	for _, d := range []string{"data", "log"} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return err
		}
	}
	if name := LocalRunAs(); name != "" {
		return chownBroker(out, files, name)
	}
	return nil
}

// reachable checks that the user a root-started broker drops to can walk
// down to dir: every existing folder above it must let others search it.
// Checked before anything is written.
func reachable(dir, name string) error {
	if name == "" {
		return nil
	}
	for p := filepath.Dir(filepath.Clean(dir)); ; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.IsDir() && st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the broker drops to user %s, who cannot enter %s (mode %04o): render into a folder it can reach, e.g. /srv/mqtt, or run as another user", name, p, st.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// chownBroker gives user name the files under config/ and the data and log
// folders themselves (not their contents, not the folders above): what the
// broker reads after dropping to it, and where it writes.
func chownBroker(out string, files []generators.File, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("the broker runs as %s when started as root: %w (install mosquitto, or render as another user)", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	paths := []string{"data", "log"}
	for _, f := range files {
		if strings.HasPrefix(f.Path, "config/") {
			paths = append(paths, f.Path)
		}
	}
	for _, p := range paths {
		if err := os.Lchown(filepath.Join(out, filepath.FromSlash(p)), uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// unchanged reports whether the file at p already holds f, mode included.
func unchanged(p string, f generators.File) bool {
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != f.Mode || st.Size() != int64(len(f.Data)) {
		return false
	}
	data, err := os.ReadFile(p)
	return err == nil && bytes.Equal(data, f.Data)
}

func readManifest(out string) map[string]bool {
	data, err := os.ReadFile(filepath.Join(out, manifest))
	if err != nil {
		return map[string]bool{}
	}
	m := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// Only plain relative paths: a manifest never reaches outside out.
		if p := sc.Text(); p != "" && filepath.IsLocal(filepath.FromSlash(p)) && !strings.HasPrefix(p, ".") {
			m[p] = true
		}
	}
	return m
}
