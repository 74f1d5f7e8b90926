// Package backup is mqttgen's backup archive: it makes one of a deployed
// broker (its persistence database in the data volume, the config deployed
// in its container with secrets redacted, the public certificates of the
// state directory, and with --with-secrets the rest encrypted), read
// through the Docker Engine API (package engine) so that a remote engine
// works as a local one; it verifies an archive, and gives restore what it
// writes back (Archive.ConfigFiles, StateFiles). Restoring itself converges
// the broker like any other change, so it is deploy's (deploy.PlanRestore,
// deploy.Restore): it creates, copies, starts, waits for and rolls back the
// broker with apply's own executor steps, which this package, speaking to
// the engine only to read a container and write files into it, does not
// duplicate.
//
// An archive is <project>-<UTC timestamp>.tar.gz holding manifest.json first,
// then config/..., data/..., state/... and, with --with-secrets, secrets.enc.
// The manifest lists every other entry with its size, mode, owner and
// SHA-256; Open refuses an archive in which anything differs, so that a
// truncated or altered archive is found before anything is restored.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format and Version identify an archive's manifest.
const (
	Format  = "mqttgen-backup"
	Version = 1
)

// ManifestName is the first entry of every archive.
const ManifestName = "manifest.json"

// SecretsName is the encrypted entry of an archive made with secrets.
const SecretsName = "secrets.enc"

// Prefixes of the archive's entries.
const (
	ConfigPrefix = "config/" // the files deployed in the broker's config folder
	DataPrefix   = "data/"   // the data volume: the persistence database
	StatePrefix  = "state/"  // the state directory's public certificates
)

// TimeFormat is the UTC timestamp of archive names.
const TimeFormat = "20060102T150405Z"

// Manifest describes an archive.
type Manifest struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Project string    `json:"project"`
	Created time.Time `json:"created"`
	// Reason says who made it: "mqttgen backup", "before apply", ...
	Reason string `json:"reason,omitempty"`
	// Kind is KindManual or KindAutomatic: each kind has its own retention.
	Kind   string `json:"kind,omitempty"`
	Broker Broker `json:"broker"`
	// Entries are the archive's entries after the manifest, in order.
	Entries []Entry `json:"entries"`
	// Omitted are secrets left out of the archive, and why.
	Omitted []Omitted `json:"omitted,omitempty"`
	// Secrets describes secrets.enc when the archive has it.
	Secrets *SecretsInfo `json:"secrets,omitempty"`
	Notes   []string     `json:"notes,omitempty"`
}

// Broker is the container the backup was read from.
type Broker struct {
	Container string `json:"container"`
	ID        string `json:"id"`
	Image     string `json:"image"`
	ImageID   string `json:"image_id,omitempty"`
	// Engine is the io.mqttgen.engine label: mosquitto or mqttgen.
	Engine string `json:"engine,omitempty"`
	State  string `json:"state"`
	// ConfigDir and DataDir are the folders in the container.
	ConfigDir string `json:"config_dir"`
	DataDir   string `json:"data_dir"`
	// Persistence says mosquitto.conf has persistence on.
	Persistence bool `json:"persistence"`
	// Database is the persistence file, relative to DataDir.
	Database string `json:"database,omitempty"`
	// Flushed says the broker wrote its database on SIGUSR1 for this
	// backup; FlushedAt is the database's modification time then.
	Flushed   bool      `json:"flushed"`
	FlushedAt time.Time `json:"flushed_at,omitzero"`
	// DataMode and the owner of DataDir, to make it again as it was.
	DataMode string `json:"data_mode,omitempty"`
	DataUID  int    `json:"data_uid"`
	DataGID  int    `json:"data_gid"`
}

// Entry is one file of the archive.
type Entry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	Mode   string `json:"mode"` // octal permission bits, "0600"
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	SHA256 string `json:"sha256"`
	// Redacted lists the options whose values were replaced (a bridge
	// password in mosquitto.conf): restore takes the file from the
	// encrypted secrets, the running broker or home.cue.
	Redacted []string `json:"redacted,omitempty"`
}

