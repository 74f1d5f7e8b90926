package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

func newRenderCmd(g *globals) *cobra.Command {
	var out string
	var local bool
	cmd := &cobra.Command{
		Use:   "render [PATH]",
		Short: "Write mosquitto.conf, passwd, acl and certificates",
		Long: `render writes the broker's files for the home at PATH into the output folder,
laid out as the eclipse-mosquitto image expects under /mosquitto:
config/mosquitto.conf, config/passwd, config/acl and config/certs/.
With deploy.target "kubernetes" it writes Kubernetes manifests of them too,
under kubernetes/ (a kustomization: kubectl apply -k OUT/kubernetes);
kubernetes/secret.yaml holds passwd, acl and keys, is written 0600 and is
named in kubernetes/.gitignore.

Passwords are generated into the state directory on first need; hashes and
certificates are kept while valid, so rendering twice gives identical files.
With --local, paths point into the output folder so that
"mosquitto -c OUT/config/mosquitto.conf" runs the broker on this host.
Nothing is written when the home has an error or a secret cannot be read.`,
		Example: `  mqttgen render -o out
  mqttgen render examples/home.cue --local -o /tmp/broker
  mosquitto -c /tmp/broker/config/mosquitto.conf`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.open(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			dir, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			k8s := h.Config.Deploy.Target == schema.TargetKubernetes
			if k8s && local {
				return fmt.Errorf("--local renders for this host, but deploy.target is \"kubernetes\": render without --local")
			}
			files, err := h.Render(workspace.RenderOptions{Local: local, Out: dir, Now: time.Now()})
			if err != nil {
				return err
			}
			if k8s {
				manifests, err := kube.Manifests(h.Config, files)
				if err != nil {
					return err
				}
				files = append(files, manifests...)
			}
			if err := workspace.Write(dir, files, local); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d files to %s\n", len(files), out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "out", "output folder")
	cmd.Flags().BoolVar(&local, "local", false, "paths into the output folder, to run mosquitto on this host")
	return cmd
}
