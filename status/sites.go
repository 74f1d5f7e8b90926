package status

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/workspace"
)

// SiteReport is the status of one site of a home with sites.
type SiteReport struct {
	Site   string  `json:"site"`
	Hub    bool    `json:"hub"`
	Engine string  `json:"engine"`
	Report *Report `json:"report"`
}

// SitesReport is the status of every site (or of the one --site names).
type SitesReport struct {
	Sites []SiteReport `json:"sites"`
	// Exit is the worst of the sites' exit codes (see Report.Exit).
	Exit int `json:"exit_code"`
}

// GatherSites reports each site on its own engine, the hub first: the
// site's broker, its drift, and from $SYS each bridge's connection state
// (on the hub every satellite's, on a satellite its own: both ends keep
// it) and what the broker holds, a disconnected satellite's queue among
// it. An engine that does not answer is that site's report (exit 4); the
// other sites are still asked.
func GatherSites(ctx context.Context, h *workspace.Home, only string, opts Options) (*SitesReport, error) {
	cfg := h.Config
	out := &SitesReport{}
	for _, name := range cfg.SiteNames() {
		if only != "" && name != only {
			continue
		}
		v, err := h.Site(name)
		if err != nil {
			return nil, err
		}
		sc := cfg.Sites[name]
		ep := engine.Endpoint{Host: sc.DockerHost, CertPath: sc.DockerCertPath}
		if ep.CertPath != "" && !filepath.IsAbs(ep.CertPath) {
			ep.CertPath = filepath.Join(h.Dir, ep.CertPath)
		}
		o := opts
		o.Host = sc.Hostname
		o.Bridges = nil
		for _, sat := range cfg.SiteNames() {
			if sat != cfg.Hub() && (sc.Hub || sat == name) {
				o.Bridges = append(o.Bridges, generators.BridgeClientID(cfg, sat))
			}
		}
		cli, connErr := engine.ConnectEndpoint(ctx, ep)
		r := Gather(ctx, cli, connErr, v, o)
		if cli != nil {
			cli.Close()
		}
		out.Sites = append(out.Sites, SiteReport{Site: name, Hub: sc.Hub, Engine: sc.DockerHost, Report: r})
		out.Exit = max(out.Exit, r.Exit)
	}
	if only != "" && len(out.Sites) == 0 {
		return nil, fmt.Errorf("--site %s: no such site", only)
	}
	return out, nil
}

// WriteText writes each site's report under a heading naming its engine.
func (s *SitesReport) WriteText(w io.Writer) error {
	for i, site := range s.Sites {
		if i > 0 {
			fmt.Fprintln(w)
		}
		role := "satellite"
		if site.Hub {
			role = "hub"
		}
		fmt.Fprintf(w, "## site %s (%s) on %s\n\n", site.Site, role, site.Engine)
		if err := site.Report.WriteText(w); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the reports as one JSON document.
func (s *SitesReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}
