package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// Action is what an operation does to a resource.
type Action string

const (
	Create  Action = "create"
	Update  Action = "update"  // files in place, then SIGHUP
	Replace Action = "replace" // remove and create, volumes kept
	Delete  Action = "delete"
	// RestoreData writes a backup's data and config (mqttgen restore).
	RestoreData Action = "restore"
)

// Kinds of resources.
const (
	KindNetwork   = "network"
	KindVolume    = "volume"
	KindContainer = "container"
)

// Plan is the operations that make the observed state the desired one.
type Plan struct {
	Project string `json:"project"`
	Ops     []Op   `json:"ops"`
	// Fingerprint is the observed state's (see Observed.Fingerprint).
	Fingerprint string `json:"fingerprint"`
}

// Op is one operation on one resource, with its reasons.
type Op struct {
	Action  Action   `json:"action"`
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	Service string   `json:"service,omitempty"`
	Reasons []string `json:"reasons"`
	// Changes of the container's spec, for update and replace.
	Changes []Change `json:"changes,omitempty"`
	// Files deployed, changed or removed.
	Files []FileChange `json:"files,omitempty"`
	// ContainerID is the observed container an update, replace or delete acts on.
	ContainerID string `json:"container_id,omitempty"`
	// BackupDir is where apply writes the backup it takes before it
	// replaces the broker.
	BackupDir string `json:"backup_dir,omitempty"`
}

