// Package deploy converges a home's broker on a Docker engine, in the way
// docker compose does: observe what runs under the project's labels, compare
// it with what home.cue asks for in a pure reconcile that makes a plan of
// operations, each with its reason, show the plan, then execute it.
//
// Unlike compose, it knows Mosquitto: a change of passwd, acl, certificates
// or of the options Mosquitto reloads is applied in place and signalled with
// SIGHUP (after checking the acl, since Mosquitto 2.0 fails open on a bad
// one); other changes replace the container, keeping the named volumes. Every
// change is verified by an authenticated MQTT connection and rolled back when
// the broker does not serve it.
//
// Restoring an archive (restore.go: PlanRestore, Restore, FromHomeRestoring)
// is deploy's too, while package backup owns the archive itself (making,
// verifying, redacting, completing its config for a restore). A restore is
// one more convergence of the broker: it creates what is missing from
// home.cue (network, volumes, image, container), copies files into the
// container, starts it, proves it serves with the same readiness checks,
// writes the previous tree back when it does not, and reports through the
// same events and plan vocabulary (Op, FileChange). Moved beside backup, all
// of these executor steps would have to become deploy's public API, and a
// second package would speak to the engine for the broker's lifecycle; kept
// here, backup needs nothing of deploy and deploy uses backup's public API.
package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
)

// brokerUID owns the broker's files: user mosquitto of eclipse-mosquitto.
const brokerUID = 1883

// Input is what deploy needs of a home.
type Input struct {
	Config *schema.Config
	// Files are the rendered files of the container layout (workspace
	// Render); those under config/ go into the broker's config folder.
	Files []generators.File
	// ExporterPassword is the password of monitoring.prometheus.user.
	ExporterPassword string
	// Probe is the login that checks that the broker serves: a user or
	// device and its password; empty to connect anonymously.
	Probe Credentials
	// WorkingDir is the home's folder, for compose's working_dir label.
	WorkingDir string
	// Now is when Files were rendered: a deployed certificate is shown as
	// due for renewal against it. Zero leaves that reason out.
	Now time.Time
	// Backup is where apply keeps the backup it takes before it replaces
	// the broker; nil takes none.
	Backup *BackupTarget
	// Build is the mqttgen binary the bundled broker's image is built from
	// (see InspectBinary); required with broker.engine "mqttgen".
	Build *Build
}

// BackupTarget is a home's backup folder and retention.
type BackupTarget struct {
	Dir  string `json:"dir"`
	Keep int    `json:"keep"`
	// StateDir is the state directory, whose certificates go into backups.
	StateDir string `json:"state_dir,omitempty"`
}

// Credentials are an MQTT login.
type Credentials struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// Desired is the state home.cue asks for.
type Desired struct {
	Project    string     `json:"project"`
	WorkingDir string     `json:"working_dir,omitempty"`
	Network    Resource   `json:"network"`
	Volumes    []Resource `json:"volumes"`
	Services   []Service  `json:"services"`
	Probe      Probe      `json:"probe"`
	// Now is when the files were rendered (see Input).
	Now time.Time `json:"now,omitzero"`
	// Backup is taken before a replacement of the broker (see Input).
	Backup *BackupTarget `json:"backup,omitempty"`
}

// Resource is a network or volume: its key in the compose file and its name.
type Resource struct {
	Key  string `json:"key"`
	Name string `json:"name"`
}

// Service is one container of the project.
type Service struct {
	Name string `json:"name"`
	Spec Spec   `json:"spec"`
	Hash string `json:"hash"`
	// ConfigDir is where Files go in the container; empty when none.
	ConfigDir string            `json:"config_dir,omitempty"`
	Files     []generators.File `json:"files,omitempty"`
	// Reload says the service re-reads its files on SIGHUP (the broker).
	Reload bool `json:"reload,omitempty"`
	// Build says apply builds the image itself, FROM scratch, from a mqttgen
	// binary (broker.engine "mqttgen"); nil for an image to pull.
	Build *Build `json:"build,omitempty"`
}

// Engine is the broker engine of the service (its io.mqttgen.engine
// label): mosquitto, mqttgen, or "" for another service.
func (s *Service) Engine() string { return s.Spec.Labels[generators.LabelEngine] }

