package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/workspace"
)

// Site is one site of a home with sites (or the home itself, Name ""),
// converged on its own engine: what it asks for, what runs there, the plan
// between them; or why the engine could not be reached.
type Site struct {
	Name string
	// Endpoint is the site's engine (sites: NAME: docker_host); zero for a
	// home without sites, whose engine the environment names.
	Endpoint engine.Endpoint
	// Hostname is how this host reaches the site's published ports.
	Hostname string
	Hub      bool
	Home     *workspace.Home
	Desired  *Desired
	Cli      *client.Client
	Observed *Observed
	Plan     *Plan
	// Err says why the site is skipped: its engine did not answer, or
	// observing it failed.
	Err error
}

// EngineName is how plan names the site's engine.
func (s *Site) EngineName() string {
	if s.Endpoint.Host == "" {
		return "the engine of DOCKER_HOST"
	}
	return s.Endpoint.Host
}

// SitesFromHome renders every site of h (only the one named, when only is
// not "") and builds what each asks for, the hub first. A home without
// sites gives one Site, "", on the environment's engine.
func SitesFromHome(h *workspace.Home, only string, now time.Time) ([]*Site, error) {
	if only != "" {
		if !h.Config.HasSites() {
			return nil, fmt.Errorf("--site %s: the home declares no sites", only)
		}
		if _, ok := h.Config.Sites[only]; !ok {
			return nil, fmt.Errorf("--site %s: no such site; the home's sites are %s", only, strings.Join(h.Config.SiteNames(), ", "))
		}
	}
	var out []*Site
	for _, name := range h.Sites() {
		if only != "" && name != only {
			continue
		}
		v, err := h.Site(name)
		if err != nil {
			return nil, err
		}
		d, err := FromHome(v, now)
		if err != nil {
			if name == "" {
				return nil, err
			}
			return nil, fmt.Errorf("site %s: %w", name, err)
		}
		s := &Site{Name: name, Home: v, Desired: d}
		if name != "" {
			sc := h.Config.Sites[name]
			s.Endpoint = engine.Endpoint{Host: sc.DockerHost, CertPath: sc.DockerCertPath}
			if s.Endpoint.CertPath != "" && !filepath.IsAbs(s.Endpoint.CertPath) {
				s.Endpoint.CertPath = filepath.Join(h.Dir, s.Endpoint.CertPath)
			}
			s.Hostname, s.Hub = sc.Hostname, sc.Hub
		}
		out = append(out, s)
	}
	return out, nil
}

// ConnectSites connects to each site's engine, observes its project and
// makes its plan. A site whose engine does not answer keeps its Err and
// no plan: the others go on. The caller closes the clients (CloseSites).
func ConnectSites(ctx context.Context, sites []*Site) {
	for _, s := range sites {
		var err error
		if s.Name == "" {
			s.Cli, err = engine.Connect(ctx)
		} else {
			s.Cli, err = engine.ConnectEndpoint(ctx, s.Endpoint)
		}
		if err != nil {
			s.Err = err
			continue
		}
		s.Observed, err = Observe(ctx, s.Cli, s.Desired.Project, s.Desired)
		if err != nil {
			s.Err = err
			continue
		}
		s.Plan = Reconcile(s.Desired, s.Observed)
	}
}

// CloseSites closes the sites' engine clients.
func CloseSites(sites []*Site) {
	for _, s := range sites {
		if s.Cli != nil {
			s.Cli.Close()
		}
	}
}

// WriteSitesText writes one plan with a section per site, each naming its
// engine, and the total.
func WriteSitesText(w io.Writer, sites []*Site) error {
	var add, change, destroy int
	for i, s := range sites {
		if i > 0 {
			fmt.Fprintln(w)
		}
		role := "satellite"
		if s.Hub {
			role = "hub"
		}
		fmt.Fprintf(w, "## site %s (%s) on %s\n\n", s.Name, role, s.EngineName())
		if s.Err != nil {
			fmt.Fprintf(w, "Skipped: %v\n", s.Err)
			continue
		}
		if err := s.Plan.WriteText(w); err != nil {
			return err
		}
		a, c, d := s.Plan.Summary()
		add, change, destroy = add+a, change+c, destroy+d
	}
	fmt.Fprintf(w, "\nAll sites: %d to add, %d to change, %d to destroy.", add, change, destroy)
	if n := SkippedSites(sites); n > 0 {
		fmt.Fprintf(w, " %d site(s) skipped: their engine did not answer.", n)
	}
	fmt.Fprintln(w)
	return nil
}

// SkippedSites counts the sites whose engine could not be reached.
func SkippedSites(sites []*Site) int {
	n := 0
	for _, s := range sites {
		if s.Err != nil {
			n++
		}
	}
	return n
}

// SitesEmpty reports whether no reachable site has anything to do.
func SitesEmpty(sites []*Site) bool {
	for _, s := range sites {
		if s.Err == nil && !s.Plan.Empty() {
			return false
		}
	}
	return true
}

// SiteError is the outcome of an apply across sites that did not converge
// every site: each failed or skipped site and why.
type SiteError struct {
	Failed map[string]error
	Order  []string
}

func (e *SiteError) Error() string {
	var lines []string
	for _, name := range e.Order {
		lines = append(lines, fmt.Sprintf("site %s: %v", name, e.Failed[name]))
	}
	return strings.Join(lines, "\n")
}

// ApplySites converges the sites in order, the hub first, each with its
// own plan, engine and readiness check (its broker must accept a login on
// every listener at the site's hostname). A site that was skipped or fails
// is reported and the others still converge; the error names them all.
func ApplySites(ctx context.Context, sites []*Site, opts Options) error {
	e := &SiteError{Failed: map[string]error{}}
	fail := func(name string, err error) {
		e.Failed[name] = err
		e.Order = append(e.Order, name)
	}
	for _, s := range sites {
		if s.Err != nil {
			fail(s.Name, s.Err)
			continue
		}
		if s.Plan.Empty() {
			continue
		}
		o := opts
		if s.Hostname != "" {
			o.PublishHost = s.Hostname
		}
		if events := opts.Events; events != nil && s.Name != "" {
			name := s.Name
			o.Events = func(ev Event) {
				ev.Resource = "site " + name + ": " + ev.Resource
				events(ev)
			}
		}
		if err := Apply(ctx, s.Cli, s.Desired, s.Observed, s.Plan, o); err != nil {
			fail(s.Name, err)
			if errors.Is(err, ErrInterrupted) || ctx.Err() != nil {
				break
			}
		}
	}
	if len(e.Order) > 0 {
		return e
	}
	return nil
}
