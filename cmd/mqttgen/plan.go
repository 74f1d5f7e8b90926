package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

func newPlanCmd(g *globals) *cobra.Command {
	var detailed, asJSON bool
	var out, site string
	cmd := &cobra.Command{
		Use:   "plan [PATH]",
		Short: "Show what apply would change on the Docker engine (or the cluster)",
		Long: `plan renders the home at PATH, reads what runs on the Docker engine under the
project's compose labels (deploy.project), and prints the operations that would
make it match home.cue, each with its reason, in Terraform's notation:

  +    create
  ~    update in-place: write the changed files, then SIGHUP (Mosquitto reloads
       passwd, acl, certificates and some options; clients stay connected)
  -/+  replace the container (image, ports, listener or bridge options changed);
       the named volumes, and the messages persisted in them, are kept
  -    destroy what home.cue no longer declares

Changed files are shown as unified diffs with password hashes, bridge passwords
and private keys redacted. The engine is the one DOCKER_HOST names (default the
local socket), with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as docker reads them.

With -o FILE the plan is saved (mode 0600); "mqttgen apply FILE" then performs
exactly it, and refuses it once the engine or the home changed. The file holds
no secret: the plan as shown, the home's and state directory's paths, and a
fingerprint of what the home renders to; apply renders the home again, reading
its secrets anew. Keep plans as *.plan in the home's folder: init's .gitignore
keeps them out of git.

With deploy.target "kubernetes" plan reads the objects of the project in the
cluster of the kubeconfig ($KUBECONFIG or ~/.kube/config, context
deploy.kubernetes.kube_context) by mqttgen's labels, has the API server dry-run
the server-side apply of each manifest, and shows the same notation: ~ when
only the Secret or ConfigMap change (the pod sees the new files and the broker
reloads them), -/+ when the StatefulSet's pod template changes (the pod is
replaced, its volume kept), - for objects of the project home.cue no longer
renders.`,
		Example: `  mqttgen plan
  mqttgen plan --detailed-exitcode; echo $?   # 0 no changes, 1 error, 2 changes
  mqttgen plan -o home.plan && mqttgen apply home.plan`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// plan writes nothing (what is missing is made in memory), so it
			// takes no lock; a saved plan keeps what it shows, and locks.
			open := g.openRead
			if out != "" {
				open = g.open
			}
			h, err := open(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if h.Config.Deploy.Target == schema.TargetKubernetes {
				return planKube(cmd, h, detailed, asJSON, out)
			}
			if usesSites(h, site) {
				if out != "" {
					return fmt.Errorf("-o: a plan of several sites cannot be saved yet; run mqttgen apply (it shows the plan and asks)")
				}
				if !h.Config.HasSites() {
					return fmt.Errorf("--site %s: the home declares no sites", site)
				}
				return planSites(cmd, h, site, detailed, asJSON)
			}
			d, err := desiredOf(h)
			if err != nil {
				return err
			}
			cli, o, err := deploy.ConnectObserve(ctx, d.Project, d)
			if err != nil {
				return err
			}
			defer cli.Close()
			p := deploy.Reconcile(d, o)
			w := cmd.OutOrStdout()
			needs := deploy.Needs(ctx, cli, d, o, p)
			if err := writePlan(w, p, asJSON); err != nil {
				return err
			}
			// What apply will need from the engine and its host.
			for _, n := range needs {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", n)
			}
			if out != "" {
				home, err := filepath.Abs(pathArg(args))
				if err != nil {
					return err
				}
				if err := deploy.Save(out, p, d, home, h.Secrets.Dir, time.Now()); err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintf(w, "\nSaved the plan to %s. To perform exactly these actions, run:\n    mqttgen apply %s\n", out, out)
				}
			}
			if detailed && !p.Empty() {
				return exitError(2)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when there are no changes, 1 on error, 2 when there are changes")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().StringVarP(&out, "out", "o", "", "save the plan to `FILE` for apply")
	siteFlag(cmd, &site, "plan")
	return cmd
}

// desiredOf renders the home and builds the state it asks for.
func desiredOf(h *workspace.Home) (*deploy.Desired, error) {
	if err := dockerTarget(h); err != nil {
		return nil, err
	}
	return deploy.FromHome(h, time.Now())
}

// eventPrinter prints apply's and destroy's steps as lines, or as JSON.
func eventPrinter(w io.Writer, asJSON bool) func(deploy.Event) {
	if asJSON {
		enc := json.NewEncoder(w)
		return func(e deploy.Event) {
			enc.Encode(struct {
				Type string `json:"type"`
				deploy.Event
			}{"event", e})
		}
	}
	return func(e deploy.Event) {
		if e.Step == "failed" {
			return // the error says it
		}
		fmt.Fprintf(w, "%s: %s\n", e.Resource, e.Message)
	}
}

// confirm asks Terraform's question; only "yes" proceeds.
func confirm(cmd *cobra.Command, what string) bool {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "\nDo you want to %s?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ", what)
	var answer string
	fmt.Fscanln(cmd.InOrStdin(), &answer)
	fmt.Fprintln(w)
	return answer == "yes"
}

// dockerTarget refuses a home that deploys to Kubernetes where the Docker
// engine is driven (plan, apply and destroy branch off before).
func dockerTarget(h *workspace.Home) error {
	if t := h.Config.Deploy.Target; t != schema.TargetDocker {
		return fmt.Errorf(`deploy.target is %q: this drives the Docker engine; for a cluster, run "mqttgen plan" and "mqttgen apply" on the home, or "mqttgen render" and "kubectl apply -k out/kubernetes"`, t)
	}
	return nil
}

// writePlan writes a plan of either target (Docker or Kubernetes, in the
// same notation) as JSON or as text.
func writePlan(w io.Writer, p interface {
	WriteText(io.Writer) error
	WriteJSON(io.Writer) error
}, asJSON bool) error {
	if asJSON {
		return p.WriteJSON(w)
	}
	return p.WriteText(w)
}
