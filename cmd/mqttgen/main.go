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

// run executes one command line and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
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
			fmt.Fprintln(stderr, d)
		}
		return 1
	case errors.As(err, &exit):
		return int(exit)
	default:
		fmt.Fprintf(stderr, "mqttgen: %v\n", err)
		return 1
	}
}

// exitError ends a command with a status and no further message: the
// command has printed what there is to say.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