// Omitted is a secret the archive does not hold.
type Omitted struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
	// SHA256 of a private key lets restore find the same key elsewhere
	// (a key is random: its digest reveals nothing). Passwords get none.
	SHA256 string `json:"sha256,omitempty"`
	// Mode and owner of an omitted config file, to restore it as it was.
	Mode string `json:"mode,omitempty"`
	UID  int    `json:"uid,omitempty"`
	GID  int    `json:"gid,omitempty"`
}

// File is one file of an archive, in memory.
type File struct {
	Path    string
	Mode    fs.FileMode
	UID     int
	GID     int
	ModTime time.Time
	Data    []byte
	// Redacted as in Entry.
	Redacted []string
}

// Archive is a verified archive.
type Archive struct {
	Path     string
	Manifest Manifest
	// Files are the entries after the manifest, in manifest order.
	Files []File
}

// File returns the entry at p, or nil.
func (a *Archive) File(p string) *File {
	for i := range a.Files {
		if a.Files[i].Path == p {
			return &a.Files[i]
		}
	}
	return nil
}

// Under returns the files under prefix with the prefix removed from their
// paths.
func (a *Archive) Under(prefix string) []File {
	var out []File
	for _, f := range a.Files {
		if rel, ok := strings.CutPrefix(f.Path, prefix); ok {
			f.Path = rel
			out = append(out, f)
		}
	}
	return out
}

// Name is the file name of a project's archive made at t.
func Name(project string, t time.Time) string {
	return project + "-" + t.UTC().Format(TimeFormat) + ".tar.gz"
}

// ParseName returns the project and time of an archive's file name.
func ParseName(name string) (project string, t time.Time, ok bool) {
	base, ok := strings.CutSuffix(filepath.Base(name), ".tar.gz")
	if !ok || len(base) < len(TimeFormat)+2 || base[len(base)-len(TimeFormat)-1] != '-' {
		return "", time.Time{}, false
	}
	t, err := time.Parse(TimeFormat, base[len(base)-len(TimeFormat):])
	if err != nil {
		return "", time.Time{}, false
	}
	return base[:len(base)-len(TimeFormat)-1], t, true
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }

// validPath says p may be an entry: a plain relative path under one of the
// archive's folders, or secrets.enc.
func validPath(p string) bool {
	if p == SecretsName {
		return true
	}
	if !fs.ValidPath(p) || p == "." {
		return false
	}
	for _, prefix := range []string{ConfigPrefix, DataPrefix, StatePrefix} {
		if rest, ok := strings.CutPrefix(p, prefix); ok && rest != "" {
			return true
		}
	}
	return false
}

// Limits of an archive's entries. Restore holds an archive in memory, so
// Read refuses, from the manifest and before it reads any entry, one that
// would not fit; write refuses to make an archive Read would refuse.
const (
	// MaxDataEntry bounds one file of the data volume (the database).
	MaxDataEntry = 256 << 20
	// MaxOtherEntry bounds a config or state file, and secrets.enc.
	MaxOtherEntry = 16 << 20
	// MaxTotal bounds all entries together.
	MaxTotal = 512 << 20
)

// publicState are the only state/ entries a backup writes in clear (see
// readState): any other, say a password planted for a device home.cue
// will have, is refused.
var publicState = map[string]bool{StatePrefix + "certs/ca.crt": true, StatePrefix + "certs/server.crt": true, StatePrefix + "passwd.hashes": true}

