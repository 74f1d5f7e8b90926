package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// ErrNotFound says a project has no container of the service.
var ErrNotFound = errors.New("no container")

// FindService returns the id of the project's container of service, found
// by compose's labels (one-off containers aside; the first container when
// there are several).
func FindService(ctx context.Context, cli *client.Client, project, service string) (string, error) {
	f := client.Filters{}.Add("label", LabelProject+"="+project).Add("label", LabelService+"="+service)
	cl, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return "", fmt.Errorf("list containers: %w", err)
	}
	id := ""
	want := ContainerName(project, service)
	for _, c := range cl.Items {
		if c.Labels[LabelOneoff] == "True" {
			continue
		}
		if id == "" || slices.Contains(c.Names, "/"+want) {
			id = c.ID
		}
	}
	if id == "" {
		return "", ErrNotFound
	}
	return id, nil
}

// Signal sends sig (SIGHUP, SIGUSR1...) to the container's main process.
func Signal(ctx context.Context, cli *client.Client, id, sig string) error {
	_, err := cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: sig})
	return err
}

// Stat reports the size and modification time of a file in a container;
// ok is false when it does not exist.
func Stat(ctx context.Context, cli *client.Client, id, p string) (size int64, mtime time.Time, ok bool, err error) {
	res, err := cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: p})
	if cerrdefs.IsNotFound(err) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, err
	}
	return res.Stat.Size, res.Stat.Mtime, true, nil
}

// Logs reads the last 200 lines the container wrote to stderr since t (all
// for zero t), and to stdout too when stdout is true. Mosquitto's stdout
// is block-buffered under Docker: lines come late and in chunks, so only
// stderr tells what happened after a signal.
func Logs(ctx context.Context, cli *client.Client, id string, t time.Time, stdout bool) (string, error) {
	opts := client.ContainerLogsOptions{ShowStdout: stdout, ShowStderr: true, Tail: "200"}
	if !t.IsZero() {
		opts.Since = strconv.FormatInt(t.Unix(), 10)
	}
	rc, err := cli.ContainerLogs(ctx, id, opts)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var out bytes.Buffer
	_, err = stdcopy.StdCopy(&out, &out, rc)
	return out.String(), err
}
