package deploy

import (
	"bytes"
	"context"
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

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/internal/atomicfile"
	"github.com/mqttgen/mqttgen/internal/human"
	"github.com/mqttgen/mqttgen/workspace"
)

// RestorePlan is what restoring an archive changes on the engine, made by
// PlanRestore from a verified archive before anything is touched.
type RestorePlan struct {
	Project string `json:"project"`
	Archive string `json:"archive"`
	// Manifest is the archive's.
	Manifest *backup.Manifest `json:"manifest"`
	// Container is the broker's container; Exists says it is on the
	// engine (else restore creates it, with Creates first).
	Container   string `json:"container"`
	ContainerID string `json:"container_id,omitempty"`
	Exists      bool   `json:"exists"`
	State       string `json:"state,omitempty"`
	Creates     []Op   `json:"creates,omitempty"`
	// Config are the changes of the config folder, Data of the data
	// volume; DataKept are files of the volume the archive does not have,
	// which stay (the Docker API cannot delete a file).
	Config   []FileChange `json:"config"`
	Data     []FileChange `json:"data"`
	DataKept []string     `json:"data_kept,omitempty"`
	// DataAsWritten says Data compares with the database a running broker
	// last wrote: it is not signalled before the question (a cancelled
	// restore signals nothing), and what it received since is in its
	// memory only, replaced too.
	DataAsWritten bool `json:"data_as_written,omitempty"`
	// Completed are config files the archive left out (secrets) and where
	// restore takes them from.
	Completed []backup.Completed `json:"completed,omitempty"`
	// StateWritten are state directory files the archive holds that the
	// state directory lacks: restore writes them. StateKept differ and
	// stay as they are.
	StateWritten []string `json:"state_written,omitempty"`
	StateKept    []string `json:"state_kept,omitempty"`
	// SafetyBackup says a backup of what restore replaces is taken first,
	// into SafetyDir.
	SafetyBackup bool     `json:"safety_backup"`
	SafetyDir    string   `json:"safety_dir,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`

	archive  *backup.Archive
	config   []generators.File
	data     []backup.File
	dataDir  string
	state    []backup.File
	stateDir string
}

// RestoreOptions tune PlanRestore.
type RestoreOptions struct {
	// Secrets are the archive's decrypted secrets, if it has them.
	Secrets []backup.File
	// Force restores an archive of another project or engine.
	Force bool
}

// ErrOtherProject says an archive belongs to another project.
var ErrOtherProject = errors.New("the archive is of another project")

