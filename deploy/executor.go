package deploy

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
)

// executor runs a plan's operations against the engine, in the manner of
// compose's convergence: apply.go checks and orders them, operations.go
// does each, readiness.go decides when a broker serves, rollback.go undoes
// an operation whose broker does not.
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
	host := opts.PublishHost
	if host == "" {
		host = engine.PublishHost(cli)
	}
	return &executor{cli: cli, opts: opts, host: host, d: d, o: o}
}

func (x *executor) emit(op Op, step, format string, args ...any) {
	x.opts.Events(Event{Time: time.Now(), Resource: fmt.Sprintf("%s %q", op.Kind, op.Name), Action: op.Action, Step: step, Message: fmt.Sprintf(format, args...)})
}

// checkpoint is where an operation may be interrupted: the test hook
// (Options.Checkpoint) runs there, then the operation looks at ctx.
func (x *executor) checkpoint(ctx context.Context, op Op, step string) {
	if x.opts.Checkpoint != nil {
		x.opts.Checkpoint(op, step)
	}
}

// fault is the error Options.Fault injects at step, nil without one.
func (x *executor) fault(op Op, step string) error {
	if x.opts.Fault == nil {
		return nil
	}
	return x.opts.Fault(op, step)
}

// BrokerState says in a few words what the project's broker container is
// doing now, for the line an interrupted apply ends with.
func BrokerState(ctx context.Context, cli *client.Client, project string) string {
	name := engine.ContainerName(project, generators.BrokerService)
	res, err := cli.ContainerInspect(context.WithoutCancel(ctx), name, client.ContainerInspectOptions{})
	switch {
	case err != nil && cerrdefs.IsNotFound(err):
		return fmt.Sprintf("no broker container %s exists", name)
	case err != nil:
		return fmt.Sprintf("the state of %s is unknown (%v)", name, err)
	case res.Container.State != nil && res.Container.State.Running:
		return fmt.Sprintf("the broker %s is running", name)
	case res.Container.State != nil:
		return fmt.Sprintf("the broker %s is %s, NOT running", name, res.Container.State.Status)
	}
	return fmt.Sprintf("the broker %s is in an unknown state", name)
}
