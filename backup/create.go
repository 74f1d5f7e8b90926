package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// Default folders of the eclipse-mosquitto image.
const (
	DefaultConfigDir = "/mosquitto/config"
	DefaultDataDir   = "/mosquitto/data"
)

// Target is the broker container a backup is read from.
type Target struct {
	ID        string
	Name      string
	Image     string
	ImageID   string
	Engine    string
	State     string
	Running   bool
	StartedAt time.Time
	ConfigDir string
	// DataDir is where the data volume is mounted (persistence_location).
	DataDir string
}

// ErrNoBroker says the project has no broker container on the engine.
var ErrNoBroker = errors.New("no broker container")

// FindBroker finds the project's broker container by compose's labels
// (id, when given, names it directly).
func FindBroker(ctx context.Context, cli *client.Client, project, id string) (*Target, error) {
	if id == "" {
		var err error
		if id, err = engine.FindService(ctx, cli, project, generators.BrokerService); errors.Is(err, engine.ErrNotFound) {
			return nil, fmt.Errorf("project %q has %w on the Docker engine: nothing to back up (mqttgen apply deploys it)", project, ErrNoBroker)
		} else if err != nil {
			return nil, err
		}
	}
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspect the broker container: %w", err)
	}
	c := res.Container
	t := &Target{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), ImageID: c.Image, ConfigDir: DefaultConfigDir, DataDir: DefaultDataDir}
	if c.Config != nil {
		t.Image = c.Config.Image
		t.Engine = c.Config.Labels[generators.LabelEngine]
		if d := c.Config.Labels[engine.LabelConfigDir]; d != "" {
			t.ConfigDir = d
		}
	}
	if st := c.State; st != nil {
		t.State = string(st.Status)
		t.Running = st.Running && !st.Restarting
		t.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
	}
	for _, m := range c.Mounts {
		if strings.HasSuffix(m.Name, "_data") || m.Destination == DefaultDataDir {
			t.DataDir = m.Destination
		}
	}
	return t, nil
}

// Options of Create.
type Options struct {
	Project string
	// Dir is the backup folder; Keep archives of the project are kept
	// there after this one is written (0 removes none).
	Dir  string
	Keep int
	// Protect lists archives retention must not remove.
	Protect []string
	// StateDir is the state directory: its certificates go into the
	// archive, and with WithSecrets its keys and passwords, encrypted with
	// Passphrase.
	StateDir    string
	WithSecrets bool
	Passphrase  string
	// ContainerID names the broker's container; "" finds it by labels.
	ContainerID string
	// Reason is recorded in the manifest.
	Reason string
	// Automatic marks apply's and restore's own archives (KindAutomatic):
	// Keep then counts those only, and deliberate archives are never
	// removed for them.
	Automatic bool
	// FlushTimeout bounds the wait for the database after SIGUSR1
	// (default 30s).
	FlushTimeout time.Duration
	// Progress receives a line per step; nil drops them.
	Progress func(string)
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Result is a written archive; as JSON (backup --json) its fields are
// snake_case, as every --json of mqttgen.
type Result struct {
	Path     string    `json:"path"`
	Size     int64     `json:"size"`
	Kind     string    `json:"kind"`
	Manifest *Manifest `json:"manifest"`
	// Removed are the older archives retention removed.
	Removed []string `json:"removed"`
	// FlushTook is how long the broker took to write its database.
	FlushTook time.Duration `json:"-"`
	// Counts of what the archive holds.
	ConfigFiles int `json:"config_files"`
	DataFiles   int `json:"data_files"`
	StateFiles  int `json:"state_files"`
}

// MarshalJSON adds flush_seconds, the duration in seconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		FlushSeconds float64 `json:"flush_seconds"`
	}{plain(r), r.FlushTook.Seconds()})
}

