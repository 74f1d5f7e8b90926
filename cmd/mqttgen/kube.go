package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/workspace"
)

// The Kubernetes target's glue for plan, apply and destroy: the cluster of
// the kubeconfig ($KUBECONFIG or ~/.kube/config; the context of
// deploy.kubernetes.kube_context, else the current one), through client-go.

// kubeCluster connects to the home's cluster.
func kubeCluster(h *workspace.Home) (*rest.Config, *kube.Applier, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{CurrentContext: h.Config.Deploy.Kubernetes.KubeContext}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig: %w", err)
	}
	a, err := kube.NewApplier(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, a, nil
}

// kubeManifests renders the home and its manifests.
func kubeManifests(h *workspace.Home) ([]generators.File, error) {
	files, err := h.Render(workspace.RenderOptions{Now: time.Now()})
	if err != nil {
		return nil, err
	}
	return kube.Manifests(h.Config, files)
}

// kubeDesired is the cluster's desired state: the home's manifests.
func kubeDesired(h *workspace.Home) (*kube.Desired, error) {
	manifests, err := kubeManifests(h)
	if err != nil {
		return nil, err
	}
	return kube.NewDesired(h.Config.Deploy.Project, h.Config.Deploy.Kubernetes.Namespace, manifests)
}

// planKube is plan for deploy.target "kubernetes".
func planKube(cmd *cobra.Command, h *workspace.Home, detailed, asJSON bool, out string) error {
	if out != "" {
		return errors.New(`deploy.target is "kubernetes": a plan is not saved for a cluster (-o); "mqttgen apply" shows it again and asks`)
	}
	d, err := kubeDesired(h)
	if err != nil {
		return err
	}
	_, a, err := kubeCluster(h)
	if err != nil {
		return err
	}
	o, err := a.Observe(cmd.Context(), d.Project, d)
	if err != nil {
		return err
	}
	p := kube.Reconcile(d, o)
	if err := writePlan(cmd.OutOrStdout(), p, asJSON); err != nil {
		return err
	}
	if detailed && !p.Empty() {
		return exitError(2)
	}
	return nil
}

// destroyKube is destroy for deploy.target "kubernetes": the project's
// objects, found by mqttgen's labels; the volume claims (and a namespace
// holding them) are kept unless volumes is set.
func destroyKube(cmd *cobra.Command, h *workspace.Home, autoApprove, volumes bool) error {
	cfg, a, err := kubeCluster(h)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	project := h.Config.Deploy.Project
	o, err := a.Observe(ctx, project, nil)
	if err != nil {
		return err
	}
	p, kept := kube.PlanDestroy(project, h.Config.Deploy.Kubernetes.Namespace, o, volumes)
	w := cmd.OutOrStdout()
	if err := p.WriteText(w); err != nil {
		return err
	}
	if p.Empty() {
		return nil
	}
	if !autoApprove && !confirm(cmd, "destroy these resources on "+cfg.Host) {
		fmt.Fprintln(w, "Destroy cancelled.")
		return exitError(1)
	}
	if err := a.Execute(ctx, &kube.Desired{}, o, p, func(l string) { fmt.Fprintln(w, l) }); err != nil {
		return err
	}
	_, _, destroyed := p.Summary()
	fmt.Fprintf(w, "\nDestroy complete! Resources: %d destroyed.\n", destroyed)
	for _, k := range kept {
		fmt.Fprintf(w, "Kept %s.\n", k)
	}
	return nil
}
