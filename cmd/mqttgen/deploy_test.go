package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// mqttgen runs one command line with stdin and returns its exit status and
// everything it printed.
func mqttgen(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	var exit exitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return int(exit), out.String()
	default:
		return 1, out.String() + "mqttgen: " + err.Error() + "\n"
	}
}