// Change is one attribute of a container's spec.
type Change struct {
	Attr string `json:"attr"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// FileChange is one file of a service's config folder.
type FileChange struct {
	Path   string `json:"path"`
	Action Action `json:"action"`
	Mode   string `json:"mode,omitempty"`
	// Diff is a unified diff of the file with secrets redacted.
	Diff string `json:"diff,omitempty"`
	// Why says, when the file forces a replacement, why.
	Why string `json:"why,omitempty"`
}

// Summary counts operations as Terraform does: a replacement is one to add
// and one to destroy.
func (p *Plan) Summary() (add, change, destroy int) {
	for _, op := range p.Ops {
		switch op.Action {
		case Create:
			add++
		case Update:
			change++
		case Replace:
			add++
			destroy++
		case Delete:
			destroy++
		}
	}
	return
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Ops) == 0 }

// Reconcile compares the desired state with the observed one and returns
// the operations, in the order apply runs them: obsolete containers first
// (they may hold ports), then networks and volumes, then the services in
// order. It is pure: same inputs, same plan.
func Reconcile(d *Desired, o *Observed) *Plan {
	p := &Plan{Project: d.Project, Fingerprint: o.Fingerprint()}

	byService := map[string][]Container{}
	for _, c := range o.Containers {
		byService[c.Service] = append(byService[c.Service], c)
	}

	// Containers of services home.cue no longer declares, and extra ones.
	for _, c := range o.Containers {
		s := d.Service(c.Service)
		switch {
		case s == nil:
			p.Ops = append(p.Ops, Op{Action: Delete, Kind: KindContainer, Name: c.Name, Service: c.Service, ContainerID: c.ID,
				Reasons: []string{fmt.Sprintf("service %s is no longer in home.cue", orUnknown(c.Service))}})
		case c.Name != engine.ContainerName(d.Project, c.Service) && len(byService[c.Service]) > 1:
			why := fmt.Sprintf("service %s runs one container, %s is extra", c.Service, engine.ContainerName(d.Project, c.Service))
			if c.Name == engine.ContainerName(d.Project, c.Service)+PreviousSuffix {
				why = fmt.Sprintf("it is the broker an apply set aside (stopped, its data written) and was killed before removing; %s took its place, on the same volumes", engine.ContainerName(d.Project, c.Service))
			}
			p.Ops = append(p.Ops, Op{Action: Delete, Kind: KindContainer, Name: c.Name, Service: c.Service, ContainerID: c.ID, Reasons: []string{why}})
		}
	}

	if !slices.ContainsFunc(o.Networks, func(n Resource) bool { return n.Name == d.Network.Name }) {
		p.Ops = append(p.Ops, Op{Action: Create, Kind: KindNetwork, Name: d.Network.Name, Reasons: []string{"the services' network does not exist"}})
	}
	for _, v := range d.Volumes {
		if !slices.ContainsFunc(o.Volumes, func(ov Resource) bool { return ov.Name == v.Name }) {
			p.Ops = append(p.Ops, Op{Action: Create, Kind: KindVolume, Name: v.Name, Reasons: []string{fmt.Sprintf("volume %s does not exist", v.Key)}})
		}
	}

	for _, s := range d.Services {
		p.Ops = append(p.Ops, reconcileService(d, s, o, byService[s.Name])...)
	}

	for _, n := range o.Networks {
		if n.Name != d.Network.Name {
			p.Ops = append(p.Ops, Op{Action: Delete, Kind: KindNetwork, Name: n.Name,
				Reasons: []string{fmt.Sprintf("network %s is no longer in home.cue", orUnknown(n.Key))}})
		}
	}
	// Volumes no longer declared are kept: they hold data. destroy
	// --volumes removes them.
	return p
}

func orUnknown(s string) string {
	if s == "" {
		return "(unnamed)"
	}
	return s
}

func reconcileService(d *Desired, s Service, o *Observed, containers []Container) []Op {
	name := engine.ContainerName(d.Project, s.Name)
	var cur *Container
	for i := range containers {
		if containers[i].Name == name || len(containers) == 1 {
			cur = &containers[i]
		}
	}
	build := buildReason(s, o)
	if cur == nil {
		op := Op{Action: Create, Kind: KindContainer, Name: name, Service: s.Name,
			Reasons: []string{fmt.Sprintf("service %s has no container", s.Name)}}
		op.Changes = specChanges(nil, &s.Spec)
		if s.Build != nil {
			op.Changes = append(op.Changes, Change{Attr: "binary", New: quote("mqttgen " + s.Build.ShortDigest())})
		}
		if build != "" {
			op.Reasons = append(op.Reasons, build)
		}
		op.Files = fileChanges(nil, s.Files)
		return []Op{op}
	}

	op := Op{Kind: KindContainer, Name: cur.Name, Service: s.Name, ContainerID: cur.ID}
	var replace []string
	if why := engineSwitch(cur, &s); why != "" {
		replace = append(replace, why)
	}
	switch {
	case !cur.Managed:
		replace = append(replace, "it was not created by mqttgen (no "+engine.LabelSpecHash+" label)")
	case cur.SpecHash != s.Hash:
		op.Changes = specChanges(cur.Spec, &s.Spec)
		var attrs []string
		for _, c := range op.Changes {
			attrs = append(attrs, c.Attr)
		}
		if len(attrs) == 0 {
			attrs = []string{"its spec"}
		}
		replace = append(replace, strings.Join(attrs, ", ")+" changed, which only a new container can have")
	}
	if id := o.Images[s.Spec.Image]; id != "" && cur.ImageID != "" && id != cur.ImageID && cur.SpecHash == s.Hash {
		replace = append(replace, fmt.Sprintf("image %s now is %s, the container runs %s", s.Spec.Image, engine.ShortID(id), engine.ShortID(cur.ImageID)))
		op.Changes = append(op.Changes, Change{Attr: "image_id", Old: engine.ShortID(cur.ImageID), New: engine.ShortID(id)})
	}
	if build != "" {
		replace = append(replace, build)
		op.Changes = append(op.Changes, Change{Attr: "binary", Old: quote(binaryOf(o, s.Spec.Image)), New: quote("mqttgen " + s.Build.ShortDigest())})
	}
	if cur.Name == name+PreviousSuffix {
		replace = append(replace, fmt.Sprintf("it is the broker an apply set aside (stopped, its data written) and was killed before %s served: a new %s takes its place, on the same volumes", name, name))
	}
	if cur.State != "running" {
		replace = append(replace, "it is "+cur.State+", not running")
	}

	op.Files = fileChanges(cur.Files, s.Files)
	key := conf.TableKey(s.Engine(), fileData(s.Files, "mosquitto.conf"))
	op.Changes = append(op.Changes, packetLimitChange(s.Engine(), fileData(cur.Files, "mosquitto.conf"), fileData(s.Files, "mosquitto.conf"))...)
	var reloadable []string
	for i, f := range op.Files {
		why := ""
		if s.Reload {
			why = fileForcesRestart(key, f.Path, fileData(cur.Files, f.Path), fileData(s.Files, f.Path))
		} else {
			why = "the service does not reload its files"
		}
		if why != "" {
			op.Files[i].Why = why
			replace = append(replace, f.Path+" changed: "+why)
		} else {
			reloadable = append(reloadable, f.Path)
		}
	}

	certs := certificateReasons(cur.Files, s.Files, d.Now)
	switch {
	case len(replace) > 0:
		op.Action = Replace
		op.Reasons = append(replace, certs...)
		if s.Reload && d.Backup != nil {
			op.BackupDir = d.Backup.Dir
		}
		if cur.Name != name {
			op.Name = name
		}
	case len(op.Files) > 0:
		op.Action = Update
		op.Reasons = append(certs, fmt.Sprintf("%s changed, which %s reloads on SIGHUP: clients stay connected", strings.Join(reloadable, ", "), engineName(s.Engine())))
	default:
		return nil
	}
	return []Op{op}
}

// engineName is how plan names a broker engine.
func engineName(engine string) string {
	if engine == "mqttgen" {
		return "the bundled broker"
	}
	return "Mosquitto"
}

// buildReason says why apply builds the service's image (broker.engine
// "mqttgen"), or "" when the image on the engine holds this binary.
func buildReason(s Service, o *Observed) string {
	if s.Build == nil {
		return ""
	}
	img, have := s.Spec.Image, o.ImageBinaries[s.Spec.Image]
	switch {
	case have == s.Build.Digest:
		return ""
	case o.Images[img] == "":
		return fmt.Sprintf("image %s is not on the Docker engine: apply builds it, FROM scratch, from this mqttgen binary (%s)", img, s.Build.ShortDigest())
	case have == "":
		return fmt.Sprintf("image %s was not built by mqttgen (no %s label): apply builds it, FROM scratch, from this mqttgen binary (%s)", img, engine.LabelBinaryDigest, s.Build.ShortDigest())
	}
	return fmt.Sprintf("the mqttgen binary changed: image %s holds sha256 %s, this mqttgen is %s; apply builds the image again", img, short(have), s.Build.ShortDigest())
}

// binaryOf is the binary the image of the engine holds, as plan shows it.
func binaryOf(o *Observed, image string) string {
	if d := o.ImageBinaries[image]; d != "" {
		return "mqttgen sha256 " + short(d)
	}
	return ""
}

func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// engineSwitch says what a change of broker.engine means for the data, or
// "" when the engine stays. The two brokers keep different databases in
// the data volume (conf.Database), neither reading the other's.
func engineSwitch(cur *Container, s *Service) string {
	if cur.Spec == nil || s.Engine() == "" {
		return ""
	}
	from, to := cur.Spec.Labels[generators.LabelEngine], s.Engine()
	if from == "" || from == to {
		return ""
	}
	db := conf.Database(from)
	if db == "" {
		db = "database"
	}
	owner := "Mosquitto's"
	if from == "mqttgen" {
		owner = "the bundled broker's"
	}
	return fmt.Sprintf("broker.engine changes from %s to %s, which only a new container can run: %s does not read %s database (%s), so retained messages, persistent sessions and queued messages do NOT carry over (%s stays in the data volume, as it is now, and is read again after a switch back)",
		from, to, engineName(to), owner, db, db)
}

// fileData is the content of p among files, nil when it is not there.
func fileData(files []generators.File, p string) []byte {
	for _, f := range files {
		if f.Path == p {
			return f.Data
		}
	}
	return nil
}

// fileChanges compares deployed files with desired ones: content and mode.
func fileChanges(old, want []generators.File) []FileChange {
	byPath := map[string]generators.File{}
	for _, f := range old {
		byPath[f.Path] = f
	}
	var out []FileChange
	for _, f := range want {
		o, ok := byPath[f.Path]
		delete(byPath, f.Path)
		switch {
		case !ok:
			out = append(out, FileChange{Path: f.Path, Action: Create, Mode: modeString(f.Mode), Diff: unifiedDiff(f.Path, nil, f.Data)})
		case !bytes.Equal(o.Data, f.Data) || o.Mode != f.Mode:
			fc := FileChange{Path: f.Path, Action: Update, Diff: unifiedDiff(f.Path, o.Data, f.Data)}
			if o.Mode != f.Mode {
				fc.Mode = modeString(o.Mode) + " -> " + modeString(f.Mode)
			}
			out = append(out, fc)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(byPath)) {
		out = append(out, FileChange{Path: p, Action: Delete, Diff: unifiedDiff(p, byPath[p].Data, nil)})
	}
	slices.SortFunc(out, func(a, b FileChange) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// specChanges lists the attributes that differ, as text.
func specChanges(old, want *Spec) []Change {
	var o Spec
	if old != nil {
		o = *old
	}
	w := *want
	var out []Change
	add := func(attr, a, b string) {
		if a != b {
			out = append(out, Change{Attr: attr, Old: a, New: b})
		}
	}
	add("image", quote(o.Image), quote(w.Image))
	add("entrypoint", quoteList(o.Entrypoint), quoteList(w.Entrypoint))
	add("command", quoteList(o.Cmd), quoteList(w.Cmd))
	add("environment", quoteList(redactEnv(o.Env)), quoteList(redactEnv(w.Env)))
	add("ports", quoteList(strs(o.Ports)), quoteList(strs(w.Ports)))
	add("volumes", quoteList(strs(o.Mounts)), quoteList(strs(w.Mounts)))
	add("restart", quote(o.Restart), quote(w.Restart))
	add("healthcheck", healthString(o.Healthcheck), healthString(w.Healthcheck))
	add("labels", labelString(o.Labels), labelString(w.Labels))
	add("network", quote(o.Network), quote(w.Network))
	return out
}

func strs[T fmt.Stringer](list []T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = v.String()
	}
	return out
}

func quoteList(list []string) string {
	if len(list) == 0 {
		return ""
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func quote(s string) string {
	if s == "" {
		return ""
	}
	return fmt.Sprintf("%q", s)
}

// healthString shows the healthcheck's command and interval.
func healthString(h *Health) string {
	switch {
	case h == nil:
		return ""
	case len(h.Test) > 0 && h.Test[0] == "NONE":
		return "disabled"
	case len(h.Test) == 2 && h.Test[0] == "CMD-SHELL":
		return fmt.Sprintf("%q every %s", h.Test[1], h.Interval)
	}
	return fmt.Sprintf("%s every %s", quoteList(h.Test), h.Interval)
}

func labelString(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%q = %q", k, m[k]))
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}
