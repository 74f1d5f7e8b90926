package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/workspace"
)

func newInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init [DIR]",
		Short: "Start a home: a commented home.cue and a .gitignore",
		Long: `init writes a minimal, commented home.cue into DIR (default the working
directory) and a .gitignore that keeps the state directory (.mqttgen: passwords,
keys), rendered files (out/) and saved plans (*.plan) out of git; an existing
.gitignore gets the lines it lacks. It never overwrites a home.cue.`,
		Example: `  mqttgen init myhome && mqttgen vet myhome`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			written, err := workspace.Init(pathArg(args))
			if err != nil {
				return err
			}
			for _, f := range written {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", f)
			}
			return nil
		},
	}
}
