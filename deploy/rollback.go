package deploy

import (
	"context"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/generators"
)

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

// rollbackFiles writes back the files a broker served before an update it
// does not serve (cause), and signals it again.
func (x *executor) rollbackFiles(ctx context.Context, op Op, s *Service, cur *Container, oldFiles []generators.File, cause error) error {
	x.emit(op, "rolling-back", "The broker does not serve the new files (%v); writing back the previous ones...", cause)
	ae := &ApplyError{Op: op, Cause: cause}
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

// restartPrevious starts a broker that a replacement stopped (or began to
// stop) under its own name, after the stop or the rename failed.
func (x *executor) restartPrevious(ctx context.Context, op Op, s *Service, cur *Container, wasRunning bool, cause error) error {
	if ctx.Err() != nil {
		cause = ErrInterrupted
	}
	ae := &ApplyError{Op: op, Cause: cause}
	ctx, cancel := rollbackContext(ctx, x.opts.ReadyTimeout)
	defer cancel()
	if !wasRunning {
		ae.RolledBack = true
		return ae
	}
	x.emit(op, "rolling-back", "Starting the previous container %s again...", cur.Name)
	if err := x.startServing(ctx, op, s, cur); err != nil {
		ae.RollbackErr = err
	} else {
		ae.RolledBack = true
		x.emit(op, "rolled-back", "The previous container serves again")
	}
	return ae
}

// restorePrevious renames the container a replacement set aside back and
// starts it again when it was running, after a replacement that failed
// (cause).
func (x *executor) restorePrevious(ctx context.Context, op Op, s *Service, cur *Container, wasRunning bool, cause error) error {
	ae := &ApplyError{Op: op, Cause: cause}
	ctx, cancel := rollbackContext(ctx, x.opts.ReadyTimeout)
	defer cancel()
	// Under the service's own name (op.Name), also when cur was itself a
	// container an earlier, killed apply had set aside.
	x.emit(op, "rolling-back", "Restoring the previous container as %s...", op.Name)
	_, err := x.cli.ContainerRename(ctx, cur.ID, client.ContainerRenameOptions{NewName: op.Name})
	if err == nil && wasRunning {
		err = x.startServing(ctx, op, s, cur)
	}
	if err != nil {
		ae.RollbackErr = err
	} else {
		ae.RolledBack = true
		x.emit(op, "rolled-back", "The previous container serves again")
	}
	return ae
}

// startServing starts the previous container cur and waits until it serves
// the files and spec it was deployed with.
func (x *executor) startServing(ctx context.Context, op Op, s *Service, cur *Container) error {
	if _, err := x.cli.ContainerStart(ctx, cur.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	sp := cur.Spec
	if sp == nil {
		sp = &s.Spec
	}
	return x.waitReady(ctx, op, s, cur.ID, cur.Files, sp, time.Time{}, false)
}
