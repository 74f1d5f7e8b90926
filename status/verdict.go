package status

import (
	"bytes"
	"fmt"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

// The exit codes of mqttgen status, for monitors (1 is left to errors of
// status itself, such as a home that does not vet). When several hold, the
// first of unreachable, down, access, drift is the one returned.
const (
	// ExitServing: the broker runs and serves what home.cue asks for.
	ExitServing = 0
	// ExitDrift: the broker runs, but not what home.cue asks for (mqttgen
	// plan shows the difference).
	ExitDrift = 2
	// ExitDown: the broker's container is missing, not running, or
	// unhealthy.
	ExitDown = 3
	// ExitUnreachable: the Docker engine cannot be asked; the broker's
	// state is unknown.
	ExitUnreachable = 4
	// ExitAccess: the deployed acl or passwd is not what the broker can
	// parse: Mosquitto 2.0 then runs without access control, 2.1 quits.
	ExitAccess = 5
)

// States of Report.State, one per exit code.
const (
	StateServing     = "serving"
	StateDrift       = "drift"
	StateDown        = "down"
	StateMissing     = "missing"
	StateUnknown     = "unknown"
	StateNoAccessCtl = "access-control-broken"
)

// verdict sets r.State, r.Exit and r.Summary from the rest of the report.
func (r *Report) verdict() {
	set := func(state string, code int, format string, args ...any) {
		r.State, r.Exit, r.Summary = state, code, fmt.Sprintf(format, args...)
	}
	br := r.Broker
	switch {
	case r.Engine == nil || r.Engine.Error != "" || br == nil:
		set(StateUnknown, ExitUnreachable, "unknown: the Docker engine cannot be asked, so whether the broker runs is unknown")
	case !br.Exists:
		set(StateMissing, ExitDown, "missing: the broker's container %s does not exist (mqttgen apply creates it)", br.Container)
	case br.State != "running":
		set(StateDown, ExitDown, "down: the broker's container %s is %s (mqttgen apply starts a new one)", br.Container, br.State)
	case br.Health == "unhealthy":
		set(StateDown, ExitDown, "down: the broker's container %s runs but its healthcheck fails", br.Container)
	case br.AccessControl != "":
		set(StateNoAccessCtl, ExitAccess, "ACCESS CONTROL BROKEN: %s", br.AccessControl)
	case r.Config.Error != "" || !r.Config.Matches:
		set(StateDrift, ExitDrift, "drift: the broker runs, but not what home.cue asks for (mqttgen plan shows the difference)")
	default:
		set(StateServing, ExitServing, "serving: the broker runs what home.cue asks for")
	}
}

// accessControl checks the deployed acl and passwd as the broker reads
// them, and says loudly what a broker does with files it cannot parse: ""
// when both parse.
func accessControl(cur *deploy.Container) string {
	if cur == nil {
		return ""
	}
	eng := ""
	if cur.Spec != nil {
		eng = cur.Spec.Labels[generators.LabelEngine]
	}
	consequence := "Mosquitto 2.0 runs without access control (every client may read and write every topic, a device may command another), and 2.1 quits at its next start or reload"
	if eng == "mqttgen" { // schema.EngineMqttgen, the label's value
		consequence = "the bundled broker keeps the rules it had before, and will not start again with these files"
	}
	for _, f := range cur.Files {
		var err error
		switch f.Path {
		case "acl":
			_, err = acl.Parse(bytes.NewReader(f.Data))
		case "passwd":
			_, err = passwd.Parse(bytes.NewReader(f.Data))
		default:
			continue
		}
		if err != nil {
			return fmt.Sprintf("the deployed %s does not parse (%v): %s. mqttgen apply writes the one home.cue renders", f.Path, err, consequence)
		}
	}
	return ""
}
