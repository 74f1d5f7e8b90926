package deploy

import (
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
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
	return &executor{cli: cli, opts: opts, host: engine.PublishHost(cli), d: d, o: o}
}

func (x *executor) emit(op Op, step, format string, args ...any) {
	x.opts.Events(Event{Time: time.Now(), Resource: fmt.Sprintf("%s %q", op.Kind, op.Name), Action: op.Action, Step: step, Message: fmt.Sprintf(format, args...)})
}
