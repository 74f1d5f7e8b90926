package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
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
	// Checkpoint, for tests, is called at each point where an operation
	// looks for an interruption, with the step about to begin (stopping,
	// renaming, creating, starting, removing-previous, copying, reloading,
	// backing-up, and "next" between operations): a test cancels apply's
	// context there to interrupt it exactly at that step.
	Checkpoint func(op Op, step string)
	// PublishHost is the address the broker's published ports are reached
	// at, to prove it serves; "" asks the engine (engine.PublishHost). A
	// site's is its hostname: an ssh:// engine's client knows no address.
	PublishHost string
	// Fault, for tests, may fail a step as the engine would: the error it
	// returns at a step is that step's. Restore asks it once its copy of
	// the archive's data and config into the container is written
	// ("copying"), so a test reaches the write-back on the real engine.
	Fault func(op Op, step string) error
}

// ErrInterrupted is the cause of an operation that apply's context ended
// (SIGINT, SIGTERM) before it was done: it was undone, or, once the new
// broker served, finished.
var ErrInterrupted = errors.New("interrupted")

// PreviousSuffix names the container a replacement sets aside until the new
// one serves.
const PreviousSuffix = "-previous"

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
	case errors.Is(e.Cause, ErrInterrupted) && e.RolledBack:
		msg += " before this step was done; it was undone"
	case e.RolledBack:
		msg += "; rolled back: the broker serves the previous configuration"
	case e.RollbackErr != nil:
		msg += fmt.Sprintf("; rollback failed too: %v", e.RollbackErr)
	}
	return msg
}

func (e *ApplyError) Unwrap() error { return e.Cause }

// Apply executes the plan p, made by Reconcile from d and o. It first checks
// everything it can without changing anything (files, images), then runs
// the operations in order and stops at the first that fails, after rolling
// it back.
func Apply(ctx context.Context, cli *client.Client, d *Desired, o *Observed, p *Plan, opts Options) error {
	x := newExecutor(cli, d, o, opts)
	if err := x.preflight(ctx, p); err != nil {
		return err
	}
	for i, op := range p.Ops {
		x.checkpoint(ctx, op, "next")
		if ctx.Err() != nil {
			return &InterruptedError{Done: p.Ops[:i], Left: p.Ops[i:]}
		}
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

// InterruptedError is an apply interrupted between operations: Done are
// complete, Left were not begun.
type InterruptedError struct {
	Done, Left []Op
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted: %d of %d operations done, %d not begun (mqttgen plan shows them)", len(e.Done), len(e.Done)+len(e.Left), len(e.Left))
}

func (e *InterruptedError) Unwrap() error { return ErrInterrupted }

var doneVerb = map[Action]string{Create: "Creation complete", Update: "Modifications complete", Replace: "Replacement complete", Delete: "Destruction complete"}

// preflight refuses a plan that cannot work before it touches anything.
func (x *executor) preflight(ctx context.Context, p *Plan) error {
	for _, op := range p.Ops {
		if op.Kind != KindContainer || op.Action == Delete {
			continue
		}
		s := x.d.Service(op.Service)
		if s == nil {
			return fmt.Errorf("plan names service %s, which the home does not have", op.Service)
		}
		files := map[string][]byte{}
		for _, f := range s.Files {
			files[f.Path] = f.Data
		}
		if s.Reload {
			if err := ValidateFiles(files); err != nil {
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
