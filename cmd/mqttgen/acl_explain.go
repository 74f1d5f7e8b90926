package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/aclcheck"
)

func newACLExplainCmd() *cobra.Command {
	var read, write, asJSON bool
	var clientID string
	c := &cobra.Command{
		Use:   "explain WHO TOPIC [PATH]",
		Short: "Whether an account may read or write a topic, and the rule that decides",
		Long: `explain decides whether WHO (a user, a device, or "anonymous") may read
(--read, the default) or write (--write) TOPIC, as the broker would, and names
the deciding rule by its line in the rendered acl and its place in home.cue. For
a denial no rule made, it names the rule that came closest and how it misses.
Accounts connect with their name as client id unless --client-id says otherwise
(for patterns with %c). Exit status 0 allowed, 3 denied, 1 on errors.`,
		Example: `  mqttgen acl explain homeassistant home/porch-light/set --write
  mqttgen acl explain anonymous '$SYS/broker/version' --json`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if read && write {
				return fmt.Errorf("--read and --write: ask one at a time")
			}
			h, err := loadACL(pathArg(args[2:]), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			who := aclcheck.Who{Name: args[0], ClientID: clientID}
			if !cmd.Flags().Changed("client-id") && !who.Anonymous() {
				who.ClientID = who.Name
			}
			e, err := h.Explain(who, args[1], write)
			if err != nil {
				return err
			}
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), e)
			} else {
				printExplanation(cmd.OutOrStdout(), e)
			}
			if err == nil && !e.Allowed {
				return exitError(3)
			}
			return err
		},
	}
	c.Flags().BoolVar(&read, "read", false, "may WHO receive messages on TOPIC (the default)")
	c.Flags().BoolVar(&write, "write", false, "may WHO publish to TOPIC")
	c.Flags().StringVar(&clientID, "client-id", "", "the client id WHO connects with (default: its name; none for anonymous)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printExplanation(w io.Writer, e aclcheck.Explanation) {
	verdict := "DENIED"
	if e.Allowed {
		verdict = "ALLOWED"
	}
	as := e.As
	if e.ClientID != "" && e.ClientID != e.As {
		as += " (client id " + e.ClientID + ")"
	}
	fmt.Fprintf(w, "%s: %s %s %s\n", verdict, as, e.Access, e.Topic)
	fmt.Fprintf(w, "  %s\n", e.Why)
	if r := e.Rule; r != nil {
		printRule(w, "rule", r)
	}
	if r := e.Nearest; r != nil {
		printRule(w, "nearest", r)
		fmt.Fprintf(w, "    misses: %s\n", e.NearestWhy)
	}
}

func printRule(w io.Writer, label string, r *aclcheck.Rule) {
	fmt.Fprintf(w, "  %s: %s\n", label, r.Line)
	fmt.Fprintf(w, "    config/acl:%d\n", r.ACLLine)
	src := r.Source
	if r.Preset != "" {
		src += " (preset " + r.Preset + ")"
	}
	if r.Position != "" {
		src = r.Position + ": " + src
	}
	fmt.Fprintf(w, "    %s\n", src)
}