// Spec is everything a container is created from besides its files. A
// change of any of it replaces the container.
type Spec struct {
	Image       string            `json:"image"`
	Entrypoint  []string          `json:"entrypoint,omitempty"`
	Cmd         []string          `json:"cmd,omitempty"`
	Env         []string          `json:"env,omitempty"`
	Ports       []Port            `json:"ports,omitempty"`
	Mounts      []Mount           `json:"mounts,omitempty"`
	Restart     string            `json:"restart,omitempty"`
	Healthcheck *Health           `json:"healthcheck,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Network     string            `json:"network"`
	Aliases     []string          `json:"aliases,omitempty"`
}

// Port publishes a container port.
type Port struct {
	HostIP    string `json:"host_ip,omitempty"`
	Published int    `json:"published"`
	Target    int    `json:"target"`
	Protocol  string `json:"protocol"`
}

func (p Port) String() string {
	s := fmt.Sprintf("%d:%d/%s", p.Published, p.Target, p.Protocol)
	if p.HostIP != "" {
		s = p.HostIP + ":" + s
	}
	return s
}

// Mount is a named volume in the container.
type Mount struct {
	Volume   string `json:"volume"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

func (m Mount) String() string {
	s := m.Volume + ":" + m.Target
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

// Health is the container's healthcheck.
type Health struct {
	Test        []string      `json:"test,omitempty"`
	Interval    time.Duration `json:"interval,omitempty"`
	Timeout     time.Duration `json:"timeout,omitempty"`
	StartPeriod time.Duration `json:"start_period,omitempty"`
	Retries     int           `json:"retries,omitempty"`
}

// Probe is the login that checks that the broker serves.
type Probe struct {
	Credentials Credentials `json:"credentials"`
}

// NewDesired builds the desired state: docker-compose.yml as
// generators.Compose renders it, loaded back with compose-go exactly as
// `docker compose` loads it, plus the rendered files. The one difference from
// the file is the config folder: compose bind-mounts ./config, while apply
// copies the files into the container through the API, owned by the broker's
// user (1883) and with their modes, which needs no root on this host.
func NewDesired(in Input) (*Desired, error) {
	cfg := in.Config
	if cfg.Broker.Engine == schema.EngineMqttgen && in.Build == nil {
		return nil, fmt.Errorf(`broker.engine "mqttgen": no mqttgen binary to build the bundled broker's image from`)
	}
	var configFiles []generators.File
	for _, f := range in.Files {
		if rel, ok := strings.CutPrefix(f.Path, "config/"); ok {
			configFiles = append(configFiles, generators.File{Path: rel, Mode: f.Mode, Data: f.Data})
		}
	}
	if len(configFiles) == 0 {
		return nil, fmt.Errorf("no rendered files under config/: render the home first")
	}
	project, err := LoadCompose(cfg, in.Files)
	if err != nil {
		return nil, err
	}
	d := &Desired{Project: project.Name, WorkingDir: in.WorkingDir, Now: in.Now, Backup: in.Backup}
	d.Network = Resource{Key: generators.NetworkKey, Name: networkName(project, generators.NetworkKey)}
	for _, key := range slices.Sorted(maps.Keys(project.Volumes)) {
		d.Volumes = append(d.Volumes, Resource{Key: key, Name: volumeName(project, key)})
	}
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		svc, err := serviceOf(project, project.Services[name])
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		switch name {
		case generators.BrokerService:
			svc.Files = configFiles
			svc.Reload = true
			if cfg.Broker.Engine == schema.EngineMqttgen {
				svc.Build = in.Build
			}
		case generators.ExporterService:
			// mqttgen's own exporter, from the bundled broker's image; its
			// password is a file written into the container before it
			// starts (compose's secret), never its environment.
			if in.ExporterPassword == "" {
				return nil, fmt.Errorf("service exporter: no password for %s", cfg.Monitoring.Prometheus.User)
			}
			if in.Build == nil {
				return nil, fmt.Errorf("service exporter: no mqttgen binary to build the exporter's image from")
			}
			pw, err := generators.ExporterPassword(cfg, in.ExporterPassword)
			if err != nil {
				return nil, err
			}
			svc.ConfigDir = generators.ExporterSecretDir
			svc.Files = []generators.File{{Path: generators.ExporterSecret, Mode: pw.Mode, Data: pw.Data}}
			svc.Build = in.Build
		}
		svc.Hash = svc.Spec.hash()
		d.Services = append(d.Services, svc)
	}
	d.Probe = Probe{Credentials: in.Probe}
	return d, nil
}

// LoadCompose renders docker-compose.yml for the home and loads it with
// compose-go, as `docker compose` would in the output folder.
func LoadCompose(cfg *schema.Config, files []generators.File) (*types.Project, error) {
	var yml []byte
	for _, f := range generators.Compose(cfg, files) {
		if f.Path == generators.ComposePath {
			yml = f.Data
		}
	}
	details := types.ConfigDetails{
		WorkingDir:  "/",
		ConfigFiles: []types.ConfigFile{{Filename: generators.ComposePath, Content: yml}},
		Environment: types.Mapping{"COMPOSE_PROJECT_NAME": cfg.Deploy.Project},
	}
	p, err := loader.LoadWithContext(context.Background(), details, func(o *loader.Options) {
		o.SetProjectName(cfg.Deploy.Project, true)
		o.SkipResolveEnvironment = true // env_file holds a secret deploy gets itself
		o.ResolvePaths = false
	})
	if err != nil {
		return nil, fmt.Errorf("docker-compose.yml: %w", err)
	}
	return p, nil
}

func networkName(p *types.Project, key string) string {
	if n := p.Networks[key].Name; n != "" {
		return n
	}
	return engine.ResourceName(p.Name, key)
}

func volumeName(p *types.Project, key string) string {
	if n := p.Volumes[key].Name; n != "" {
		return n
	}
	return engine.ResourceName(p.Name, key)
}

// serviceOf turns a compose service into a Spec, refusing what deploy does
// not implement rather than ignoring it.
func serviceOf(p *types.Project, s types.ServiceConfig) (Service, error) {
	svc := Service{Name: s.Name}
	sp := Spec{Image: s.Image, Entrypoint: s.Entrypoint, Cmd: s.Command, Restart: s.Restart, Labels: map[string]string{}}
	for k, v := range s.Labels {
		sp.Labels[k] = v
	}
	for k, v := range s.Environment {
		if v == nil {
			continue
		}
		sp.Env = append(sp.Env, k+"="+*v)
	}
	slices.Sort(sp.Env)
	for _, pc := range s.Ports {
		published, err := strconv.Atoi(pc.Published)
		if err != nil {
			return svc, fmt.Errorf("port %q: only single published ports are supported", pc.Published)
		}
		sp.Ports = append(sp.Ports, Port{HostIP: pc.HostIP, Published: published, Target: int(pc.Target), Protocol: pc.Protocol})
	}
	for _, v := range s.Volumes {
		switch v.Type {
		case types.VolumeTypeVolume:
			sp.Mounts = append(sp.Mounts, Mount{Volume: volumeName(p, v.Source), Target: v.Target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeBind:
			if path.Clean(v.Source) != "config" && path.Base(v.Source) != "config" {
				return svc, fmt.Errorf("bind mount %s: only ./config is supported", v.Source)
			}
			svc.ConfigDir = v.Target
		default:
			return svc, fmt.Errorf("volume type %s is not supported", v.Type)
		}
	}
	if h := s.HealthCheck; h != nil && !h.Disable {
		hc := &Health{Test: h.Test}
		if h.Interval != nil {
			hc.Interval = time.Duration(*h.Interval)
		}
		if h.Timeout != nil {
			hc.Timeout = time.Duration(*h.Timeout)
		}
		if h.StartPeriod != nil {
			hc.StartPeriod = time.Duration(*h.StartPeriod)
		}
		if h.Retries != nil {
			hc.Retries = int(*h.Retries)
		}
		sp.Healthcheck = hc
	} else if h != nil {
		sp.Healthcheck = &Health{Test: []string{"NONE"}}
	}
	nets := slices.Sorted(maps.Keys(s.Networks))
	if len(nets) != 1 {
		return svc, fmt.Errorf("want one network, not %d", len(nets))
	}
	sp.Network = networkName(p, nets[0])
	sp.Aliases = []string{s.Name}
	svc.Spec = sp
	return svc, nil
}

// label is the spec as the io.mqttgen.spec label carries it: secret
// environment values (the exporter's password) as their digest, as plan
// shows them. Labels travel to cAdvisor, Prometheus service discovery and
// Portainer; the spec-hash label still tells a changed secret.
func (s Spec) label() Spec {
	s.Env = redactEnv(s.Env)
	return s
}

func (s Spec) hash() string {
	data, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Service returns the desired service of that name, or nil.
func (d *Desired) Service(name string) *Service {
	for i := range d.Services {
		if d.Services[i].Name == name {
			return &d.Services[i]
		}
	}
	return nil
}
