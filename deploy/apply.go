package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// Event is one step of apply or destroy, for progress lines and --json.
type Event struct {
	Time     time.Time `json:"time"`
	Resource string    `json:"resource"`
	Action   Action    `json:"action,omitempty"`
	// Step: building, built, pulling, creating, created, backing-up,
	// backed-up, stopping, copying, starting, waiting, ready, reloading,
	// replacing, removing, removed, rolling-back, rolled-back, restoring,
	// failed.
	Step    string `json:"step"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

// Options tune apply and destroy.
type Options struct {
	// ReadyTimeout bounds the wait for an authenticated connection after a
	// change (default 30s).
	ReadyTimeout time.Duration
	// StopTimeout is how long a broker may take to write its persistence
	// file and stop before it is killed (default 10s).
	StopTimeout time.Duration
	// Events receives each step; nil drops them.
	Events func(Event)
}

// ApplyError is a failed operation, after its rollback.
type ApplyError struct {
	Op Op
	// Cause is what went wrong.
	Cause error
	// RolledBack says the previous files and container serve again.
	RolledBack bool
	// RollbackErr is why the rollback failed, if it did.
	RollbackErr error
}

func (e *ApplyError) Error() string {
	msg := fmt.Sprintf("%s %q: %v", e.Op.Kind, e.Op.Name, e.Cause)
	switch {
	case e.RolledBack:
		msg += "; rolled back: the broker serves the previous configuration"
	case e.RollbackErr != nil:
		msg += fmt.Sprintf("; rollback failed too: %v", e.RollbackErr)
	}
	return msg
}

func (e *ApplyError) Unwrap() error { return e.Cause }

type executor struct {
	cli  *client.Client
	opts Options
	host string
	d    *Desired
	o    *Observed
}

func newExecutor(cli *client.Client, d *Desired, o *Observed, opts Options) *executor {
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.Events == nil {
		opts.Events = func(Event) {}
	}
	return &executor{cli: cli, opts: opts, host: engine.PublishHost(cli), d: d, o: o}
}

func (x *executor) emit(op Op, step, format string, args ...any) {
	x.opts.Events(Event{Time: time.Now(), Resource: fmt.Sprintf("%s %q", op.Kind, op.Name), Action: op.Action, Step: step, Message: fmt.Sprintf(format, args...)})
}

// Apply executes the plan p, made by Reconcile from d and o. It first checks
// everything it can without changing anything (files, images), then runs
// the operations in order and stops at the first that fails, after rolling
// it back.
func Apply(ctx context.Context, cli *client.Client, d *Desired, o *Observed, p *Plan, opts Options) error {
	x := newExecutor(cli, d, o, opts)
	if err := x.preflight(ctx, p); err != nil {
		return err
	}
	for _, op := range p.Ops {
		start := time.Now()
		var err error
		switch {
		case op.Kind == KindNetwork && op.Action == Create:
			err = x.createNetwork(ctx, op)
		case op.Kind == KindNetwork && op.Action == Delete:
			x.emit(op, "removing", "Destroying...")
			_, err = cli.NetworkRemove(ctx, op.Name, client.NetworkRemoveOptions{})
		case op.Kind == KindVolume && op.Action == Create:
			err = x.createVolume(ctx, op)
		case op.Kind == KindVolume && op.Action == Delete:
			x.emit(op, "removing", "Destroying...")
			_, err = cli.VolumeRemove(ctx, op.Name, client.VolumeRemoveOptions{})
		case op.Kind == KindContainer && op.Action == Delete:
			err = x.removeContainer(ctx, op, op.ContainerID)
		case op.Kind == KindContainer && op.Action == Create:
			err = x.createService(ctx, op)
		case op.Kind == KindContainer && op.Action == Update:
			err = x.updateService(ctx, op)
		case op.Kind == KindContainer && op.Action == Replace:
			err = x.replaceService(ctx, op)
		default:
			err = fmt.Errorf("no way to %s a %s", op.Action, op.Kind)
		}
		if err != nil {
			var ae *ApplyError
			if !errors.As(err, &ae) {
				ae = &ApplyError{Op: op, Cause: err}
			}
			x.opts.Events(Event{Time: time.Now(), Resource: fmt.Sprintf("%s %q", op.Kind, op.Name), Action: op.Action, Step: "failed", Message: "failed", Error: ae.Error()})
			return ae
		}
		x.emit(op, "done", "%s after %s", doneVerb[op.Action], time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

var doneVerb = map[Action]string{Create: "Creation complete", Update: "Modifications complete", Replace: "Replacement complete", Delete: "Destruction complete"}

// preflight refuses a plan that cannot work before it touches anything.
func (x *executor) preflight(ctx context.Context, p *Plan) error {
	for _, op := range p.Ops {
		if op.Kind != KindContainer || op.Action == Delete {
			continue
		}
		s := x.d.service(op.Service)
		if s == nil {
			return fmt.Errorf("plan names service %s, which the home does not have", op.Service)
		}
		files := map[string][]byte{}
		for _, f := range s.Files {
			files[f.Path] = f.Data
		}
		if s.Reload {
			if err := validateFiles(files); err != nil {
				return &ApplyError{Op: op, Cause: fmt.Errorf("refusing to deploy, nothing was changed: %w", err)}
			}
		}
		if op.Action == Update {
			continue
		}
		var err error
		if s.Build != nil {
			err = x.ensureBuilt(ctx, op, s)
		} else {
			err = x.ensureImage(ctx, op, s.Spec.Image)
		}
		if err != nil {
			return &ApplyError{Op: op, Cause: fmt.Errorf("%w; nothing was changed", err)}
		}
	}
	return nil
}

// ensureBuilt builds the bundled broker's image (BuildBrokerImage) unless
// the engine has it from this very binary. Only the tag moves: containers
// keep running the image they were created from.
func (x *executor) ensureBuilt(ctx context.Context, op Op, s *Service) error {
	ref, b := s.Spec.Image, s.Build
	if img, err := x.cli.ImageInspect(ctx, ref); err == nil && img.Config != nil && img.Config.Labels[engine.LabelBinaryDigest] == b.Digest {
		return nil
	} else if err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	start := time.Now()
	x.emit(op, "building", "Building image %s FROM scratch from %s (%s)...", ref, b.Binary, b.ShortDigest())
	if err := BuildBrokerImage(ctx, x.cli, ref, b); err != nil {
		return fmt.Errorf("the bundled broker's image: %w", err)
	}
	img, err := x.cli.ImageInspect(ctx, ref)
	if err != nil {
		return err
	}
	x.emit(op, "built", "Built image %s [id=%s] in %s", ref, shortID(img.ID), time.Since(start).Round(100*time.Millisecond))
	return nil
}

// ensureImage pulls an image the engine does not have.
func (x *executor) ensureImage(ctx context.Context, op Op, ref string) error {
	if _, err := x.cli.ImageInspect(ctx, ref); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return err
	}
	x.emit(op, "pulling", "Pulling image %s...", ref)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, err := x.cli.ImagePull(pctx, ref, client.ImagePullOptions{})
	if err == nil {
		err = res.Wait(pctx)
	}
	if err != nil {
		return fmt.Errorf("image %s is not on the Docker engine and pulling it failed: %v; load it (docker load) or build it, then apply again", ref, err)
	}
	return nil
}

func (x *executor) createNetwork(ctx context.Context, op Op) error {
	x.emit(op, "creating", "Creating...")
	res, err := x.cli.NetworkCreate(ctx, op.Name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{engine.LabelProject: x.d.Project, engine.LabelNetwork: x.d.Network.Key, engine.LabelVersion: engine.ComposeVersion, generators.LabelManaged: "true"},
	})
	if err != nil {
		return err
	}
	x.emit(op, "created", "Created [id=%s]", shortID(res.ID))
	return nil
}

func (x *executor) createVolume(ctx context.Context, op Op) error {
	x.emit(op, "creating", "Creating...")
	key := ""
	for _, v := range x.d.Volumes {
		if v.Name == op.Name {
			key = v.Key
		}
	}
	_, err := x.cli.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name:   op.Name,
		Labels: map[string]string{engine.LabelProject: x.d.Project, engine.LabelVolume: key, engine.LabelVersion: engine.ComposeVersion, generators.LabelManaged: "true"},
	})
	return err
}

// removeContainer stops a container (giving Mosquitto time to write its
// persistence file) and removes it with its anonymous volumes.
func (x *executor) removeContainer(ctx context.Context, op Op, id string) error {
	x.emit(op, "stopping", "Stopping...")
	timeout := int(x.opts.StopTimeout / time.Second)
	if _, err := x.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &timeout}); err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	x.emit(op, "removing", "Destroying...")
	if _, err := x.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{RemoveVolumes: true, Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// createContainer creates (does not start) the service's container and
// copies its files in.
func (x *executor) createContainer(ctx context.Context, op Op, s *Service, name string) (string, error) {
	sp := s.Spec
	labels := map[string]string{}
	for k, v := range sp.Labels {
		labels[k] = v
	}
	specJSON, _ := json.Marshal(sp)
	for k, v := range map[string]string{
		engine.LabelProject:    x.d.Project,
		engine.LabelService:    s.Name,
		engine.LabelNumber:     strconv.Itoa(engine.ContainerNumber(name)),
		engine.LabelOneoff:     "False",
		engine.LabelVersion:    engine.ComposeVersion,
		engine.LabelConfigHash: s.Hash,
		engine.LabelWorkingDir: x.d.WorkingDir,
		engine.LabelFiles:      "",
		engine.LabelSpecHash:   s.Hash,
		engine.LabelSpec:       string(specJSON),
		engine.LabelConfigDir:  s.ConfigDir,
	} {
		if v != "" || k == engine.LabelFiles {
			labels[k] = v
		}
	}
	cfg := &container.Config{
		Image:        sp.Image,
		Cmd:          sp.Cmd,
		Env:          sp.Env,
		Labels:       labels,
		ExposedPorts: network.PortSet{},
	}
	host := &container.HostConfig{
		PortBindings:  network.PortMap{},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(sp.Restart)},
		NetworkMode:   container.NetworkMode(sp.Network),
	}
	for _, p := range sp.Ports {
		port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.Target, p.Protocol))
		if err != nil {
			return "", err
		}
		cfg.ExposedPorts[port] = struct{}{}
		var ip netip.Addr
		if p.HostIP != "" {
			if ip, err = netip.ParseAddr(p.HostIP); err != nil {
				return "", fmt.Errorf("port %s: %w", p, err)
			}
		}
		host.PortBindings[port] = append(host.PortBindings[port], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(p.Published)})
	}
	for _, m := range sp.Mounts {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeVolume, Source: m.Volume, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	if h := sp.Healthcheck; h != nil {
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	x.emit(op, "creating", "Creating %s from %s...", name, sp.Image)
	res, err := x.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     cfg,
		HostConfig: host,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			sp.Network: {Aliases: sp.Aliases},
		}},
	})
	if err != nil {
		return "", err
	}
	if s.ConfigDir != "" {
		if err := x.copyFiles(ctx, op, res.ID, s.ConfigDir, s.Files, nil); err != nil {
			x.cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			return "", err
		}
	}
	return res.ID, nil
}

// copyFiles writes files into dir in the container through the API, owned
// by the broker's user with their modes, with the manifest of what mqttgen
// deployed. emptied are files it deployed before that are no longer wanted:
// the API cannot remove a file, so they are emptied. The broker reads the
// files only at start and on SIGHUP, which follow the copy.
func (x *executor) copyFiles(ctx context.Context, op Op, id, dir string, files []generators.File, emptied []string) error {
	x.emit(op, "copying", "Copying %d files into %s (owner %d:%d)...", len(files), dir, brokerUID, brokerUID)
	owned := make([]engine.File, len(files))
	for i, f := range files {
		owned[i] = engine.File{Path: f.Path, Mode: f.Mode, UID: brokerUID, GID: brokerUID, Data: f.Data}
	}
	return engine.WriteDeployed(ctx, x.cli, id, dir, engine.File{Mode: 0o755, UID: brokerUID, GID: brokerUID}, owned, emptied)
}

// createService creates and starts a service's container and waits until
// it serves; a container that does not is removed.
func (x *executor) createService(ctx context.Context, op Op) error {
	s := x.d.service(op.Service)
	id, err := x.createContainer(ctx, op, s, op.Name)
	if err != nil {
		return err
	}
	if err := x.startAndWait(ctx, op, s, id); err != nil {
		x.emit(op, "removing", "Removing the container that does not serve...")
		x.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return &ApplyError{Op: op, Cause: err}
	}
	return nil
}

func (x *executor) startAndWait(ctx context.Context, op Op, s *Service, id string) error {
	x.emit(op, "starting", "Starting...")
	if _, err := x.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return err
	}
	return x.waitReady(ctx, op, s, id, s.Files, &s.Spec, time.Time{}, true)
}

// observedContainer is the container an op acts on.
func (x *executor) observedContainer(op Op) *Container {
	for i := range x.o.Containers {
		if x.o.Containers[i].ID == op.ContainerID {
			return &x.o.Containers[i]
		}
	}
	return nil
}

// updateService writes the changed files into the running broker and
// signals it; if the broker does not serve the new files, the previous ones
// are written back and signalled again.
func (x *executor) updateService(ctx context.Context, op Op) error {
	s := x.d.service(op.Service)
	cur := x.observedContainer(op)
	if cur == nil {
		return fmt.Errorf("container %s is not in the observed state", op.ContainerID)
	}
	oldFiles := cur.Files
	if err := x.copyFiles(ctx, op, cur.ID, s.ConfigDir, s.Files, missing(oldFiles, s.Files)); err != nil {
		return err
	}
	err := x.reload(ctx, op, s, cur.ID, s.Files, &s.Spec, true)
	if err == nil {
		return nil
	}
	x.emit(op, "rolling-back", "The broker does not serve the new files (%v); writing back the previous ones...", err)
	ae := &ApplyError{Op: op, Cause: err}
	// Roll back even when apply was interrupted.
	ctx, cancel := rollbackContext(ctx, x.opts.ReadyTimeout)
	defer cancel()
	rerr := x.copyFiles(ctx, op, cur.ID, s.ConfigDir, oldFiles, missing(s.Files, oldFiles))
	if rerr == nil {
		rerr = x.reload(ctx, op, s, cur.ID, oldFiles, &s.Spec, false)
	}
	if rerr != nil {
		ae.RollbackErr = rerr
	} else {
		ae.RolledBack = true
		x.emit(op, "rolled-back", "The broker serves the previous files again")
	}
	return ae
}

// rollbackContext outlives the cancellation of ctx (an interrupted apply
// still restores what it changed), bounded by the time a broker may take.
func rollbackContext(ctx context.Context, ready time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), ready+30*time.Second)
}

// missing lists the paths of old that want does not have.
func missing(old, want []generators.File) []string {
	var out []string
	for _, o := range old {
		found := false
		for _, w := range want {
			found = found || w.Path == o.Path
		}
		if !found {
			out = append(out, o.Path)
		}
	}
	return out
}

// reload sends SIGHUP and checks that the broker serves files: it logs in,
// TLS listeners present the certificate of files, and the log shows no
// error after "Reloading config." (when Mosquitto logs to the container).
func (x *executor) reload(ctx context.Context, op Op, s *Service, id string, files []generators.File, sp *Spec, auth bool) error {
	since := time.Now().Add(-time.Second)
	x.emit(op, "reloading", "Sending SIGHUP: %s re-reads its files...", engineName(s.Engine()))
	if err := engine.Signal(ctx, x.cli, id, "SIGHUP"); err != nil {
		return err
	}
	// Wait for the broker to log the reload when it logs to stderr;
	// otherwise give its main loop a moment.
	if logsToStderr(files) {
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if logs, _ := x.logs(ctx, id, since, false); strings.Contains(logs, "Reloading config.") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	} else {
		time.Sleep(300 * time.Millisecond)
	}
	return x.waitReady(ctx, op, s, id, files, sp, since, auth)
}

// waitReady waits until the container runs and every listener of files,
// published as sp says, accepts a login; then it checks that TLS listeners
// present the certificate of files and, after a reload, that the log shows
// no error after "Reloading config.". With auth false a refused login counts
// as serving (after a rollback, the previous passwd may not know the probe).
func (x *executor) waitReady(ctx context.Context, op Op, s *Service, id string, files []generators.File, sp *Spec, reloadedSince time.Time, auth bool) error {
	if !s.Reload {
		return x.waitRunning(ctx, id)
	}
	cred := x.d.Probe.Credentials
	if cred.Username == "" {
		// A home without accounts: a CONNACK is all the broker can give.
		auth = false
	}
	targets := probeTargets(files, sp)
	who := "anonymously"
	if cred.Username != "" {
		who = "as " + cred.Username
	}
	x.emit(op, "waiting", "Waiting for the broker to accept a login %s on %d listeners...", who, len(targets))
	deadline := time.Now().Add(x.opts.ReadyTimeout)
	var refusedSince time.Time
	for {
		st, err := x.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		if state := st.Container.State; state != nil && (!state.Running || state.Restarting || st.Container.RestartCount > 0) {
			logs, _ := x.logsSince(ctx, id, time.Time{})
			return fmt.Errorf("the broker exited (status %d)%s", state.ExitCode, logTail(logs, 8))
		}
		var lastErr error
		for _, t := range targets {
			if lastErr = probeTarget(x.host, t, cred, auth); lastErr != nil {
				break
			}
		}
		if lastErr == nil {
			break
		}
		// A refused login is final once the broker has read its passwd;
		// allow a moment for a reload in progress.
		if errors.Is(lastErr, errRefused) {
			if refusedSince.IsZero() {
				refusedSince = time.Now()
			} else if time.Since(refusedSince) > 3*time.Second {
				return lastErr
			}
		}
		if time.Now().After(deadline) {
			logs, _ := x.logsSince(ctx, id, reloadedSince)
			return fmt.Errorf("no login within %s: %v%s", x.opts.ReadyTimeout, lastErr, logTail(logs, 8))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !reloadedSince.IsZero() {
		if err := x.reloadErrors(ctx, id, reloadedSince); err != nil {
			return err
		}
	}
	var crt []byte
	for _, f := range files {
		if f.Path == "certs/server.crt" {
			crt = f.Data
		}
	}
	if crt != nil {
		var err error
		for end := time.Now().Add(time.Second); ; {
			if err = checkCertificates(x.host, targets, crt); err == nil || time.Now().After(end) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			logs, _ := x.logsSince(ctx, id, reloadedSince)
			return fmt.Errorf("%v%s", err, logTail(errorLines(logs), 8))
		}
	}
	x.emit(op, "ready", "The broker accepts logins on every listener")
	return nil
}

// logsToStderr says the mosquitto.conf of files logs to stderr.
func logsToStderr(files []generators.File) bool {
	for _, f := range files {
		if f.Path == "mosquitto.conf" {
			return slices.Contains(conf.Read(f.Path, f.Data).Values("log_dest"), "stderr")
		}
	}
	return false
}

// reloadErrors reports the errors Mosquitto logged since its last
// "Reloading config.", when it logs to the container (log_dest stderr; its
// stdout is block-buffered under Docker).
func (x *executor) reloadErrors(ctx context.Context, id string, since time.Time) error {
	logs, _ := x.logs(ctx, id, since, false)
	if errs := errorLines(afterLast(logs, "Reloading config.")); errs != "" {
		return fmt.Errorf("Mosquitto reported errors while reloading%s", logTail(errs, 8))
	}
	return nil
}

// waitRunning is the check of a service that is not the broker: it keeps
// running for two seconds.
func (x *executor) waitRunning(ctx context.Context, id string) error {
	time.Sleep(2 * time.Second)
	st, err := x.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	if st.Container.State != nil && !st.Container.State.Running {
		logs, _ := x.logsSince(ctx, id, time.Time{})
		return fmt.Errorf("the container exited (status %d)%s", st.Container.State.ExitCode, logTail(logs, 8))
	}
	return nil
}

// logsSince reads the container's output since t (all of it for zero t).
func (x *executor) logsSince(ctx context.Context, id string, t time.Time) (string, error) {
	return x.logs(ctx, id, t, true)
}

// logs reads the container's stderr, and its stdout too when stdout is
// true (engine.Logs).
func (x *executor) logs(ctx context.Context, id string, t time.Time, stdout bool) (string, error) {
	return engine.Logs(ctx, x.cli, id, t, stdout)
}

func afterLast(s, marker string) string {
	if i := strings.LastIndex(s, marker); i >= 0 {
		return s[i+len(marker):]
	}
	return ""
}

// errorLines are the lines of Mosquitto's log that report errors.
func errorLines(logs string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "Error") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// logTail formats the last n lines of a log for an error message.
func logTail(logs string, n int) string {
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}

// backupBefore takes a backup of the broker in cur (see backup.Create)
// into the home's backup folder, keeping backup.keep archives.
func (x *executor) backupBefore(ctx context.Context, op Op, cur *Container, reason string) error {
	b := x.d.Backup
	x.emit(op, "backing-up", "Taking a backup into %s first...", b.Dir)
	res, err := backup.Create(ctx, x.cli, backup.Options{
		Project: x.d.Project, Dir: b.Dir, Keep: backup.AutomaticKeep, Automatic: true, StateDir: b.StateDir, ContainerID: cur.ID, Reason: reason,
		Progress: func(msg string) { x.emit(op, "backing-up", "%s", msg) },
	})
	if err != nil {
		return fmt.Errorf("the backup before replacing the broker failed: %w", err)
	}
	x.emit(op, "backed-up", "Backup written: %s (%s)", res.Path, ByteSize(res.Size))
	if len(res.Removed) > 0 {
		x.emit(op, "backed-up", "Removed %s (apply and restore keep their newest %d; backup.keep counts only mqttgen backup's)", plural(len(res.Removed), "older automatic archive"), backup.AutomaticKeep)
	}
	return nil
}

// ByteSize is a size for people.
func ByteSize(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/1024/1024)
}

// replaceService stops the current container, keeps it aside under another
// name, and creates the new one on the same volumes. If the new one does not
// serve, it is removed and the previous one is renamed back and started.
func (x *executor) replaceService(ctx context.Context, op Op) error {
	s := x.d.service(op.Service)
	cur := x.observedContainer(op)
	if cur == nil {
		return fmt.Errorf("container %s is not in the observed state", op.ContainerID)
	}
	wasRunning := cur.State == "running"
	if s.Reload && x.d.Backup != nil {
		if err := x.backupBefore(ctx, op, cur, "apply, before replacing the broker"); err != nil {
			if wasRunning {
				return &ApplyError{Op: op, Cause: fmt.Errorf("%w; nothing was changed", err)}
			}
			// A broker that does not run may be what the replacement
			// repairs: its volumes are kept anyway.
			x.emit(op, "backing-up", "Warning: %v; replacing the broker that is %s anyway (its volumes are kept)", err, cur.State)
		}
	}
	timeout := int(x.opts.StopTimeout / time.Second)
	x.emit(op, "stopping", "Stopping %s (the broker writes its persistence file)...", cur.Name)
	if _, err := x.cli.ContainerStop(ctx, cur.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return err
	}
	aside := cur.Name + "-previous"
	if _, err := x.cli.ContainerRename(ctx, cur.ID, client.ContainerRenameOptions{NewName: aside}); err != nil {
		return err
	}
	restore := func(cause error) error {
		ae := &ApplyError{Op: op, Cause: cause}
		ctx, cancel := rollbackContext(ctx, x.opts.ReadyTimeout)
		defer cancel()
		x.emit(op, "rolling-back", "Restoring the previous container %s...", cur.Name)
		_, err := x.cli.ContainerRename(ctx, cur.ID, client.ContainerRenameOptions{NewName: cur.Name})
		if err == nil && wasRunning {
			_, err = x.cli.ContainerStart(ctx, cur.ID, client.ContainerStartOptions{})
			if err == nil {
				sp := cur.Spec
				if sp == nil {
					sp = &s.Spec
				}
				err = x.waitReady(ctx, op, s, cur.ID, cur.Files, sp, time.Time{}, false)
			}
		}
		if err != nil {
			ae.RollbackErr = err
		} else {
			ae.RolledBack = true
			x.emit(op, "rolled-back", "The previous container serves again")
		}
		return ae
	}
	id, err := x.createContainer(ctx, op, s, op.Name)
	if err != nil {
		return restore(err)
	}
	if err := x.startAndWait(ctx, op, s, id); err != nil {
		x.emit(op, "removing", "Removing the new container, which does not serve...")
		rctx, cancel := rollbackContext(ctx, x.opts.ReadyTimeout)
		defer cancel()
		if _, rerr := x.cli.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil {
			return &ApplyError{Op: op, Cause: err, RollbackErr: rerr}
		}
		return restore(err)
	}
	x.emit(op, "removing", "Removing the previous container...")
	if _, err := x.cli.ContainerRemove(ctx, cur.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		return err
	}
	if s.Build != nil && cur.ImageID != "" {
		// The image of a previous mqttgen binary, untagged by the build.
		removeStaleImage(ctx, x.cli, cur.ImageID)
	}
	return nil
}