// PlanRestore compares a verified archive with what runs: the config files
// (completed where the archive left secrets out), the data volume's files,
// and the state directory's certificates. It refuses, before anything is
// touched, an archive of another project or engine (unless Force), one whose
// config cannot be completed, and one whose config Mosquitto would take
// badly (an acl that does not parse, a certificate not matching its key).
func PlanRestore(ctx context.Context, cli *client.Client, d *Desired, o *Observed, a *backup.Archive, opts RestoreOptions) (*RestorePlan, error) {
	m := &a.Manifest
	if m.Project != d.Project && !opts.Force {
		return nil, fmt.Errorf("%w: %s is a backup of project %q, and home.cue deploys %q; --force restores it anyway", ErrOtherProject, a.Path, m.Project, d.Project)
	}
	s := d.Service(generators.BrokerService)
	if s == nil {
		return nil, fmt.Errorf("the home has no broker service")
	}
	if want := s.Spec.Labels[generators.LabelEngine]; m.Broker.Engine != "" && want != "" && m.Broker.Engine != want && !opts.Force {
		return nil, fmt.Errorf("%s holds the database of broker.engine %q, and home.cue runs %q, which cannot read it; --force restores it anyway", a.Path, m.Broker.Engine, want)
	}
	rp := &RestorePlan{Project: d.Project, Archive: a.Path, Manifest: m, Container: engine.ContainerName(d.Project, s.Name), archive: a}
	rp.dataDir = m.Broker.DataDir
	if rp.dataDir == "" {
		rp.dataDir = backup.DefaultDataDir
	}

	var cur *Container
	for i, c := range o.Containers {
		if c.Service == s.Name && (c.Name == rp.Container || cur == nil) {
			cur = &o.Containers[i]
		}
	}
	sources := []backup.Source{}
	var deployed []generators.File
	if cur != nil {
		rp.Exists, rp.Container, rp.ContainerID, rp.State = true, cur.Name, cur.ID, cur.State
		deployed = cur.Files
		sources = append(sources, backup.Source{Name: "the running broker", Files: fromGenerators(cur.Files)})
	}
	sources = append(sources, backup.Source{Name: "home.cue (rendered now)", Files: fromGenerators(s.Files)})
	if d.Backup != nil && d.Backup.StateDir != "" {
		rp.stateDir = d.Backup.StateDir
		if key, err := os.ReadFile(filepath.Join(d.Backup.StateDir, "certs", "server.key")); err == nil {
			sources = append(sources, backup.Source{Name: "the state directory", Files: []backup.File{{Path: "certs/server.key", Data: key}}})
		}
	}
	config, completed, err := a.ConfigFiles(opts.Secrets, sources...)
	if err != nil {
		return nil, err
	}
	rp.Completed = completed
	files := map[string][]byte{}
	for _, f := range config {
		rp.config = append(rp.config, generators.File{Path: f.Path, Mode: f.Mode, Data: f.Data})
		files[f.Path] = f.Data
	}
	if err := validateFiles(files); err != nil {
		return nil, fmt.Errorf("the archive's config would not be served safely: %w", err)
	}

	// The config, against what is deployed (or what a new container
	// would get from home.cue).
	before := deployed
	if cur == nil {
		before = nil
	}
	rp.Config = fileChanges(before, rp.config)
	if cur != nil {
		// The API cannot remove files: those the archive lacks are
		// emptied and dropped from the manifest, as apply does.
		for i := range rp.Config {
			if rp.Config[i].Action == Delete {
				rp.Config[i].Why = "emptied and dropped from " + engine.ManifestName
			}
		}
	}

	// The data volume.
	rp.data = a.Under(backup.DataPrefix)
	var current []backup.File
	if cur != nil {
		// The database as the broker last wrote it: nothing is signalled
		// before the question.
		rp.DataAsWritten = rp.State == "running"
		if current, err = readData(ctx, cli, cur.ID, rp.dataDir); err != nil {
			return nil, fmt.Errorf("read %s of %s: %w", rp.dataDir, cur.Name, err)
		}
	}
	rp.Data, rp.DataKept = dataChanges(current, rp.data)

	// Resources to create first when the project is not deployed.
	if cur == nil {
		for _, op := range Reconcile(d, o).Ops {
			if (op.Kind == KindNetwork || op.Kind == KindVolume) && op.Action == Create {
				rp.Creates = append(rp.Creates, op)
			}
		}
		op := Op{Action: Create, Kind: KindContainer, Name: rp.Container, Service: s.Name,
			Reasons: []string{"the project has no broker container: it is created from home.cue with the archive's config and data, then started"}}
		op.Changes = specChanges(nil, &s.Spec)
		rp.Creates = append(rp.Creates, op)
	}

	// The state directory: certificates (and with secrets keys and
	// passwords) it lacks.
	if rp.stateDir != "" {
		for _, f := range a.StateFiles(opts.Secrets) {
			if !fs.ValidPath(f.Path) {
				continue
			}
			old, err := os.ReadFile(filepath.Join(rp.stateDir, filepath.FromSlash(f.Path)))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				rp.state = append(rp.state, f)
				rp.StateWritten = append(rp.StateWritten, f.Path)
			case err == nil && !bytes.Equal(old, f.Data):
				rp.StateKept = append(rp.StateKept, f.Path)
			}
		}
	}

	if d.Backup != nil && cur != nil {
		rp.SafetyBackup, rp.SafetyDir = true, d.Backup.Dir
	}
	img := s.Spec.Image
	if cur != nil && cur.Spec != nil {
		img = cur.Spec.Image
	}
	if m.Broker.Image != "" && m.Broker.Image != img {
		rp.Warnings = append(rp.Warnings, fmt.Sprintf("the archive was made from image %s; the broker will run %s", m.Broker.Image, img))
	}
	if len(fileChanges(s.Files, rp.config)) > 0 {
		rp.Warnings = append(rp.Warnings, "the archive's config is not what home.cue renders now: after the restore, mqttgen plan shows the difference and mqttgen apply makes it home.cue's again")
	}
	if !m.Broker.Flushed && m.Broker.Persistence {
		rp.Warnings = append(rp.Warnings, "the broker was not running when the archive was made: its data is the database the broker wrote when it stopped")
	}
	for _, n := range m.Notes {
		if strings.HasPrefix(n, "persistence is off") {
			rp.Warnings = append(rp.Warnings, "the archive has no database ("+n+")")
		}
	}
	return rp, nil
}

