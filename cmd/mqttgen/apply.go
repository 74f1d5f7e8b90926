package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/schema"
)

func newApplyCmd(g *globals) *cobra.Command {
	var autoApprove, asJSON, wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply [PATH | PLANFILE]",
		Short: "Make the broker on the Docker engine match home.cue",
		Long: `apply shows the plan (see "mqttgen plan") and asks; only "yes" proceeds, and
--auto-approve skips the question. Given a plan file saved by "mqttgen plan -o",
it performs that plan without asking, and refuses it as stale when the project on
the engine changed since.

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

With deploy.target "kubernetes", "apply --auto-approve --wait=false" applies the
manifests render writes under kubernetes/ to the cluster of the kubeconfig
($KUBECONFIG or ~/.kube/config, context deploy.kubernetes.kube_context) with
server-side apply (field manager mqttgen); there is no plan and no wait for a
cluster yet.`,
		Example: `  mqttgen apply
  mqttgen apply --auto-approve --json
  mqttgen plan -o home.plan && mqttgen apply home.plan`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// Ctrl-C stops at the current step, after its rollback.
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := cmd.OutOrStdout()
			var d *deploy.Desired
			var saved *deploy.SavedPlan
			if len(args) == 1 && deploy.IsPlanFile(args[0]) {
				sp, err := deploy.Load(args[0])
				if err != nil {
					return err
				}
				// The home the plan was made from, if it is here (a plan
				// made elsewhere has no home on this machine to protect).
				if _, err := os.Stat(sp.Home); sp.Home != "" && err == nil {
					if err := g.lock(sp.Home, sp.StateDir); err != nil {
						return err
					}
				}
				saved, d = sp, sp.Desired
			} else {
				if asJSON && !autoApprove {
					return errors.New("--json needs --auto-approve (or a saved plan): there is no one to answer the question")
				}
				h, err := g.open(pathArg(args), cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				if h.Config.Deploy.Target == schema.TargetKubernetes {
					return applyKube(cmd, h, autoApprove, wait)
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
			err = deploy.Apply(ctx, cli, d, o, p, deploy.Options{ReadyTimeout: timeout, Events: eventPrinter(w, asJSON)})
			add, change, destroy := p.Summary()
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
	cmd.Flags().BoolVar(&wait, "wait", true, "wait for the broker after each change (deploy.target \"kubernetes\" needs --wait=false for now)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the broker to accept a login after a change")
	return cmd
}
