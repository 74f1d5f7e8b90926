// Package engine is mqttgen's one speaker of the Docker Engine API: it
// connects (DOCKER_HOST and the TLS variables, as the docker CLI; a site's
// engine by unix://, tcp:// with TLS files, or ssh:// through the docker
// CLI's connection helper), knows
// every label mqttgen and docker compose put on what they create, the names
// of containers and volumes, finds a project's services, reads and writes
// files in containers (one tar reader, one tar writer), sends signals,
// reads logs and builds images. deploy, backup and status speak to the
// engine through it; it knows nothing of home.cue nor of Mosquitto.
package engine

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/moby/moby/client"
)

// Connect returns a client of the Docker engine named by the environment,
// as the docker CLI reads it: DOCKER_HOST (default the local socket),
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, DOCKER_API_VERSION. Without
// DOCKER_API_VERSION the client negotiates the version with the engine, so
// older engines work. It pings the engine, so that a missing engine is
// reported here and not halfway through a plan.
func Connect(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		host := os.Getenv(client.EnvOverrideHost)
		if host == "" {
			host = client.DefaultDockerHost
		}
		return nil, fmt.Errorf("no Docker engine answers at %s (set DOCKER_HOST to reach another): %w", host, err)
	}
	return cli, nil
}

// PublishHost is the address this host reaches the engine's published
// ports at: the engine's host for a tcp:// engine, else 127.0.0.1.
func PublishHost(cli *client.Client) string {
	u, err := url.Parse(cli.DaemonHost())
	if err == nil && (u.Scheme == "tcp" || u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != "" {
		return u.Hostname()
	}
	return "127.0.0.1"
}
