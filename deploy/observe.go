package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
)

// Observed is what runs on the engine under the project's label.
type Observed struct {
	Project    string      `json:"project"`
	Containers []Container `json:"containers,omitempty"`
	Networks   []Resource  `json:"networks,omitempty"`
	Volumes    []Resource  `json:"volumes,omitempty"`
	// Images maps each desired image to its ID on the engine ("" when the
	// engine does not have it).
	Images map[string]string `json:"images,omitempty"`
	// ImageBinaries maps each desired image that apply built to the digest
	// of the mqttgen binary in it (its engine.LabelBinaryDigest).
	ImageBinaries map[string]string `json:"image_binaries,omitempty"`
}

// Container is one container of the project.
type Container struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Service string `json:"service"`
	Image   string `json:"image"`
	ImageID string `json:"image_id"`
	State   string `json:"state"`
	// SpecHash and Spec are mqttgen's labels; empty on a container mqttgen
	// did not create.
	SpecHash string `json:"spec_hash,omitempty"`
	Spec     *Spec  `json:"spec,omitempty"`
	// ConfigDir and Files are the deployed files, read from the container.
	ConfigDir string            `json:"config_dir,omitempty"`
	Files     []generators.File `json:"files,omitempty"`
	// Managed says mqttgen created the container.
	Managed bool `json:"managed"`
}

// ConnectObserve connects to the engine and observes project. The caller
// closes the client.
func ConnectObserve(ctx context.Context, project string, d *Desired) (*client.Client, *Observed, error) {
	cli, err := engine.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	o, err := Observe(ctx, cli, project, d)
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	return cli, o, nil
}

// Observe lists the project's containers, networks and volumes by compose's
// project label, reads the files deployed in each container that has a
// config folder, and looks up the desired images (d may be nil).
func Observe(ctx context.Context, cli *client.Client, project string, d *Desired) (*Observed, error) {
	o := &Observed{Project: project, Images: map[string]string{}}
	filter := client.Filters{}.Add("label", engine.LabelProject+"="+project)

	cl, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cl.Items {
		if c.Labels[engine.LabelOneoff] == "True" {
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		oc := Container{
			ID:       c.ID,
			Name:     name,
			Service:  c.Labels[engine.LabelService],
			Image:    c.Image,
			ImageID:  c.ImageID,
			State:    string(c.State),
			SpecHash: c.Labels[engine.LabelSpecHash],
			Managed:  c.Labels[engine.LabelSpecHash] != "",
		}
		if js := c.Labels[engine.LabelSpec]; js != "" {
			var sp Spec
			if json.Unmarshal([]byte(js), &sp) == nil {
				oc.Spec = &sp
			}
		}
		oc.ConfigDir = c.Labels[engine.LabelConfigDir]
		if oc.ConfigDir == "" && d != nil {
			// A container compose made from the rendered file has the
			// files bind-mounted where the desired service expects them.
			if s := d.Service(oc.Service); s != nil {
				oc.ConfigDir = s.ConfigDir
			}
		}
		if oc.ConfigDir != "" {
			files, err := readFiles(ctx, cli, c.ID, oc.ConfigDir)
			if err != nil {
				return nil, fmt.Errorf("container %s: read %s: %w", name, oc.ConfigDir, err)
			}
			oc.Files = files
		}
		o.Containers = append(o.Containers, oc)
	}
	slices.SortFunc(o.Containers, func(a, b Container) int { return strings.Compare(a.Name, b.Name) })

	nl, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range nl.Items {
		o.Networks = append(o.Networks, Resource{Key: n.Labels[engine.LabelNetwork], Name: n.Name})
	}
	slices.SortFunc(o.Networks, func(a, b Resource) int { return strings.Compare(a.Name, b.Name) })

	vl, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vl.Items {
		o.Volumes = append(o.Volumes, Resource{Key: v.Labels[engine.LabelVolume], Name: v.Name})
	}
	slices.SortFunc(o.Volumes, func(a, b Resource) int { return strings.Compare(a.Name, b.Name) })

	if d != nil {
		for _, s := range d.Services {
			img, err := cli.ImageInspect(ctx, s.Spec.Image)
			switch {
			case err == nil:
				o.Images[s.Spec.Image] = img.ID
				if img.Config != nil && img.Config.Labels[engine.LabelBinaryDigest] != "" {
					if o.ImageBinaries == nil {
						o.ImageBinaries = map[string]string{}
					}
					o.ImageBinaries[s.Spec.Image] = img.Config.Labels[engine.LabelBinaryDigest]
				}
			case cerrdefs.IsNotFound(err):
				o.Images[s.Spec.Image] = ""
			default:
				return nil, fmt.Errorf("inspect image %s: %w", s.Spec.Image, err)
			}
		}
	}
	return o, nil
}

// readFiles reads the files mqttgen deployed under dir: those its manifest
// lists, or every regular file when there is no manifest.
func readFiles(ctx context.Context, cli *client.Client, id, dir string) ([]generators.File, error) {
	files, _, err := engine.ReadDir(ctx, cli, id, dir)
	if err != nil {
		return nil, err
	}
	var out []generators.File
	for _, f := range engine.Deployed(files) {
		out = append(out, generators.File{Path: f.Path, Mode: f.Mode, Data: f.Data})
	}
	return out, nil
}

// Fingerprint identifies the observed state: a saved plan applies only to
// the state it was made from.
func (o *Observed) Fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "project %s\n", o.Project)
	for _, c := range o.Containers {
		fmt.Fprintf(h, "container %s %s %s %s %s %s\n", c.ID, c.Name, c.Service, c.ImageID, c.State, c.SpecHash)
		for _, f := range c.Files {
			sum := sha256.Sum256(f.Data)
			fmt.Fprintf(h, "  file %s %o %x\n", f.Path, f.Mode, sum)
		}
	}
	for _, n := range o.Networks {
		fmt.Fprintf(h, "network %s %s\n", n.Key, n.Name)
	}
	for _, v := range o.Volumes {
		fmt.Fprintf(h, "volume %s %s\n", v.Key, v.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Images)) {
		fmt.Fprintf(h, "image %s %s\n", k, o.Images[k])
	}
	for _, k := range slices.Sorted(maps.Keys(o.ImageBinaries)) {
		fmt.Fprintf(h, "image binary %s %s\n", k, o.ImageBinaries[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}
