package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/broker"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/workspace"
)

func newServeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "serve [PATH]",
		Short: "Run the home's broker here, in the foreground, with no Docker",
		Long: `serve renders the home into the state directory (serve/) and runs the bundled
broker on those files in the foreground: a working, authenticated broker in one
command, with no Docker and no Mosquitto. It is the same broker that
broker.engine "mqttgen" deploys, on the same files Mosquitto would read. Stop it
with Ctrl-C; SIGHUP reloads passwords and acl (after a new render or serve).`,
		Example: `  mqttgen serve examples/minimal
  mqttgen secrets bundle admin examples/minimal   # a login for a client`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.open(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out := filepath.Join(h.Secrets.Dir, "serve")
			// Started as root, the broker drops to the broker's user, as
			// Mosquitto does, and reads serve/ as that user: it may pass
			// through the state folder, not list it (its files stay 0600).
			runAs := workspace.LocalRunAs()
			if runAs != "" {
				if err := passable(h.Secrets.Dir); err != nil {
					return err
				}
			}
			opts := workspace.RenderOptions{Local: true, Out: out, Now: time.Now(), KeepUser: runAs == "", Bundled: true}
			files, err := h.Render(opts)
			if err != nil {
				return err
			}
			if err := workspace.Write(out, files, true); err != nil {
				return err
			}
			if runAs != "" {
				// Rendering made the state folder private again.
				if err := passable(h.Secrets.Dir); err != nil {
					return err
				}
			}
			// The files are written: other commands may work on the home
			// while the broker serves them.
			g.unlock()
			ep := generators.ClientEndpoints(h.Config)
			stderr := cmd.ErrOrStderr()
			run := broker.RunOptions{Stdout: cmd.OutOrStdout(), Stderr: stderr, Version: buildVersion()}
			pr := h.Config.Monitoring.Prometheus
			if pr.Enabled {
				run.MetricsListen = fmt.Sprintf(":%d", pr.Port)
			}
			// "serving" only once every listener is bound: a port in use
			// ends serve with the cause and no such line.
			run.Started = func() {
				for _, l := range []struct {
					scheme string
					port   int
				}{{"mqtt", ep.Port}, {"mqtts", ep.TLSPort}, {"ws", ep.WebsocketsPort}, {"wss", ep.WSSPort}} {
					if l.port != 0 {
						fmt.Fprintf(stderr, "serving %s://%s:%d\n", l.scheme, ep.Host, l.port)
					}
				}
				fmt.Fprintf(stderr, "logins: mqttgen secrets bundle USER %s\n", pathArg(args))
				if pr.Enabled {
					fmt.Fprintf(stderr, "metrics: http://%s:%d/metrics\n", ep.Host, pr.Port)
				}
			}
			return broker.Run(cmd.Context(), filepath.Join(out, "config", "mosquitto.conf"), run)
		},
	}
}

// passable lets every user pass through dir, without listing it.
func passable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if m := st.Mode().Perm(); m&0o011 != 0o011 {
		return os.Chmod(dir, m|0o011)
	}
	return nil
}