// readData reads the files of a container's data folder.
func readData(ctx context.Context, cli *client.Client, id, dir string) ([]backup.File, error) {
	files, _, err := engine.ReadDir(ctx, cli, id, dir)
	return backup.FromEngine(files), err
}

func fromGenerators(files []generators.File) []backup.File {
	out := make([]backup.File, len(files))
	for i, f := range files {
		out[i] = backup.File{Path: f.Path, Mode: f.Mode, Data: f.Data}
	}
	return out
}

// dataChanges compares the data volume's files with the archive's.
func dataChanges(current, want []backup.File) (changes []FileChange, kept []string) {
	have := map[string]backup.File{}
	for _, f := range current {
		have[f.Path] = f
	}
	for _, f := range want {
		o, ok := have[f.Path]
		delete(have, f.Path)
		switch {
		case !ok:
			changes = append(changes, FileChange{Path: f.Path, Action: Create, Diff: describeData(nil, &f)})
		case !bytes.Equal(o.Data, f.Data):
			changes = append(changes, FileChange{Path: f.Path, Action: Update, Diff: describeData(&o, &f)})
		}
	}
	for _, p := range slices.Sorted(maps.Keys(have)) {
		kept = append(kept, p)
	}
	return changes, kept
}

func describeData(old, new *backup.File) string {
	desc := func(f *backup.File) string {
		return fmt.Sprintf("%s, %s", human.Bytes(int64(len(f.Data))), digest(f.Data))
	}
	if old == nil {
		return desc(new)
	}
	return desc(old) + " -> " + desc(new)
}

// Empty reports whether restoring changes nothing.
func (rp *RestorePlan) Empty() bool {
	return rp.Exists && rp.State == "running" && len(rp.Config) == 0 && len(rp.Data) == 0 && len(rp.StateWritten) == 0 && !rp.DataAsWritten
}

