package main

import (
	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/workspace"
)

func newVetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "vet [PATH]",
		Short: "Check a home against the schema",
		Long: `vet checks the home at PATH (a folder of package home .cue files, or one file;
default the working directory) against mqttgen's schema. Each problem is printed
on its own line as file:line:col: field: what is wrong and the fix. It also reads
the certificate and key files the home names and checks that each holds what it
must (a CA file certificates only). Accounts with password: "hash" (imported)
must have their hash in the state directory, in a form the broker reads.
Warnings do not fail the check. Exit status: 0 valid, 1 not.`,
		Example: `  mqttgen vet                 # the home in this folder
  mqttgen vet home.cue`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := workspace.Open(pathArg(args), g.state)
			if err != nil {
				return err
			}
			problems := h.CheckFiles()
			_, kept := h.KeptHashes()
			if problems = append(problems, kept...); len(problems) > 0 {
				return problems
			}
			printWarnings(cmd.ErrOrStderr(), h.Warnings)
			return nil
		},
	}
}
