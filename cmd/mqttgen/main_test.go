package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mqttgen": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scenarios in testdata/script.
func TestScripts(t *testing.T) {
	t.Cleanup(removeScriptImage)
	testscript.Run(t, testscript.Params{
		Cmds: scriptCmds,
		Dir:  "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("MQTTGEN_STATE", "")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return scriptCondition(cond)
		},
	})
}
