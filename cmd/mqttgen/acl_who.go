package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newACLWhoCmd() *cobra.Command {
	var write, asJSON bool
	var clientID string
	c := &cobra.Command{
		Use:   "who TOPIC [PATH]",
		Short: "Every account that may read (or write) a topic, with the rule",
		Long: `who decides TOPIC for every user and device, and for anonymous clients when a
listener admits them, and lists who may read it (or, with --write, publish to
it) with the deciding rule, then who may not. Accounts connect with their name
as client id; --client-id is the one anonymous clients use.`,
		Example: `  mqttgen acl who home/porch-light/set --write`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := loadACL(pathArg(args[1:]), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			list, err := h.Who(args[0], write, clientID)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCOUNT\tKIND\tACCESS\tRULE\tACL\tHOME.CUE")
			for _, a := range list {
				verdict := "denied"
				if a.Allowed {
					verdict = "allowed"
				}
				rule, line, src := "-", "-", "-"
				if r := a.Rule; r != nil {
					rule, line, src = r.Line, fmt.Sprint(r.ACLLine), r.Source
					if r.Position != "" {
						src = r.Position + " " + src
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.As, a.Kind, verdict, rule, line, src)
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&write, "write", false, "who may publish to TOPIC (default: who may receive it)")
	c.Flags().StringVar(&clientID, "client-id", "", "the client id of anonymous clients")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