// WriteText shows the restore as plan shows a plan.
func (rp *RestorePlan) WriteText(w io.Writer, now time.Time) error {
	var b strings.Builder
	m := rp.Manifest
	fmt.Fprintf(&b, "Archive %s\n", rp.Archive)
	what := fmt.Sprintf("  made %s (%s ago)", m.Created.UTC().Format("2006-01-02 15:04:05 UTC"), human.Duration(now.Sub(m.Created)))
	if m.Reason != "" {
		what += " by " + m.Reason
	}
	fmt.Fprintf(&b, "%s\n  from %s (%s) of project %q\n", what, orNone(m.Broker.Container), orNone(m.Broker.Image), m.Project)
	fmt.Fprintf(&b, "  %d entries, each matching its SHA-256 in the manifest\n\n", len(m.Entries))

	fmt.Fprintf(&b, "mqttgen will restore it into project %q.\n", rp.Project)
	if len(rp.Creates) > 0 {
		b.WriteString("  + create\n")
	}
	if rp.Exists {
		b.WriteString("  ~ restore (stop the broker, write the archive's data and config, start it)\n")
	}
	for _, op := range rp.Creates {
		if op.Kind == KindContainer {
			continue // below, with its files
		}
		fmt.Fprintf(&b, "\n  # %s %q will be created\n", op.Kind, op.Name)
		for _, r := range op.Reasons {
			fmt.Fprintf(&b, "  #   because %s\n", r)
		}
		fmt.Fprintf(&b, "  + %s %q\n", op.Kind, op.Name)
	}
	fmt.Fprintf(&b, "\n  # container %q (service broker) ", rp.Container)
	if rp.Exists {
		fmt.Fprintf(&b, "will be stopped, restored and started\n")
		if rp.State != "running" {
			fmt.Fprintf(&b, "  #   (it is %s: the restore starts it)\n", rp.State)
		}
		if rp.SafetyBackup {
			fmt.Fprintf(&b, "  #   (a backup of what it replaces is taken first, into %s)\n", rp.SafetyDir)
		}
		fmt.Fprintf(&b, "  ~ container %q {\n", rp.Container)
	} else {
		fmt.Fprintf(&b, "will be created\n")
		fmt.Fprintf(&b, "  #   because the project has no broker container: it is made from home.cue and gets the archive's data and config before it first starts\n")
		fmt.Fprintf(&b, "  + container %q {\n", rp.Container)
		for _, op := range rp.Creates {
			if op.Kind == KindContainer {
				for _, c := range op.Changes {
					fmt.Fprintf(&b, "      + %-11s = %s\n", c.Attr, orNone(c.New))
				}
			}
		}
	}
	if rp.DataAsWritten {
		fmt.Fprintf(&b, "      # data compared with the database the running broker last wrote; what it received since is in its memory only, and is replaced too\n")
	}
	if len(rp.Data) == 0 {
		fmt.Fprintf(&b, "      = data %s unchanged\n", rp.dataDir)
	}
	for _, c := range rp.Data {
		fmt.Fprintf(&b, "      %s data %q (%s)\n", c.Action.Symbol(), path.Join(rp.dataDir, c.Path), c.Diff)
	}
	for _, p := range rp.DataKept {
		fmt.Fprintf(&b, "      = data %q stays: the archive does not have it, and the API cannot delete it\n", path.Join(rp.dataDir, p))
	}
	if len(rp.Config) == 0 {
		b.WriteString("      = config unchanged\n")
	}
	for _, f := range rp.Config {
		line := fmt.Sprintf("      %s file %q", f.Action.Symbol(), f.Path)
		if f.Mode != "" {
			line += " (mode " + f.Mode + ")"
		}
		if f.Why != "" {
			line += " # " + f.Why
		}
		b.WriteString(line + "\n")
		if rp.Exists && f.Diff != "" {
			for _, l := range strings.SplitAfter(strings.TrimSuffix(f.Diff, "\n"), "\n") {
				b.WriteString("          " + strings.TrimSuffix(l, "\n") + "\n")
			}
		}
	}
	b.WriteString("    }\n")
	for _, c := range rp.Completed {
		fmt.Fprintf(&b, "  # %s is not in the archive in full: taken from %s\n", c.Path, c.From)
	}
	if len(rp.StateWritten) > 0 {
		fmt.Fprintf(&b, "\n  + state directory: %s (missing there)\n", strings.Join(rp.StateWritten, ", "))
	}
	if len(rp.StateKept) > 0 {
		fmt.Fprintf(&b, "  = state directory: %s differ from the archive's and stay as they are\n", strings.Join(rp.StateKept, ", "))
	}
	for _, w := range rp.Warnings {
		fmt.Fprintf(&b, "\nWarning: %s\n", w)
	}
	fmt.Fprintf(&b, "\nRestore: %d to add, %s and %s to write.\n", len(rp.Creates), plural(len(rp.Data), "data file"), plural(len(rp.Config), "config file"))
	b.WriteString("Clients are disconnected while the broker restarts. Retained messages, sessions and\nqueued messages become the archive's: what the broker received since is lost.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// RestoreError is a failed restore, after its rollback.
type RestoreError struct {
	Cause       error
	RolledBack  bool
	RollbackErr error
	// Safety is the backup taken before the restore, if any.
	Safety string
}

func (e *RestoreError) Error() string {
	msg := e.Cause.Error()
	switch {
	case e.RolledBack:
		msg += "; rolled back: the broker serves its previous data and config"
	case e.RollbackErr != nil:
		msg += fmt.Sprintf("; rollback failed too: %v", e.RollbackErr)
	}
	if e.Safety != "" {
		msg += fmt.Sprintf(" (the state before the restore is in %s)", e.Safety)
	}
	return msg
}

func (e *RestoreError) Unwrap() error { return e.Cause }

// Restore performs a restore plan: when the broker's container exists, it
// takes a backup of it (the safety backup), stops it, writes the archive's
// data into the data volume and its config into the config folder through
// the API (owners and modes as recorded), starts it, and waits until every
// listener accepts the home's probe login. When the project is not deployed,
// it creates the network, volumes and container from home.cue first, and
// writes the archive's files before the broker first starts. If the broker
// does not serve the restored files, the previous data and config are
// written back. Then the state directory gets the files it lacks.
func Restore(ctx context.Context, cli *client.Client, d *Desired, rp *RestorePlan, opts Options) (safety string, err error) {
	x := newExecutor(cli, d, &Observed{Project: d.Project}, opts)
	s := *d.Service(generators.BrokerService)
	s.Files = rp.config
	op := Op{Action: RestoreData, Kind: KindContainer, Name: rp.Container, Service: s.Name, ContainerID: rp.ContainerID}
	m := rp.Manifest
	dirMode, _ := strconv.ParseUint(m.Broker.DataMode, 8, 32)
	if dirMode == 0 {
		dirMode = 0o755
	}
	writeData := func(ctx context.Context, id string, files []backup.File) error {
		x.emit(op, "restoring", "Writing %s into %s (owner %d:%d)...", plural(len(files), "file"), rp.dataDir, m.Broker.DataUID, m.Broker.DataGID)
		root := engine.File{Mode: fs.FileMode(dirMode), UID: m.Broker.DataUID, GID: m.Broker.DataGID}
		return engine.WriteDir(ctx, cli, id, rp.dataDir, root, backup.ToEngine(files))
	}

	start := time.Now()
	if !rp.Exists {
		for _, c := range rp.Creates {
			began := time.Now()
			switch c.Kind {
			case KindNetwork:
				err = x.createNetwork(ctx, c)
			case KindVolume:
				err = x.createVolume(ctx, c)
			case KindContainer:
				if s.Build != nil {
					err = x.ensureBuilt(ctx, c, &s)
				} else {
					err = x.ensureImage(ctx, c, s.Spec.Image)
				}
				if err != nil {
					break
				}
				var id string
				if id, err = x.createContainer(ctx, c, &s, c.Name); err != nil {
					break
				}
				op.ContainerID = id
				if err = writeData(ctx, id, rp.data); err == nil {
					err = x.startAndWait(ctx, c, &s, id)
				}
				if err != nil {
					x.emit(op, "removing", "Removing the container that does not serve the archive...")
					x.cli.ContainerRemove(context.WithoutCancel(ctx), id, client.ContainerRemoveOptions{Force: true})
				}
			}
			if err != nil {
				return "", &RestoreError{Cause: fmt.Errorf("%s %q: %w", c.Kind, c.Name, err)}
			}
			x.emit(c, "done", "%s after %s", map[bool]string{true: "Creation and restore complete", false: "Creation complete"}[c.Kind == KindContainer], time.Since(began).Round(100*time.Millisecond))
		}
		return "", x.writeState(op, rp)
	}

	cur := &Container{ID: rp.ContainerID, Name: rp.Container, State: rp.State}
	if rp.SafetyBackup {
		x.emit(op, "backing-up", "Taking a backup of what the restore replaces into %s...", d.Backup.Dir)
		res, err := backup.Create(ctx, cli, backup.Options{
			Project: d.Project, Dir: d.Backup.Dir, StateDir: d.Backup.StateDir, ContainerID: cur.ID,
			Reason: "restore, before restoring " + filepath.Base(rp.Archive),
			// Retention of the automatic archives only, never the one
			// being restored.
			Automatic: true, Keep: backup.AutomaticKeep, Protect: []string{rp.Archive},
			Progress: func(msg string) { x.emit(op, "backing-up", "%s", msg) },
		})
		if err != nil {
			return "", &RestoreError{Cause: fmt.Errorf("the backup before the restore failed, nothing was changed: %w", err)}
		}
		safety = res.Path
		x.emit(op, "backed-up", "Backup written: %s (%s)", res.Path, human.Bytes(res.Size))
	}
	insp, err := cli.ContainerInspect(ctx, cur.ID, client.ContainerInspectOptions{})
	if err != nil {
		return safety, &RestoreError{Cause: err, Safety: safety}
	}
	spec := &s.Spec
	if js := insp.Container.Config.Labels[engine.LabelSpec]; js != "" {
		var sp Spec
		if json.Unmarshal([]byte(js), &sp) == nil {
			spec = &sp
		}
	}
	configDir := s.ConfigDir
	if d := insp.Container.Config.Labels[engine.LabelConfigDir]; d != "" {
		configDir = d
	}
	oldConfig, err := readFiles(ctx, cli, cur.ID, configDir)
	if err != nil {
		return safety, &RestoreError{Cause: err, Safety: safety}
	}

	timeout := int(x.opts.StopTimeout / time.Second)
	x.emit(op, "stopping", "Stopping %s (the broker writes its persistence file)...", cur.Name)
	if _, err := cli.ContainerStop(ctx, cur.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return safety, &RestoreError{Cause: err, Safety: safety}
	}
	// What the broker wrote as it stopped: written back if the restored
	// broker does not serve.
	oldData, err := readData(ctx, cli, cur.ID, rp.dataDir)
	if err == nil {
		err = writeData(ctx, cur.ID, rp.data)
	}
	if err == nil {
		err = x.copyFiles(ctx, op, cur.ID, configDir, rp.config, missing(oldConfig, rp.config))
	}
	if err == nil {
		err = x.fault(op, "copying")
	}
	if err == nil {
		x.emit(op, "starting", "Starting...")
		if _, err = cli.ContainerStart(ctx, cur.ID, client.ContainerStartOptions{}); err == nil {
			err = x.waitReady(ctx, op, &s, cur.ID, rp.config, spec, time.Time{}, true)
		}
	}
	if err == nil {
		x.emit(op, "done", "Restore complete after %s", time.Since(start).Round(100*time.Millisecond))
		return safety, x.writeState(op, rp)
	}

	re := &RestoreError{Cause: err, Safety: safety}
	rctx, cancel := rollbackContext(ctx, x.opts.ReadyTimeout)
	defer cancel()
	x.emit(op, "rolling-back", "The broker does not serve the restored files (%v); writing back the previous data and config...", err)
	_, rerr := cli.ContainerStop(rctx, cur.ID, client.ContainerStopOptions{Timeout: &timeout})
	if rerr == nil && oldData != nil {
		rerr = writeData(rctx, cur.ID, oldData)
	}
	if rerr == nil {
		rerr = x.copyFiles(rctx, op, cur.ID, configDir, oldConfig, notFolders(missing(rp.config, oldConfig), oldConfig))
	}
	if rp.State == "running" {
		// Started again whatever the write-back did: a broker left
		// stopped serves no one.
		_, serr := cli.ContainerStart(rctx, cur.ID, client.ContainerStartOptions{})
		if rerr == nil {
			rerr = serr
		}
		if rerr == nil {
			rerr = x.waitReady(rctx, op, &s, cur.ID, oldConfig, spec, time.Time{}, false)
		}
	}
	if rerr != nil {
		re.RollbackErr = rerr
	} else {
		re.RolledBack = true
		x.emit(op, "rolled-back", "The broker serves its previous data and config again")
	}
	return safety, re
}

// notFolders drops from emptied (files the restore wrote that the previous
// config lacks, emptied on write-back) every path that is a folder of the
// previous config: writing an empty file there fails as the restore did,
// and the previous tree is what the write-back restores.
func notFolders(emptied []string, previous []generators.File) []string {
	return slices.DeleteFunc(emptied, func(p string) bool {
		return slices.ContainsFunc(previous, func(f generators.File) bool { return strings.HasPrefix(f.Path, p+"/") })
	})
}

// writeState writes the state directory's files the archive holds and the
// directory lacks (never replacing one).
func (x *executor) writeState(op Op, rp *RestorePlan) error {
	for _, f := range rp.state {
		p := filepath.Join(rp.stateDir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := atomicfile.Write(p, f.Data, f.Mode); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	if len(rp.state) > 0 {
		x.emit(op, "restored", "Wrote %s into the state directory", strings.Join(rp.StateWritten, ", "))
	}
	return nil
}

// plural is "1 file" or "2 files".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// FromHomeRestoring builds the desired state of a home as it will be once
// a restore wrote the state files an archive holds (state, paths relative
// to the state directory) where the state directory lacks them
// (workspace.Home.WithState). Restore writes the files once the broker
// serves the archive; the backup apply takes goes to the home's own
// backup folder.
func FromHomeRestoring(h *workspace.Home, state []backup.File, now time.Time) (*Desired, error) {
	files := make([]workspace.StateFile, len(state))
	for i, f := range state {
		files[i] = workspace.StateFile{Path: f.Path, Mode: f.Mode, Data: f.Data}
	}
	var d *Desired
	err := h.WithState(files, func(overlay *workspace.Home) error {
		var err error
		d, err = FromHome(overlay, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	dir, keep := h.BackupLocation()
	d.Backup = &BackupTarget{Dir: dir, Keep: keep, StateDir: h.Secrets.Dir}
	return d, nil
}
