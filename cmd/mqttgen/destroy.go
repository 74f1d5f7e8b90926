package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/schema"
)

func newDestroyCmd(g *globals) *cobra.Command {
	var autoApprove, asJSON, volumes bool
	var site string
	cmd := &cobra.Command{
		Use:   "destroy [PATH]",
		Short: "Remove the project's containers and network from the Docker engine (or its objects from the cluster)",
		Long: `destroy removes the containers and the network of the home's project
(deploy.project) from the Docker engine. The named volumes, which hold the
broker's persisted messages and logs, are kept unless --volumes is given.
It shows what it will remove and asks; only "yes" proceeds, and --auto-approve
skips the question.

With deploy.target "kubernetes" it removes the project's objects from the
cluster (found by mqttgen's labels); the broker's PersistentVolumeClaims, and
the namespace holding them, are kept unless --volumes is given.`,
		Example: `  mqttgen destroy
  mqttgen destroy --volumes --auto-approve`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// Ctrl-C stops at the current step, after its rollback.
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			if asJSON && !autoApprove {
				return errors.New("--json needs --auto-approve: there is no one to answer the question")
			}
			h, err := g.open(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if h.Config.Deploy.Target == schema.TargetKubernetes {
				if asJSON {
					return errors.New(`deploy.target is "kubernetes": destroy --json is for the Docker engine`)
				}
				return destroyKube(cmd, h, autoApprove, volumes)
			}
			if err := dockerTarget(h); err != nil {
				return err
			}
			h, cli, _, err := siteEngine(ctx, h, site)
			if err != nil {
				return err
			}
			defer cli.Close()
			o, err := deploy.Observe(ctx, cli, h.Config.Deploy.Project, nil)
			if err != nil {
				return err
			}
			p := deploy.PlanDestroy(o, volumes)
			w := cmd.OutOrStdout()
			enc := json.NewEncoder(w)
			if asJSON {
				enc.Encode(map[string]any{"type": "plan", "plan": p})
			} else if err := p.WriteText(w); err != nil {
				return err
			}
			if p.Empty() {
				return nil
			}
			if !autoApprove && !confirm(cmd, "destroy these resources") {
				fmt.Fprintln(w, "Destroy cancelled.")
				return exitError(1)
			}
			if err := deploy.Destroy(ctx, cli, o, p, deploy.Options{Events: eventPrinter(w, asJSON)}); err != nil {
				if asJSON {
					enc.Encode(map[string]any{"type": "error", "error": err.Error()})
					return exitError(1)
				}
				return err
			}
			_, _, destroyed := p.Summary()
			if asJSON {
				enc.Encode(map[string]any{"type": "destroy_complete", "destroy": destroyed})
			} else {
				fmt.Fprintf(w, "\nDestroy complete! Resources: %d destroyed.", destroyed)
				if !volumes && len(o.Volumes) > 0 {
					fmt.Fprintf(w, " Kept %d volumes (--volumes removes them).", len(o.Volumes))
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "skip the question")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan and each step as JSON lines")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "also remove the named volumes (persisted messages, logs)")
	siteFlag(cmd, &site, "destroy")
	return cmd
}
