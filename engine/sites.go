package engine

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/cli/cli/connhelper"
	"github.com/moby/moby/client"
)

// SSHConfigEnv names an ssh_config file (ssh -F) that ssh:// engines are
// reached with, instead of the user's ~/.ssh/config: for a host key or an
// identity of their own (the tests' local sshd).
const SSHConfigEnv = "MQTTGEN_SSH_CONFIG"

// Endpoint is a Docker engine a home names (sites: NAME: docker_host).
type Endpoint struct {
	// Host is unix:///PATH, tcp://HOST:PORT or ssh://USER@HOST[:PORT][/SOCKET].
	Host string
	// CertPath is a tcp:// engine's folder of ca.pem, cert.pem and key.pem
	// (DOCKER_CERT_PATH's layout): the engine is verified against ca.pem
	// and this client shows cert.pem.
	CertPath string
}

// ConnectEndpoint returns a client of the engine at e and pings it, as
// Connect does for the environment's engine:
//   - unix:// and tcp:// through the Docker client's own options (TLS from
//     CertPath);
//   - ssh:// through the Docker CLI's connection helper
//     (github.com/docker/cli/cli/connhelper), which runs `ssh USER@HOST
//     docker system dial-stdio` and speaks the API over its stdio, exactly
//     as `docker -H ssh://...` does: the engine's socket is never exposed
//     on the network and ssh's keys, agent and known_hosts apply.
func ConnectEndpoint(ctx context.Context, e Endpoint) (*client.Client, error) {
	opts := []client.Opt{}
	u, err := url.Parse(e.Host)
	if err != nil {
		return nil, fmt.Errorf("engine %s: %w", e.Host, err)
	}
	switch u.Scheme {
	case "unix":
		opts = append(opts, client.WithHost(e.Host))
	case "tcp":
		opts = append(opts, client.WithHost(e.Host))
		if e.CertPath != "" {
			files := make([]string, 3)
			for i, name := range []string{"ca.pem", "cert.pem", "key.pem"} {
				files[i] = filepath.Join(e.CertPath, name)
				if _, err := os.Stat(files[i]); err != nil {
					return nil, fmt.Errorf("engine %s: TLS: %w (docker_cert_path holds ca.pem, cert.pem and key.pem)", e.Host, err)
				}
			}
			opts = append(opts, client.WithTLSClientConfig(files[0], files[1], files[2]), client.WithScheme("https"))
		}
	case "ssh":
		var flags []string
		if cfg := os.Getenv(SSHConfigEnv); cfg != "" {
			flags = append(flags, "-F", cfg)
		}
		helper, err := connhelper.GetConnectionHelperWithSSHOpts(e.Host, flags)
		if err != nil {
			return nil, fmt.Errorf("engine %s: %w", e.Host, err)
		}
		opts = append(opts, client.WithHost(helper.Host), client.WithDialContext(helper.Dialer))
	default:
		return nil, fmt.Errorf("engine %s: scheme %s is not unix, tcp or ssh", e.Host, u.Scheme)
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %s: %w", e.Host, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("no Docker engine answers at %s: %s", e.Host, oneLine(err))
	}
	return cli, nil
}

// oneLine keeps the first line of an error (ssh's stderr can run long).
func oneLine(err error) string {
	s := strings.TrimSpace(err.Error())
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}
