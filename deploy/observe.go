package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

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
	// of the mqttgen binary in it (its LabelBinaryDigest).
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
	cli, err := Connect(ctx)
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
	filter := client.Filters{}.Add("label", composeProject+"="+project)

	cl, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cl.Items {
		if c.Labels[composeOneoff] == "True" {
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		oc := Container{
			ID:       c.ID,
			Name:     name,
			Service:  c.Labels[composeService],
			Image:    c.Image,
			ImageID:  c.ImageID,
			State:    string(c.State),
			SpecHash: c.Labels[LabelSpecHash],
			Managed:  c.Labels[LabelSpecHash] != "",
		}
		if js := c.Labels[LabelSpec]; js != "" {
			var sp Spec
			if json.Unmarshal([]byte(js), &sp) == nil {
				oc.Spec = &sp
			}
		}
		oc.ConfigDir = c.Labels[LabelConfigDir]
		if oc.ConfigDir == "" && d != nil {
			// A container compose made from the rendered file has the
			// files bind-mounted where the desired service expects them.
			if s := d.service(oc.Service); s != nil {
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
		o.Networks = append(o.Networks, Resource{Key: n.Labels[composeNetwork], Name: n.Name})
	}
	slices.SortFunc(o.Networks, func(a, b Resource) int { return strings.Compare(a.Name, b.Name) })

	vl, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vl.Items {
		o.Volumes = append(o.Volumes, Resource{Key: v.Labels[composeVolume], Name: v.Name})
	}
	slices.SortFunc(o.Volumes, func(a, b Resource) int { return strings.Compare(a.Name, b.Name) })

	if d != nil {
		for _, s := range d.Services {
			img, err := cli.ImageInspect(ctx, s.Spec.Image)
			switch {
			case err == nil:
				o.Images[s.Spec.Image] = img.ID
				if img.Config != nil && img.Config.Labels[LabelBinaryDigest] != "" {
					if o.ImageBinaries == nil {
						o.ImageBinaries = map[string]string{}
					}
					o.ImageBinaries[s.Spec.Image] = img.Config.Labels[LabelBinaryDigest]
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
	res, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: dir})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	defer res.Content.Close()
	all := map[string]generators.File{}
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		// Entries are named <base of dir>/<path>.
		_, rel, ok := strings.Cut(h.Name, "/")
		if !ok {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		all[rel] = generators.File{Path: rel, Mode: fs.FileMode(h.Mode).Perm(), Data: data}
	}
	var out []generators.File
	if m, ok := all[manifestName]; ok {
		sc := bufio.NewScanner(bytes.NewReader(m.Data))
		for sc.Scan() {
			if f, ok := all[sc.Text()]; ok {
				out = append(out, f)
			}
		}
	} else {
		for _, k := range sortedKeys(all) {
			out = append(out, all[k])
		}
	}
	slices.SortFunc(out, func(a, b generators.File) int { return strings.Compare(a.Path, b.Path) })
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
	for _, k := range sortedKeys(o.Images) {
		fmt.Fprintf(h, "image %s %s\n", k, o.Images[k])
	}
	for _, k := range sortedKeys(o.ImageBinaries) {
		fmt.Fprintf(h, "image binary %s %s\n", k, o.ImageBinaries[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// containerNumber reads compose's container number of a name p-s-N.
func containerNumber(name string) int {
	i := strings.LastIndexByte(name, '-')
	n, _ := strconv.Atoi(name[i+1:])
	return n
}
