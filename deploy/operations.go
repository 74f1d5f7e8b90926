package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/internal/human"
)

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
	x.emit(op, "built", "Built image %s [id=%s] in %s", ref, engine.ShortID(img.ID), time.Since(start).Round(100*time.Millisecond))
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
	x.emit(op, "created", "Created [id=%s]", engine.ShortID(res.ID))
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
	ctx = context.WithoutCancel(ctx) // a stop the daemon began is seen through
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

// containerLabels are the labels of the service's container: its own,
// compose's and mqttgen's, no secret among them (see Spec.label).
func containerLabels(d *Desired, s *Service, name string) map[string]string {
	labels := map[string]string{}
	for k, v := range s.Spec.Labels {
		labels[k] = v
	}
	specJSON, _ := json.Marshal(s.Spec.label())
	for k, v := range map[string]string{
		engine.LabelProject:    d.Project,
		engine.LabelService:    s.Name,
		engine.LabelNumber:     strconv.Itoa(engine.ContainerNumber(name)),
		engine.LabelOneoff:     "False",
		engine.LabelVersion:    engine.ComposeVersion,
		engine.LabelConfigHash: s.Hash,
		engine.LabelWorkingDir: d.WorkingDir,
		engine.LabelFiles:      "",
		engine.LabelSpecHash:   s.Hash,
		engine.LabelSpec:       string(specJSON),
		engine.LabelConfigDir:  s.ConfigDir,
	} {
		if v != "" || k == engine.LabelFiles {
			labels[k] = v
		}
	}
	return labels
}

// createContainer creates (does not start) the service's container and
// copies its files in.
func (x *executor) createContainer(ctx context.Context, op Op, s *Service, name string) (string, error) {
	sp := s.Spec
	labels := containerLabels(x.d, s, name)
	cfg := &container.Config{
		Image:        sp.Image,
		Entrypoint:   sp.Entrypoint,
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
	s := x.d.Service(op.Service)
	wctx := context.WithoutCancel(ctx)
	id, err := x.createContainer(wctx, op, s, op.Name)
	if err != nil {
		return err
	}
	if err = x.startAndWait(ctx, op, s, id); err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = ErrInterrupted
	}
	x.emit(op, "removing", "Removing the container that does not serve...")
	if _, rerr := x.cli.ContainerRemove(wctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil {
		return &ApplyError{Op: op, Cause: err, RollbackErr: rerr}
	}
	// Interrupted, the creation is undone; failed, there was no previous
	// configuration to roll back to.
	return &ApplyError{Op: op, Cause: err, RolledBack: errors.Is(err, ErrInterrupted)}
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
	s := x.d.Service(op.Service)
	cur := x.observedContainer(op)
	if cur == nil {
		return fmt.Errorf("container %s is not in the observed state", op.ContainerID)
	}
	oldFiles := cur.Files
	x.checkpoint(ctx, op, "copying")
	if ctx.Err() != nil {
		return &ApplyError{Op: op, Cause: ErrInterrupted, RolledBack: true}
	}
	if err := x.copyFiles(context.WithoutCancel(ctx), op, cur.ID, s.ConfigDir, s.Files, missing(oldFiles, s.Files)); err != nil {
		return err
	}
	x.checkpoint(ctx, op, "reloading")
	if ctx.Err() != nil {
		// Interrupted with the new files in place, before the broker
		// read them: they are written back.
		return x.rollbackFiles(ctx, op, s, cur, oldFiles, ErrInterrupted)
	}
	err := x.reload(ctx, op, s, cur.ID, s.Files, &s.Spec, true)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = ErrInterrupted
	}
	return x.rollbackFiles(ctx, op, s, cur, oldFiles, err)
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
	x.emit(op, "backed-up", "Backup written: %s (%s)", res.Path, human.Bytes(res.Size))
	if len(res.Removed) > 0 {
		x.emit(op, "backed-up", "Removed %s (apply and restore keep their newest %d; backup.keep counts only mqttgen backup's)", plural(len(res.Removed), "older automatic archive"), backup.AutomaticKeep)
	}
	return nil
}

