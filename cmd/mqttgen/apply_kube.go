package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/workspace"
)

// applyKube is apply for deploy.target "kubernetes": the plan (as plan
// shows it), the question, server-side apply of what changes, then the
// wait for the StatefulSet's rollout and a login through the Service; when
// the broker does not come up in time the previous objects are applied
// again.
func applyKube(cmd *cobra.Command, h *workspace.Home, autoApprove, wait bool, timeout time.Duration) error {
	d, err := kubeDesired(h)
	if err != nil {
		return err
	}
	cfg, a, err := kubeCluster(h)
	if err != nil {
		return err
	}
	if !cmd.Flags().Changed("timeout") {
		// A new pod may pull its image first.
		timeout = 5 * time.Minute
	}
	ctx := cmd.Context()
	var cred deploy.Credentials
	if wait {
		if cred, err = deploy.ProbeCredentials(h); err != nil {
			return err
		}
	}
	o, err := a.Observe(ctx, d.Project, d)
	if err != nil {
		return err
	}
	p := kube.Reconcile(d, o)
	w := cmd.OutOrStdout()
	if err := p.WriteText(w); err != nil {
		return err
	}
	if p.Empty() {
		return nil
	}
	if !autoApprove && !confirm(cmd, "perform these actions on "+cfg.Host) {
		fmt.Fprintln(w, "Apply cancelled.")
		return exitError(1)
	}
	err = a.Execute(ctx, d, o, p, func(l string) { fmt.Fprintln(w, l) })
	if err == nil && wait {
		fmt.Fprintf(w, "Waiting up to %s for the broker to roll out...\n", timeout)
		err = a.WaitRollout(ctx, d, timeout)
		if err == nil {
			var said string
			if said, err = a.WaitLogin(ctx, d, cred, timeout); err == nil {
				fmt.Fprintf(w, "Rolled out; %s.\n", said)
			}
		}
	}
	if err != nil {
		// The previous objects come back even when the wait was cut short.
		n, rerr := a.Rollback(context.WithoutCancel(ctx), o, p)
		if rerr != nil {
			return fmt.Errorf("%v; rolling back failed too after %d objects: %v (mqttgen plan shows where the cluster stands)", err, n, rerr)
		}
		return fmt.Errorf("%v; rolled back: the %d objects it changed are as they were before", err, n)
	}
	add, change, destroy := p.Summary()
	how := "rolled out"
	if !wait {
		how = "not waiting for the broker"
	}
	fmt.Fprintf(w, "\nApply complete! Resources: %d added, %d changed, %d destroyed (%s, %s).\n", add, change, destroy, cfg.Host, how)
	return nil
}

var errKubeJSON = errors.New(`deploy.target is "kubernetes": --json and saved plans are for the Docker engine; "mqttgen plan --json" shows a cluster's plan`)
