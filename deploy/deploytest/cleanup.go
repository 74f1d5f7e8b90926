package deploytest

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
)

// CleanupProject removes, when the test ends, every container, network and
// volume carrying the project's compose label.
func CleanupProject(t testing.TB, cli *client.Client, project string) {
	t.Cleanup(func() { RemoveProject(cli, project) })
}

// RemoveProject removes every container, network and volume carrying the
// project's compose label.
func RemoveProject(cli *client.Client, project string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := client.Filters{}.Add("label", engine.LabelProject+"="+project)
	if cl, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f}); err == nil {
		for _, c := range cl.Items {
			cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
	}
	if nl, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f}); err == nil {
		for _, n := range nl.Items {
			cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
		}
	}
	if vl, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f}); err == nil {
		for _, v := range vl.Items {
			cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
		}
	}
}