// checkEntries says what is wrong with a list of entries that a backup
// never writes: a path outside the archive's folders or twice, a state file
// that is not public, a file that is also another entry's folder, an entry
// or a whole larger than the limits. "" when nothing.
func checkEntries(entries []Entry) string {
	seen := map[string]bool{}
	var total int64
	for _, e := range entries {
		limit := int64(MaxOtherEntry)
		if strings.HasPrefix(e.Path, DataPrefix) {
			limit = MaxDataEntry
		}
		switch {
		case !validPath(e.Path):
			return fmt.Sprintf("the manifest names %q, which is not a plain path under config/, data/ or state/", e.Path)
		case seen[e.Path]:
			return fmt.Sprintf("the manifest names %s twice", e.Path)
		case strings.HasPrefix(e.Path, StatePrefix) && !publicState[e.Path]:
			return fmt.Sprintf("entry %s is not a file a backup writes in clear (of the state directory only %s are)", e.Path, strings.Join(slices.Sorted(maps.Keys(publicState)), ", "))
		case e.Size < 0 || e.Size > limit:
			return fmt.Sprintf("entry %s has %s, more than the %s an archive entry may hold", e.Path, sizeString(e.Size), sizeString(limit))
		}
		seen[e.Path] = true
		total += e.Size
	}
	if total > MaxTotal {
		return fmt.Sprintf("its entries hold %s, more than the %s an archive may hold", sizeString(total), sizeString(MaxTotal))
	}
	for p := range seen {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return fmt.Sprintf("entry %s is a file and the folder of %s", dir, p)
			}
		}
	}
	return ""
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// write writes the archive (manifest first, then files in order) to w,
// filling m.Entries.
func write(w io.Writer, m *Manifest, files []File) error {
	m.Format, m.Version = Format, Version
	m.Entries = nil
	for _, f := range files {
		if strings.HasPrefix(f.Path, ConfigPrefix) && isPrivateKey(f.Data) {
			return fmt.Errorf("archive entry %s: a private key in clear", f.Path)
		}
		if isProbeLogin(f.Path) {
			return fmt.Errorf("archive entry %s: the healthcheck's password in clear", f.Path)
		}
		m.Entries = append(m.Entries, Entry{Path: f.Path, Size: int64(len(f.Data)), Mode: modeString(f.Mode), UID: f.UID, GID: f.GID, SHA256: digest(f.Data), Redacted: f.Redacted})
	}
	if problem := checkEntries(m.Entries); problem != "" {
		return errors.New("cannot write the archive: " + problem)
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mj = append(mj, '\n')
	zw := gzip.NewWriter(w)
	zw.Name = Name(m.Project, m.Created)
	zw.ModTime = m.Created
	tw := tar.NewWriter(zw)
	put := func(name string, mode fs.FileMode, uid, gid int, mtime time.Time, data []byte) error {
		if mtime.IsZero() {
			mtime = m.Created
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(mode.Perm()), Uid: uid, Gid: gid, Size: int64(len(data)), ModTime: mtime.UTC(), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put(ManifestName, 0o644, 0, 0, m.Created, mj); err != nil {
		return err
	}
	for _, f := range files {
		if err := put(f.Path, f.Mode, f.UID, f.GID, f.ModTime, f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// writeFile writes the archive into dir atomically (a temporary file in dir,
// synced, mode 0600, renamed) and returns its path and size. It refuses to
// replace an archive of the same name.
func writeFile(dir string, m *Manifest, files []File) (string, int64, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", 0, err
	}
	final := filepath.Join(dir, Name(m.Project, m.Created))
	if _, err := os.Lstat(final); err == nil {
		return "", 0, fmt.Errorf("%s: %w", final, fs.ErrExist)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(final)+".tmp*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", 0, err
	}
	cw := &countWriter{w: tmp}
	if err := write(cw, m, files); err != nil {
		tmp.Close()
		return "", 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", 0, err
	}
	if err := tmp.Close(); err != nil {
		return "", 0, err
	}
	// A link, unlike a rename, fails when the name exists: two backups of
	// one second never overwrite each other.
	if err := os.Link(tmp.Name(), final); err != nil {
		return "", 0, err
	}
	syncDir(dir)
	return final, cw.n, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// CorruptError says an archive cannot be trusted: it is truncated, altered,
// or not an archive of this format.
type CorruptError struct {
	Path   string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is not a sound backup: %s", e.Path, e.Reason)
}

// Open reads the archive at p and verifies it completely: the gzip stream
// to its end (its CRC and length), the manifest, and every entry against the
// manifest (no entry missing, extra, duplicated or of another size, mode,
// owner or SHA-256). Any difference is a *CorruptError. (The gzip header's
// time and name are covered by nothing, and nothing reads them.)
func Open(p string) (*Archive, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := Read(f)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			ce.Path = p
		}
		return nil, err
	}
	a.Path = p
	return a, nil
}

// Read reads and verifies an archive from r (see Open).
func Read(r io.Reader) (*Archive, error) {
	bad := func(format string, args ...any) error {
		return &CorruptError{Path: "the archive", Reason: fmt.Sprintf(format, args...)}
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, bad("not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	readErr := func(err error) error {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return bad("it is truncated (%v)", err)
		}
		return bad("%v", err)
	}
	hdr, err := tr.Next()
	if err != nil {
		return nil, readErr(err)
	}
	if hdr.Name != ManifestName {
		return nil, bad("the first entry is %q, not %s", hdr.Name, ManifestName)
	}
	mj, err := io.ReadAll(io.LimitReader(tr, 16<<20))
	if err != nil {
		return nil, readErr(err)
	}
	a := &Archive{}
	if err := json.Unmarshal(mj, &a.Manifest); err != nil {
		return nil, bad("%s does not parse: %v", ManifestName, err)
	}
	m := &a.Manifest
	if m.Format != Format {
		return nil, bad("%s is not an mqttgen backup manifest", ManifestName)
	}
	if m.Version != Version {
		return nil, bad("format version %d; this mqttgen reads version %d", m.Version, Version)
	}
	if problem := checkEntries(m.Entries); problem != "" {
		return nil, bad("%s", problem)
	}
	want := map[string]Entry{}
	for _, e := range m.Entries {
		want[e.Path] = e
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readErr(err)
		}
		e, ok := want[hdr.Name]
		if !ok {
			return nil, bad("entry %s is not in the manifest, or comes twice", hdr.Name)
		}
		delete(want, hdr.Name)
		if hdr.Typeflag != tar.TypeReg {
			return nil, bad("entry %s is not a regular file", hdr.Name)
		}
		if hdr.Size != e.Size {
			return nil, bad("entry %s has %d bytes, the manifest says %d", hdr.Name, hdr.Size, e.Size)
		}
		// Within the limits, and as large as what is really there: an
		// entry cut short costs what it holds, not what it claims.
		data, err := io.ReadAll(io.LimitReader(tr, e.Size))
		if err != nil {
			return nil, readErr(err)
		}
		if int64(len(data)) != e.Size {
			return nil, readErr(io.ErrUnexpectedEOF)
		}
		if strings.HasPrefix(e.Path, ConfigPrefix) && isPrivateKey(data) {
			return nil, bad("entry %s holds a private key in clear, which a backup never writes (keys are only in %s, encrypted)", e.Path, SecretsName)
		}
		if isProbeLogin(e.Path) {
			return nil, bad("entry %s holds the healthcheck's password in clear, which a backup never writes (only in %s, encrypted)", e.Path, SecretsName)
		}
		if got := digest(data); got != e.SHA256 {
			return nil, bad("entry %s has SHA-256 %s, the manifest says %s: it was altered", hdr.Name, got[:16], short(e.SHA256))
		}
		mode, err := strconv.ParseUint(e.Mode, 8, 32)
		if err != nil || fs.FileMode(hdr.Mode).Perm() != fs.FileMode(mode).Perm() || hdr.Uid != e.UID || hdr.Gid != e.GID {
			return nil, bad("entry %s has mode %04o owner %d:%d, the manifest says %s %d:%d", hdr.Name, hdr.Mode&0o777, hdr.Uid, hdr.Gid, e.Mode, e.UID, e.GID)
		}
		a.Files = append(a.Files, File{Path: hdr.Name, Mode: fs.FileMode(mode).Perm(), UID: hdr.Uid, GID: hdr.Gid, ModTime: hdr.ModTime, Data: data, Redacted: e.Redacted})
	}
	if len(want) > 0 {
		missing := slices.Sorted(maps.Keys(want))
		return nil, bad("it is truncated: %d entries of the manifest are missing (%s)", len(missing), strings.Join(missing, ", "))
	}
	// Read to the end of the gzip stream: its CRC-32 and length are
	// checked there, and anything after the tar's end is refused.
	if _, err := io.Copy(zeroWriter{}, zr); err != nil {
		if errors.Is(err, errTrailing) {
			return nil, bad("data follows the end of the tar")
		}
		return nil, readErr(err)
	}
	order := map[string]int{}
	for i, e := range m.Entries {
		order[e.Path] = i
	}
	slices.SortFunc(a.Files, func(x, y File) int { return order[x.Path] - order[y.Path] })
	if (m.Secrets != nil) != (a.File(SecretsName) != nil) {
		return nil, bad("the manifest and the entries disagree about %s", SecretsName)
	}
	return a, nil
}

var errTrailing = errors.New("trailing data")

// zeroWriter accepts only the zero padding that may follow a tar's end.
type zeroWriter struct{}

func (zeroWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b != 0 {
			return 0, errTrailing
		}
	}
	return len(p), nil
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

// Info is an archive in a backup folder.
type Info struct {
	Path string    `json:"path"`
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
}

// List returns the project's archives in dir, newest first, by the time
// in their names. Archives of other projects are never listed, even when a
// project's name is a prefix of another's.
func List(dir, project string) ([]Info, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range ents {
		p, t, ok := ParseName(e.Name())
		if !ok || p != project || !e.Type().IsRegular() {
			continue
		}
		st, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Info{Path: filepath.Join(dir, e.Name()), Time: t, Size: st.Size()})
	}
	slices.SortFunc(out, func(a, b Info) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// The kinds of archive, each with its own retention: a deliberate backup
// (by hand or on backup.schedule) is never removed to make room for the
// automatic ones apply and restore take, and the other way round.
const (
	KindManual    = "manual"
	KindAutomatic = "automatic"
)

// AutomaticKeep is how many of apply's and restore's own archives are
// kept: enough to undo the last few replacements, bounded so that a day of
// port changes does not fill the disk.
const AutomaticKeep = 5

// KindOf is the kind of an archive of manifest m; archives made before
// kinds were recorded are told by their reason.
func KindOf(m *Manifest) string {
	switch {
	case m.Kind != "":
		return m.Kind
	case strings.HasPrefix(m.Reason, "apply"), strings.HasPrefix(m.Reason, "restore"):
		return KindAutomatic
	}
	return KindManual
}

// ReadManifest reads the manifest of the archive at p, its first entry,
// without verifying the rest (Open does that).
func ReadManifest(p string) (*Manifest, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	h, err := tr.Next()
	if err != nil {
		return nil, err
	}
	if h.Name != ManifestName || h.Size > 16<<20 {
		return nil, fmt.Errorf("%s: the first entry is not %s", p, ManifestName)
	}
	var m Manifest
	if err := json.NewDecoder(tr).Decode(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Prune keeps the newest keep deliberate archives of project in dir and
// removes the older deliberate ones (see PruneKind).
func Prune(dir, project string, keep int, protect ...string) ([]string, error) {
	return PruneKind(dir, project, KindManual, keep, protect...)
}

// PruneKind keeps the newest keep archives of project of that kind in dir
// and removes the older ones of that kind, except those in protect and the
// newest archive with secrets (of any kind: without it a lost state
// directory cannot be rebuilt). Archives of the other kind are neither
// counted nor removed; a file whose manifest cannot be read counts as
// deliberate. It returns the paths removed.
func PruneKind(dir, project, kind string, keep int, protect ...string) ([]string, error) {
	if keep < 1 {
		return nil, fmt.Errorf("keep %d: at least one archive must be kept", keep)
	}
	list, err := List(dir, project)
	if err != nil {
		return nil, err
	}
	var removed []string
	newestSecrets := ""
	n := 0
	for _, info := range list {
		k, secrets := KindManual, false
		if m, err := ReadManifest(info.Path); err == nil {
			k, secrets = KindOf(m), m.Secrets != nil
		}
		keepSecrets := secrets && newestSecrets == ""
		if keepSecrets {
			newestSecrets = info.Path
		}
		if k != kind {
			continue
		}
		if n++; n <= keep || keepSecrets {
			continue
		}
		if slices.ContainsFunc(protect, func(p string) bool { return sameFile(p, info.Path) }) {
			continue
		}
		if err := os.Remove(info.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, info.Path)
	}
	return removed, nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
