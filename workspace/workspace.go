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
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/internal/atomicfile"
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
}

// Open loads and checks the home at path (a folder or a .cue file). The
// state directory is stateDir, else $MQTTGEN_STATE, else .mqttgen beside
// home.cue. On errors, the returned error is schema.Diagnostics.
func Open(path, stateDir string) (*Home, error) {
	cfg, diags := schema.Load(path)
	if diags.Errors() > 0 {
		return nil, diags
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
	}

	var problems schema.Diagnostics
	passwords := map[string]string{}
	for _, a := range cfg.Accounts() {
		if a.Password == nil {
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
		if b.Password != nil {
			pw, err := h.Secrets.External(*b.Password)
			if err != nil {
				problems = append(problems, cfg.Errorf(schema.Path("bridges", name, "password"), "%v", err))
			} else {
				in.BridgePasswords[name] = pw
			}
		}
		if b.CAFile != "" {
			data, err := h.readPEM(b.CAFile)
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
		if a.Password != nil {
			continue
		}
		pw, err := h.Secrets.Password(a.Name, nil)
		if err != nil {
			return nil, fmt.Errorf("password of %s: %w", a.Name, err)
		}
		passwords[a.Name] = pw
	}
	in.Passwords = passwords
	in.Hashes, err = h.Secrets.Hashes(passwords, cfg.Broker.PasswordIterations)
	if err != nil {
		return nil, err
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
	return generators.Render(cfg, in), nil
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
	read := func(field, p string) []byte {
		if p == "" {
			return nil
		}
		data, err := h.readPEM(p)
		if err != nil {
			problems = append(problems, h.Config.Errorf("tls."+field, "%v", err))
		}
		return data
	}
	c := &generators.Certs{
		ServerCert: read("cert_file", t.CertFile),
		ServerKey:  read("key_file", t.KeyFile),
		ClientCA:   read("ca_file", t.CAFile),
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

// readPEM reads a file named in home.cue, relative to the home's folder.
func (h *Home) readPEM(p string) ([]byte, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(h.Dir, p)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %v", p, pe.Err)
		}
		return nil, err
	}
	if !bytes.Contains(data, []byte("-----BEGIN ")) {
		return nil, fmt.Errorf("%s: not a PEM file", p)
	}
	return data, nil
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
// whole folder to the broker's user: Mosquitto reads passwd, acl and keys
// after dropping privileges.
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
		return chownTree(out, name)
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

func chownTree(dir, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("the broker runs as %s when started as root: %w (install mosquitto, or render as another user)", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
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
