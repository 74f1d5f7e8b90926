package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/workspace"
)

// applyKube applies a kubernetes home's manifests to the cluster of the
// kubeconfig ($KUBECONFIG or ~/.kube/config; the context of
// deploy.kubernetes.kube_context, else the current one) with server-side
// apply. There is no plan for a cluster and no wait for the rollout yet:
// both must be asked for (--auto-approve --wait=false).
func applyKube(cmd *cobra.Command, h *workspace.Home, autoApprove, wait bool) error {
	if wait || !autoApprove {
		return errors.New(`deploy.target is "kubernetes": apply shows no plan and does not wait for the broker on a cluster yet; run "mqttgen apply --auto-approve --wait=false" to apply the manifests without either`)
	}
	files, err := h.Render(workspace.RenderOptions{Now: time.Now()})
	if err != nil {
		return err
	}
	manifests, err := kube.Manifests(h.Config, files)
	if err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{CurrentContext: h.Config.Deploy.Kubernetes.KubeContext}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	a, err := kube.NewApplier(cfg)
	if err != nil {
		return err
	}
	results, err := a.ApplyAll(cmd.Context(), manifests)
	w := cmd.OutOrStdout()
	changed := 0
	for _, r := range results {
		fmt.Fprintln(w, r)
		if r.Changed {
			changed++
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nApplied to %s: %d of %d objects changed (not waiting for the broker).\n", cfg.Host, changed, len(results))
	return nil
}
