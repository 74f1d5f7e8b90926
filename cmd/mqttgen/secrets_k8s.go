package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

func newSecretsK8sCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "k8s [PATH]",
		Short: "Print the Kubernetes Secret (passwd, acl, keys) for sealed-secrets or SOPS",
		Long: `k8s prints the Secret manifest of a home with deploy.target "kubernetes" (the
passwd, acl and TLS key the broker reads; render writes the same bytes to
kubernetes/secret.yaml, 0600, named in its .gitignore) on stdout, or with -o
into FILE, written 0600. It is for a GitOps flow where the Secret goes into git
only sealed or encrypted: pipe it to kubeseal, or encrypt the file with SOPS.
-o never writes over a file others may read, nor over one of the manifests
meant for git.`,
		Example: `  mqttgen secrets k8s | kubeseal -o yaml > kubernetes/sealed-secret.yaml
  mqttgen secrets k8s -o secret.sops.yaml && sops -e -i secret.sops.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.open(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			data, err := secretManifest(h)
			if err != nil {
				return err
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			if err := secretTarget(out); err != nil {
				return err
			}
			if err := atomicfile.Write(out, data, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote the Secret to %s (0600): seal or encrypt it before it goes into git\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the Secret to `FILE` (0600) instead of stdout")
	return cmd
}

// secretManifest is the Secret render writes for the home.
func secretManifest(h *workspace.Home) ([]byte, error) {
	if t := h.Config.Deploy.Target; t != schema.TargetKubernetes {
		return nil, fmt.Errorf(`deploy.target is %q: the Secret is a manifest of deploy.target "kubernetes"`, t)
	}
	manifests, err := kubeManifests(h)
	if err != nil {
		return nil, err
	}
	for _, f := range manifests {
		if f.Path == kube.Dir+"/"+kube.SecretFile {
			return f.Data, nil
		}
	}
	return nil, errors.New("the home renders no Secret")
}

// secretTarget refuses to write the Secret where it could be shared: over
// a file others may read (a file meant for git), or over a manifest render
// writes for git.
func secretTarget(path string) error {
	if kube.PublicManifest(filepath.Base(path)) && filepath.Base(filepath.Dir(path)) == kube.Dir {
		return fmt.Errorf("%s is a manifest meant for git: write the Secret to a file of its own (kubernetes/%s is the one render keeps out of git)", path, kube.SecretFile)
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s exists with mode %04o, readable by others: the Secret is written only to a new file or one of mode 0600", path, st.Mode().Perm())
	}
	return nil
}
