package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

func newRenderCmd(g *globals) *cobra.Command {
	var out string
	var local bool
	var pluginDir string
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
"mosquitto -c OUT/config/mosquitto.conf" runs the broker on this host, and
the dialect is that of the mosquitto on PATH (as "mosquitto -h" names its
release; 2.1's plugins are found in <prefix>/lib or Debian's multiarch
folder, or given with --plugin-dir); with none on PATH, the image's.
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
			if h.Config.HasSites() {
				if local {
					return fmt.Errorf("--local renders one broker for this host, but the home declares sites: render without --local (each site's files go to %s/%s/SITE/)", out, generators.SitesDir)
				}
				files, err := renderSites(h, time.Now())
				if err != nil {
					return err
				}
				if err := workspace.Write(dir, files, false); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %d files to %s (one folder per site under %s/)\n", len(files), out, generators.SitesDir)
				warnUnignored(cmd.ErrOrStderr(), out, files)
				return nil
			}
			files, err := h.Render(workspace.RenderOptions{Local: local, Out: dir, Now: time.Now(), PluginDir: pluginDir})
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
			warnUnignored(cmd.ErrOrStderr(), out, files)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "out", "output folder")
	cmd.Flags().BoolVar(&local, "local", false, "paths into the output folder, to run mosquitto on this host")
	cmd.Flags().StringVar(&pluginDir, "plugin-dir", "", "with --local: the folder of Mosquitto 2.1's mosquitto_acl_file.so and mosquitto_password_file.so (default: found beside the mosquitto on PATH)")
	return cmd
}

// renderSites renders every site of a home with sites, each into
// sites/<name>/ as a home without sites would be rendered, the hub first
// (its CA is the one the satellites' bridges trust).
func renderSites(h *workspace.Home, now time.Time) ([]generators.File, error) {
	var all []generators.File
	for _, name := range h.Sites() {
		site, err := h.Site(name)
		if err != nil {
			return nil, err
		}
		files, err := site.Render(workspace.RenderOptions{Now: now})
		if err != nil {
			return nil, fmt.Errorf("site %s: %w", name, err)
		}
		for _, f := range files {
			f.Path = generators.SitePath(name, f.Path)
			all = append(all, f)
		}
	}
	return all, nil
}

// warnUnignored warns when render wrote secrets into a git work tree that
// does not ignore them (say, "render myhome -o out" from the repository
// above the home, whose .gitignore covers only myhome/out).
func warnUnignored(w io.Writer, out string, files []generators.File) {
	root, paths, err := workspace.Unignored(out, files)
	switch {
	case err != nil:
		fmt.Fprintf(w, "warning: %s is inside the git work tree %s, and git could not say whether it ignores the passwords and keys written there (%v): make sure it does\n", out, root, err)
	case len(paths) > 0:
		line := filepath.Base(out)
		if abs, err := filepath.Abs(out); err == nil {
			if rel, err := filepath.Rel(root, abs); err == nil {
				line = filepath.ToSlash(rel)
			}
		}
		fmt.Fprintf(w, "warning: %s is inside the git work tree %s, which does not ignore %s: these hold passwords or keys; add the line /%s/ to %s\n",
			out, root, strings.Join(paths, ", "), line, filepath.Join(root, ".gitignore"))
	}
}
