package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

func newApplyCmd(g *globals) *cobra.Command {
	var autoApprove, asJSON, wait bool
	var site string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply [PATH | PLANFILE]",
		Short: "Make the broker on the Docker engine (or the cluster) match home.cue",
		Long: `apply shows the plan (see "mqttgen plan") and asks; only "yes" proceeds, and
--auto-approve skips the question. Given a plan file saved by "mqttgen plan -o",
it renders the plan's home again (reading its secrets anew: the file holds
none), performs that plan without asking, and refuses it as stale when the home
renders to anything else or the project on the engine changed since.

Files are copied into the broker's container through the Docker API, owned by the
broker's user (1883) with their modes (0600 for passwd, acl and keys), so no step
needs root on this host beyond access to the Docker socket. Containers, network
and volumes carry docker compose's labels: "docker compose -p PROJECT ps" and
"logs" show them.

Before any change the acl, passwd and certificates are checked (Mosquitto 2.0
runs without any ACL check when its acl file does not parse at SIGHUP). After each
change apply waits until the broker accepts a login on every listener and serves
the new certificate; if it does not, apply restores the previous files or
container, says so, and exits 1.

With deploy.target "kubernetes" apply shows the cluster's plan (see "mqttgen
plan"), asks, applies what changes with server-side apply (field manager
mqttgen) to the cluster of the kubeconfig ($KUBECONFIG or ~/.kube/config,
context deploy.kubernetes.kube_context), and waits for the StatefulSet to roll
out and for a login through its Service (--timeout each); if either fails, the
objects it changed are applied again as they were, it says so, and exits 1.
--wait=false applies without waiting (a GitOps pipeline, an API server without
nodes).`,
		Example: `  mqttgen apply
  mqttgen apply --auto-approve --json
  mqttgen plan -o home.plan && mqttgen apply home.plan`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// SIGINT and SIGTERM finish or undo the step in progress; a
			// second one is refused while the broker is restored.
			ctx, interrupted, stop := interruptible(cmd.Context(), cmd.ErrOrStderr())
			defer stop()
			w := cmd.OutOrStdout()
			var d *deploy.Desired
			var saved *deploy.SavedPlan
			if len(args) == 1 && deploy.IsPlanFile(args[0]) {
				sp, err := deploy.Load(args[0])
				if err != nil {
					return err
				}
				// A plan holds no secret: the home it was made from is
				// rendered again, its secrets read anew, and must give
				// what the plan was made for.
				if _, err := os.Stat(sp.Home); err != nil {
					return fmt.Errorf("the saved plan was made from the home %s, which is not here (%v): apply reads the home's secrets again, a plan holds none; run mqttgen plan where the home is", sp.Home, err)
				}
				h, err := workspace.Open(sp.Home, sp.StateDir)
				if err != nil {
					return err
				}
				if err := g.lock(h.Dir, h.Secrets.Dir); err != nil {
					return err
				}
				printWarnings(cmd.ErrOrStderr(), h.Warnings)
				if d, err = desiredOf(h); err != nil {
					return err
				}
				if err := sp.Check(d); err != nil {
					return err
				}
				saved = sp
			} else {
				if asJSON && !autoApprove {
					return errors.New("--json needs --auto-approve (or a saved plan): there is no one to answer the question")
				}
				h, err := g.open(pathArg(args), cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				if h.Config.Deploy.Target == schema.TargetKubernetes {
					if asJSON {
						return errKubeJSON
					}
					return applyKube(cmd, h, autoApprove, wait, timeout)
				}
				if usesSites(h, site) {
					if !h.Config.HasSites() {
						return fmt.Errorf("--site %s: the home declares no sites", site)
					}
					return applySites(cmd, h, site, autoApprove, asJSON, timeout)
				}
				if d, err = desiredOf(h); err != nil {
					return err
				}
			}
			cli, o, err := deploy.ConnectObserve(ctx, d.Project, d)
			if err != nil {
				return err
			}
			defer cli.Close()
			var p *deploy.Plan
			if saved != nil {
				if err := saved.CheckFresh(o); err != nil {
					return err
				}
				p = saved.Plan
			} else {
				p = deploy.Reconcile(d, o)
			}

			enc := json.NewEncoder(w)
			if asJSON {
				enc.Encode(map[string]any{"type": "plan", "plan": p})
			} else if saved == nil || p.Empty() {
				if err := p.WriteText(w); err != nil {
					return err
				}
			}
			if p.Empty() {
				return nil
			}
			if saved == nil && !autoApprove && !confirm(cmd, "perform these actions") {
				fmt.Fprintln(w, "Apply cancelled.")
				return exitError(1)
			}
			err = deploy.Apply(ctx, cli, d, o, p, deploy.Options{ReadyTimeout: timeout, Events: eventPrinter(w, asJSON), Checkpoint: applyCheckpoint})
			add, change, destroy := p.Summary()
			if s := interrupted(); s != nil {
				why := "every operation was already past the point of undoing, and is done"
				if err != nil {
					why = err.Error()
				}
				line := fmt.Sprintf("apply interrupted by %s: %s; now %s", name(s), why, deploy.BrokerState(ctx, cli, d.Project))
				if asJSON {
					enc.Encode(map[string]any{"type": "error", "error": line, "interrupted": true})
				} else {
					fmt.Fprintln(cmd.ErrOrStderr(), "mqttgen: "+line)
				}
				return exitError(signalExit(s))
			}
			if err != nil {
				if asJSON {
					enc.Encode(map[string]any{"type": "error", "error": err.Error()})
					return exitError(1)
				}
				return err
			}
			if asJSON {
				enc.Encode(map[string]any{"type": "apply_complete", "add": add, "change": change, "destroy": destroy})
			} else {
				fmt.Fprintf(w, "\nApply complete! Resources: %d added, %d changed, %d destroyed.\n", add, change, destroy)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "skip the question")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan and each step as JSON lines")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait for the broker after each change (deploy.target \"kubernetes\": for the rollout)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the broker to accept a login after a change (on a cluster: to roll out)")
	siteFlag(cmd, &site, "apply")
	return cmd
}
