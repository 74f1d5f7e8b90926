package main

import (
	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/schema"
)

func newVetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "vet [PATH]",
		Short: "Check a home against the schema",
		Long: `vet checks the home at PATH (a folder of package home .cue files, or one file;
default the working directory) against mqttgen's schema. Each problem is printed
on its own line as file:line:col: field: what is wrong and the fix. Warnings do
not fail the check. Exit status: 0 valid, 1 not.`,
		Example: `  mqttgen vet                 # the home in this folder
  mqttgen vet home.cue`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, diags := schema.Load(pathArg(args))
			if diags.Errors() > 0 {
				return diags
			}
			printWarnings(cmd.ErrOrStderr(), diags)
			return nil
		},
	}
}
