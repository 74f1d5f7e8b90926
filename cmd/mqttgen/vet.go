package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/aclcheck"
	"github.com/mqttgen/mqttgen/workspace"
)

func newVetCmd(g *globals) *cobra.Command {
	var list bool
	c := &cobra.Command{
		Use:   "vet [PATH]",
		Short: "Check a home against the schema",
		Long: `vet checks the home at PATH (a folder of package home .cue files, or one file;
default the working directory) against mqttgen's schema. Each problem is printed
on its own line as file:line:col: field: what is wrong and the fix. It also reads
the certificate and key files the home names and checks that each holds what it
must (a CA file certificates only). Accounts with password: "hash" (imported)
must have their hash in the state directory, in a form the broker reads.
Warnings do not fail the check. Then it decides every expectation (expect:, and
those the presets and devices bring) on the acl the home renders; one that does
not hold is an error at its position, with the rule that decided. --expectations
lists them all with their outcome. Exit status: 0 valid, 1 not.`,
		Example: `  mqttgen vet                 # the home in this folder
  mqttgen vet home.cue
  mqttgen vet --expectations`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := workspace.Open(pathArg(args), g.state)
			if err != nil {
				return err
			}
			problems := home.CheckFiles()
			_, kept := home.KeptHashes()
			if problems = append(problems, kept...); len(problems) > 0 {
				return problems
			}
			printWarnings(cmd.ErrOrStderr(), home.Warnings)
			h := aclcheck.New(home.Config)
			results := h.Evaluate(h.Expectations())
			if list {
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "AS\tACCESS\tTOPIC\tEXPECTED\tHOLDS\tSOURCE")
				for _, r := range results {
					src := r.Source
					if r.BuiltIn {
						src = "built-in: " + src
					}
					if r.Position != "" {
						src = r.Position + " " + src
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.As, r.Access(), r.Topic, allowedWord(r.Allowed), yesNo(r.Holds), src)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if broken := h.Diagnostics(results); len(broken) > 0 {
				return broken
			}
			return nil
		},
	}
	c.Flags().BoolVar(&list, "expectations", false, "list every expectation (the home's and the built-in ones) and whether it holds")
	return c
}

func allowedWord(b bool) string {
	if b {
		return "allowed"
	}
	return "denied"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
