// Command mqttgen turns one home.cue into a working home MQTT broker:
// vet checks it, render writes the broker's files, secrets manages the
// passwords. Every command is a thin shell over the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mqttgen/mqttgen/schema"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes one command line and returns the exit status. On a terminal
// (and without NO_COLOR) what it prints is coloured.
func run(args []string, stdout, stderr io.Writer) int {
	rawErr, colourErr := stderr, colourOn(stderr)
	if colourOn(stdout) && len(args) > 0 && colouredCommands[args[0]] {
		cw := &colourWriter{w: stdout}
		defer cw.Flush()
		stdout = cw
	}
	if colourErr {
		cw := &colourWriter{w: stderr}
		defer cw.Flush()
		stderr = cw
	}
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	var diags schema.Diagnostics
	var exit exitError
	switch {
	case errors.As(err, &diags):
		for _, d := range diags {
			if colourErr {
				fmt.Fprintln(rawErr, diagColour(d.String(), d.Warning))
			} else {
				fmt.Fprintln(stderr, d)
			}
		}
		return 1
	case errors.As(err, &exit):
		return int(exit)
	default:
		fmt.Fprintf(stderr, "mqttgen: %v\n", err)
		return 1
	}
}

// colouredCommands print plans: their stdout is coloured on a terminal
// (secrets show's is not: a password is copied from it).
var colouredCommands = map[string]bool{"plan": true, "apply": true, "destroy": true, "restore": true}

// exitError ends a command with a status and no further message: the
// command has printed what there is to say.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
