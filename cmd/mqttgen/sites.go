package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/status"
	"github.com/mqttgen/mqttgen/workspace"
)

// siteFlag adds --site to a command that acts on one site or all.
func siteFlag(cmd *cobra.Command, site *string, what string) {
	cmd.Flags().StringVar(site, "site", "", what+" (a home with sites: the site `NAME` alone)")
}

// usesSites says whether a command goes the sites' way: the home declares
// sites, or --site was given (which a home without sites refuses there).
func usesSites(h *workspace.Home, site string) bool { return h.Config.HasSites() || site != "" }

// planSites prints one plan with a section per site.
func planSites(cmd *cobra.Command, h *workspace.Home, site string, detailed, asJSON bool) error {
	ctx := cmd.Context()
	sites, err := deploy.SitesFromHome(h, site, time.Now())
	if err != nil {
		return err
	}
	deploy.ConnectSites(ctx, sites)
	defer deploy.CloseSites(sites)
	w := cmd.OutOrStdout()
	if asJSON {
		err = writeSitesJSON(cmd, sites, false)
	} else {
		err = deploy.WriteSitesText(w, sites)
	}
	if err != nil {
		return err
	}
	if deploy.SkippedSites(sites) > 0 {
		return exitError(1)
	}
	if detailed && !deploy.SitesEmpty(sites) {
		return exitError(2)
	}
	return nil
}

// writeSitesJSON writes the sites' plans as one JSON document (plan), or
// as one line of apply's JSON lines ({"type": "plan", "sites": [...]}).
func writeSitesJSON(cmd *cobra.Command, sites []*deploy.Site, line bool) error {
	type siteJSON struct {
		Site   string       `json:"site"`
		Hub    bool         `json:"hub"`
		Engine string       `json:"engine"`
		Plan   *deploy.Plan `json:"plan,omitempty"`
		Error  string       `json:"error,omitempty"`
	}
	var out []siteJSON
	for _, s := range sites {
		j := siteJSON{Site: s.Name, Hub: s.Hub, Engine: s.EngineName(), Plan: s.Plan}
		if s.Err != nil {
			j.Error = s.Err.Error()
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	if line {
		return enc.Encode(struct {
			Type  string     `json:"type"`
			Sites []siteJSON `json:"sites"`
		}{"plan", out})
	}
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"sites": out})
}

// applySites shows the plan of every site, asks, and converges the sites,
// the hub first; a site whose engine does not answer is reported and the
// others converge (exit 1).
func applySites(cmd *cobra.Command, h *workspace.Home, site string, autoApprove, asJSON bool, timeout time.Duration) error {
	ctx, interrupted, stop := interruptible(cmd.Context(), cmd.ErrOrStderr())
	defer stop()
	sites, err := deploy.SitesFromHome(h, site, time.Now())
	if err != nil {
		return err
	}
	deploy.ConnectSites(ctx, sites)
	defer deploy.CloseSites(sites)
	w := cmd.OutOrStdout()
	if asJSON {
		if err := writeSitesJSON(cmd, sites, true); err != nil {
			return err
		}
	} else if err := deploy.WriteSitesText(w, sites); err != nil {
		return err
	}
	if deploy.SitesEmpty(sites) {
		if deploy.SkippedSites(sites) > 0 {
			return exitError(1)
		}
		return nil
	}
	if !autoApprove && !confirm(cmd, "perform these actions") {
		fmt.Fprintln(w, "Apply cancelled.")
		return exitError(1)
	}
	err = deploy.ApplySites(ctx, sites, deploy.Options{ReadyTimeout: timeout, Events: eventPrinter(w, asJSON), Checkpoint: applyCheckpoint})
	var add, change, destroy int
	for _, s := range sites {
		if s.Err == nil {
			a, c, d := s.Plan.Summary()
			add, change, destroy = add+a, change+c, destroy+d
		}
	}
	if s := interrupted(); s != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "mqttgen: apply interrupted by %s: %v\n", name(s), err)
		return exitError(signalExit(s))
	}
	if asJSON {
		line := map[string]any{"type": "apply_complete", "add": add, "change": change, "destroy": destroy}
		if err != nil {
			line = map[string]any{"type": "error", "error": err.Error()}
		}
		json.NewEncoder(w).Encode(line)
		if err != nil {
			return exitError(1)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("not every site converged:\n%w", err)
	}
	fmt.Fprintf(w, "\nApply complete on %d site(s)! Resources: %d added, %d changed, %d destroyed.\n", len(sites), add, change, destroy)
	return nil
}

// statusSites reports every site.
func statusSites(cmd *cobra.Command, h *workspace.Home, site string, asJSON bool) error {
	if !h.Config.HasSites() {
		return fmt.Errorf("--site %s: the home declares no sites", site)
	}
	r, err := status.GatherSites(cmd.Context(), h, site, status.Options{})
	if err != nil {
		return err
	}
	return writeStatus(cmd, r, r.Exit, asJSON)
}

// siteEngine is the home a command acts on and its engine: the home and
// the environment's engine without sites; with sites, the view of the site
// --site names and its engine. host is where its published ports are
// reached ("" asks the engine).
func siteEngine(ctx context.Context, h *workspace.Home, site string) (v *workspace.Home, cli *client.Client, host string, err error) {
	if !h.Config.HasSites() {
		if site != "" {
			return nil, nil, "", fmt.Errorf("--site %s: the home declares no sites", site)
		}
		cli, err := engine.Connect(ctx)
		return h, cli, "", err
	}
	if site == "" {
		return nil, nil, "", fmt.Errorf("the home has several sites: name one with --site (%s)", strings.Join(h.Config.SiteNames(), ", "))
	}
	if v, err = h.Site(site); err != nil {
		return nil, nil, "", err
	}
	sc := h.Config.Sites[site]
	ep := engine.Endpoint{Host: sc.DockerHost, CertPath: sc.DockerCertPath}
	if ep.CertPath != "" && !filepath.IsAbs(ep.CertPath) {
		ep.CertPath = filepath.Join(h.Dir, ep.CertPath)
	}
	cli, err = engine.ConnectEndpoint(ctx, ep)
	return v, cli, sc.Hostname, err
}