// Create backs up the project's broker without stopping it: it sends
// SIGUSR1 (Mosquitto writes its persistence database; clients stay
// connected), waits until the database file changed, then reads the data
// volume and the deployed config through the Docker API (GET
// /containers/{id}/archive), adds the state directory's certificates, and
// writes the archive into opts.Dir atomically. A stopped broker is backed up
// as its volume holds it.
func Create(ctx context.Context, cli *client.Client, opts Options) (*Result, error) {
	if opts.WithSecrets {
		if err := CheckPassphrase(opts.Passphrase); err != nil {
			return nil, err
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FlushTimeout == 0 {
		opts.FlushTimeout = 30 * time.Second
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	if opts.Dir == "" {
		return nil, errors.New("no backup folder")
	}
	t, err := FindBroker(ctx, cli, opts.Project, opts.ContainerID)
	if err != nil {
		return nil, err
	}
	kind := KindManual
	if opts.Automatic {
		kind = KindAutomatic
	}
	m := &Manifest{Project: opts.Project, Reason: opts.Reason, Kind: kind, Broker: Broker{
		Container: t.Name, ID: t.ID, Image: t.Image, ImageID: t.ImageID, Engine: t.Engine, State: t.State,
		ConfigDir: t.ConfigDir, DataDir: t.DataDir,
	}}

	// The config first: it says where the database is.
	config, err := readConfig(ctx, cli, t.ID, t.ConfigDir)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", t.ConfigDir, t.Name, err)
	}
	var confData []byte
	for _, f := range config {
		if f.Path == "mosquitto.conf" {
			confData = f.Data
		}
	}
	persistence, location, dbFile := conf.Read("mosquitto.conf", confData).Persistence(t.Engine)
	if location != "" {
		t.DataDir = location
		m.Broker.DataDir = location
	}
	m.Broker.Persistence, m.Broker.Database = persistence, dbFile

	var took time.Duration
	switch {
	case !persistence:
		m.Notes = append(m.Notes, "persistence is off in mosquitto.conf: retained messages and sessions live only in the broker's memory and are not in this backup")
		progress("Persistence is off: the broker keeps no database to back up")
	case !t.Running:
		m.Notes = append(m.Notes, fmt.Sprintf("the broker was %s: the database is the one it wrote when it stopped", t.State))
		progress(fmt.Sprintf("The broker is %s, not running: backing up the database it wrote when it stopped", t.State))
	default:
		progress(fmt.Sprintf("Asking the broker %s to write its database (SIGUSR1)...", t.Name))
		at, d, err := flush(ctx, cli, t, dbFile, opts.FlushTimeout)
		if err != nil {
			return nil, err
		}
		took = d
		m.Broker.Flushed, m.Broker.FlushedAt = true, at
		progress(fmt.Sprintf("The broker wrote %s after %s", path.Join(t.DataDir, dbFile), d.Round(time.Millisecond)))
	}

	data, dataRoot, err := readData(ctx, cli, t.ID, t.DataDir)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", t.DataDir, t.Name, err)
	}
	m.Broker.DataMode, m.Broker.DataUID, m.Broker.DataGID = modeString(dataRoot.Mode), dataRoot.UID, dataRoot.GID

	var files, secrets []File
	for _, f := range config {
		f.Path = ConfigPrefix + f.Path
		if what := secretFile(f); what != "" {
			reason := what + ": only --with-secrets stores it, encrypted"
			if opts.WithSecrets {
				secrets = append(secrets, f)
				reason = what + ": in " + SecretsName + ", encrypted"
			}
			m.Omitted = append(m.Omitted, Omitted{Path: f.Path, Reason: reason, SHA256: digest(f.Data), Mode: modeString(f.Mode), UID: f.UID, GID: f.GID})
			continue
		}
		switch {
		case strings.HasSuffix(f.Path, ".conf"):
			if red, what := redactConf(f.Data); what != nil {
				if opts.WithSecrets {
					secrets = append(secrets, f)
				}
				f.Data, f.Redacted = red, what
			}
		}
		files = append(files, f)
	}
	for _, f := range data {
		f.Path = DataPrefix + f.Path
		files = append(files, f)
	}
	state, stateSecrets, omitted, err := readState(opts.StateDir, opts.WithSecrets)
	if err != nil {
		return nil, err
	}
	files = append(files, state...)
	secrets = append(secrets, stateSecrets...)
	m.Omitted = append(m.Omitted, omitted...)
	res := &Result{Kind: kind, FlushTook: took, Manifest: m, ConfigFiles: len(config), DataFiles: len(data), StateFiles: len(state) + len(stateSecrets)}

	// Name the archive by the second it is written; a second archive in the
	// same second waits for the next.
	for attempt := 0; ; attempt++ {
		m.Created = opts.Now().UTC().Truncate(time.Second)
		all := files
		m.Secrets = nil
		if opts.WithSecrets {
			info, blob, err := seal(secrets, opts.Passphrase, m.Project, m.Created)
			if err != nil {
				return nil, err
			}
			m.Secrets = info
			all = append(slices.Clone(files), File{Path: SecretsName, Mode: 0o600, Data: blob})
		}
		p, size, err := writeFile(opts.Dir, m, all)
		if err != nil && errors.Is(err, fs.ErrExist) && attempt < 3 {
			time.Sleep(time.Until(m.Created.Add(time.Second)) + 10*time.Millisecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("write the archive: %w", err)
		}
		res.Path, res.Size = p, size
		break
	}
	if opts.Keep > 0 {
		removed, err := PruneKind(opts.Dir, opts.Project, kind, opts.Keep, append(opts.Protect, res.Path)...)
		res.Removed = removed
		if err != nil {
			return res, fmt.Errorf("the archive is written (%s), but removing older ones failed: %w", res.Path, err)
		}
	}
	return res, nil
}

// Flush asks the broker in container id to write its persistence database
// now (SIGUSR1) and waits until it did, so that its volume holds what it
// holds in memory. A broker that does not run or has persistence off is
// left alone (flushed false).
func Flush(ctx context.Context, cli *client.Client, project, id string, timeout time.Duration) (flushed bool, err error) {
	t, err := FindBroker(ctx, cli, project, id)
	if err != nil {
		return false, err
	}
	config, err := readConfig(ctx, cli, t.ID, t.ConfigDir)
	if err != nil {
		return false, err
	}
	var confData []byte
	for _, f := range config {
		if f.Path == "mosquitto.conf" {
			confData = f.Data
		}
	}
	on, location, file := conf.Read("mosquitto.conf", confData).Persistence(t.Engine)
	if location != "" {
		t.DataDir = location
	}
	if !on || !t.Running {
		return false, nil
	}
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	_, _, err = flush(ctx, cli, t, file, timeout)
	return err == nil, err
}

// flush sends SIGUSR1 and waits until the database's size or modification
// time changes (or it appears), as the engine reports them.
func flush(ctx context.Context, cli *client.Client, t *Target, dbFile string, timeout time.Duration) (time.Time, time.Duration, error) {
	db := path.Join(t.DataDir, dbFile)
	stat := func() (int64, time.Time, bool, error) { return engine.Stat(ctx, cli, t.ID, db) }
	size0, mtime0, existed, err := stat()
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("stat %s: %w", db, err)
	}
	start := time.Now()
	if err := engine.Signal(ctx, cli, t.ID, "SIGUSR1"); err != nil {
		return time.Time{}, 0, fmt.Errorf("signal the broker: %w", err)
	}
	for {
		size, mtime, ok, err := stat()
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("stat %s: %w", db, err)
		}
		if ok && (!existed || size != size0 || !mtime.Equal(mtime0)) {
			return mtime, time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Time{}, 0, fmt.Errorf("the broker did not write %s within %s of SIGUSR1 (is persistence_location right, and the volume writable by the broker?)", db, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, 0, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// readData reads the data folder's files and its own mode and owner.
func readData(ctx context.Context, cli *client.Client, id, dir string) ([]File, File, error) {
	files, root, err := engine.ReadDir(ctx, cli, id, dir)
	if err != nil {
		return nil, File{}, err
	}
	// A database being written (Mosquitto's mosquitto.db.new, the bundled
	// broker's temporary file) is not a database.
	files = slices.DeleteFunc(files, func(f engine.File) bool {
		base := path.Base(f.Path)
		return strings.HasSuffix(base, ".new") || (strings.HasPrefix(base, ".") && strings.Contains(base, ".tmp"))
	})
	return FromEngine(files), FromEngine([]engine.File{root})[0], nil
}

// readConfig reads the files deploy deployed in the config folder.
func readConfig(ctx context.Context, cli *client.Client, id, dir string) ([]File, error) {
	files, _, err := engine.ReadDir(ctx, cli, id, dir)
	return FromEngine(engine.Deployed(files)), err
}

// FromEngine turns files read from a container into archive files.
func FromEngine(files []engine.File) []File {
	out := make([]File, len(files))
	for i, f := range files {
		out[i] = File{Path: f.Path, Mode: f.Mode, UID: f.UID, GID: f.GID, ModTime: f.ModTime, Data: f.Data}
	}
	return out
}

// ToEngine turns archive files into files to write into a container.
func ToEngine(files []File) []engine.File {
	out := make([]engine.File, len(files))
	for i, f := range files {
		out[i] = engine.File{Path: f.Path, Mode: f.Mode, UID: f.UID, GID: f.GID, ModTime: f.ModTime, Data: f.Data}
	}
	return out
}

// readState reads the state directory: the CA's and the server's
// certificates and the password hashes mqttgen keeps (the same hashes as
// the deployed passwd, imported ones included) always; with secrets, the
// private keys, the generated passwords and imported bridge passwords,
// which otherwise are listed as omitted.
func readState(dir string, withSecrets bool) (public, secret []File, omitted []Omitted, err error) {
	if dir == "" {
		return nil, nil, nil, nil
	}
	read := func(rel string) (File, bool, error) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return File{}, false, nil
		}
		if err != nil {
			return File{}, false, err
		}
		if !st.Mode().IsRegular() {
			return File{}, false, nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return File{}, false, err
		}
		return File{Path: StatePrefix + rel, Mode: st.Mode().Perm(), ModTime: st.ModTime(), Data: data}, true, nil
	}
	// Imported hashes (password: "hash") are as public as passwd.hashes;
	// bridge passwords moved out of an imported conf are secrets.
	under := func(sub string) []string {
		var out []string
		if ents, err := os.ReadDir(filepath.Join(dir, sub)); err == nil {
			for _, e := range ents {
				if e.Type().IsRegular() {
					out = append(out, sub+"/"+e.Name())
				}
			}
		}
		return out
	}
	for _, rel := range append([]string{"certs/ca.crt", "certs/server.crt", "passwd.hashes"}, under("hashes")...) {
		f, ok, err := read(rel)
		if err != nil {
			return nil, nil, nil, err
		}
		if ok {
			public = append(public, f)
		}
	}
	secretPaths := append([]string{"certs/ca.key", "certs/server.key"}, under("passwords")...)
	secretPaths = append(secretPaths, under("bridges")...)
	for _, rel := range secretPaths {
		f, ok, err := read(rel)
		if err != nil {
			return nil, nil, nil, err
		}
		if !ok {
			continue
		}
		if withSecrets {
			secret = append(secret, f)
			continue
		}
		o := Omitted{Path: f.Path}
		switch {
		case strings.HasPrefix(rel, "passwords/"), strings.HasPrefix(rel, "bridges/"):
			o.Reason = "a password in plain text: only --with-secrets stores it, encrypted"
		default:
			o.Reason = "a private key: only --with-secrets stores it, encrypted"
			o.SHA256 = digest(f.Data)
		}
		omitted = append(omitted, o)
	}
	return public, secret, omitted, nil
}