// replaceService stops the current container, keeps it aside under another
// name, and creates the new one on the same volumes. If the new one does not
// serve, it is removed and the previous one is renamed back and started.
func (x *executor) replaceService(ctx context.Context, op Op) error {
	s := x.d.Service(op.Service)
	cur := x.observedContainer(op)
	if cur == nil {
		return fmt.Errorf("container %s is not in the observed state", op.ContainerID)
	}
	wasRunning := cur.State == "running"
	if s.Reload && x.d.Backup != nil {
		x.checkpoint(ctx, op, "backing-up")
		if err := x.backupBefore(ctx, op, cur, "apply, before replacing the broker"); err != nil {
			if ctx.Err() != nil {
				return &ApplyError{Op: op, Cause: ErrInterrupted, RolledBack: true}
			}
			if wasRunning {
				return &ApplyError{Op: op, Cause: fmt.Errorf("%w; nothing was changed", err)}
			}
			// A broker that does not run may be what the replacement
			// repairs: its volumes are kept anyway.
			x.emit(op, "backing-up", "Warning: %v; replacing the broker that is %s anyway (its volumes are kept)", err, cur.State)
		}
	}
	x.checkpoint(ctx, op, "stopping")
	if ctx.Err() != nil {
		return &ApplyError{Op: op, Cause: ErrInterrupted, RolledBack: true}
	}
	// From the stop on, every engine call runs to its end even when apply
	// is interrupted (a stop the daemon began would otherwise leave the
	// broker stopped, and "unless-stopped" does not start it again); an
	// interruption is honoured between the calls: until the new broker
	// serves, by restoring the previous one, after that by finishing.
	wctx := context.WithoutCancel(ctx)
	timeout := int(x.opts.StopTimeout / time.Second)
	x.emit(op, "stopping", "Stopping %s (the broker writes its persistence file)...", cur.Name)
	if _, err := x.cli.ContainerStop(wctx, cur.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return x.restartPrevious(ctx, op, s, cur, wasRunning, err)
	}
	x.checkpoint(ctx, op, "renaming")
	aside := cur.Name + PreviousSuffix
	if _, err := x.cli.ContainerRename(wctx, cur.ID, client.ContainerRenameOptions{NewName: aside}); err != nil {
		return x.restartPrevious(ctx, op, s, cur, wasRunning, err)
	}
	restore := func(cause error) error {
		if ctx.Err() != nil {
			cause = ErrInterrupted
		}
		return x.restorePrevious(ctx, op, s, cur, wasRunning, cause)
	}
	x.checkpoint(ctx, op, "creating")
	if ctx.Err() != nil {
		return restore(ErrInterrupted)
	}
	id, err := x.createContainer(wctx, op, s, op.Name)
	if err != nil {
		return restore(err)
	}
	x.checkpoint(ctx, op, "starting")
	if ctx.Err() == nil {
		err = x.startAndWait(ctx, op, s, id)
	}
	if ctx.Err() != nil || err != nil {
		x.emit(op, "removing", "Removing the new container, which does not serve...")
		rctx, cancel := rollbackContext(ctx, x.opts.ReadyTimeout)
		defer cancel()
		if _, rerr := x.cli.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil {
			return &ApplyError{Op: op, Cause: err, RollbackErr: rerr}
		}
		return restore(err)
	}
	// The new broker serves: an interruption from here on finishes the
	// replacement.
	x.checkpoint(ctx, op, "removing-previous")
	x.emit(op, "removing", "Removing the previous container...")
	if _, err := x.cli.ContainerRemove(wctx, cur.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		return err
	}
	if s.Build != nil && cur.ImageID != "" {
		// The image of a previous mqttgen binary, untagged by the build.
		removeStaleImage(ctx, x.cli, cur.ImageID)
	}
	return nil
}
