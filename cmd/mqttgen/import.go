package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/importer"
	"github.com/mqttgen/mqttgen/workspace"
)

func newImportCmd(g *globals) *cobra.Command {
	var out string
	var allowLoss, check bool
	cmd := &cobra.Command{
		Use:   "import SOURCE [-o DIR]",
		Short: "Bring an existing Mosquitto setup in: a new home.cue with the same behaviour",
		Long: `import reads an existing Mosquitto setup and writes DIR/home.cue (never over an
existing one) that renders to the same behaviour. SOURCE is a mosquitto.conf
(include_dir is followed), a folder holding one (or config/mosquitto.conf, or a
compose file), or a docker-compose.yml whose Mosquitto service mounts one: paths
are resolved through its volumes, and a file not found where the broker reads it
is looked up beside the conf.

Password hashes are kept as they are (password: "hash", the hash in the state
directory), so every client keeps logging in; plain-text password files become
the accounts' passwords. Bridge passwords move to the state directory.

Each line not carried as it was is listed with its position: translated (same
meaning), dropped (no effect, or an option Mosquitto itself refuses) or lost
(mqttgen cannot express it: exit 1 unless --allow-loss). Then the new home is
rendered and compared with the original: logins, the ACL decision of every
account and of anonymous clients on every topic either side names (plus $SYS
and wildcard probes), listeners, limits and persistence. Differences are
printed; --check makes them an error. Nothing is written when import fails.`,
		Example: `  mqttgen import /etc/mosquitto/mosquitto.conf -o myhome
  mqttgen import ~/mosquitto/docker-compose.yml -o myhome --check`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := importer.Import(args[0], out)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "read %s\n", r.Source)
			for _, p := range r.Resolved {
				fmt.Fprintf(w, "%s is %s here\n", p[0], p[1])
			}
			for _, n := range r.Notes {
				fmt.Fprintln(w, n)
			}
			if len(r.Differences) == 0 {
				fmt.Fprintf(w, "proof: the new home behaves as the original (%d facts: %d accounts and anonymous on %d topics, listeners, limits, persistence)\n", r.Facts, r.Accounts, r.Topics)
			} else {
				fmt.Fprintf(w, "proof: %d differences:\n", len(r.Differences))
				for _, d := range r.Differences {
					fmt.Fprintf(w, "  %s\n", d)
				}
			}
			lost := r.Lost()
			switch {
			case len(lost) > 0 && !allowLoss:
				return fmt.Errorf("%d lines cannot be expressed in home.cue (listed as lost above): nothing written; accept the loss with --allow-loss", len(lost))
			case check && len(r.Differences) > 0:
				return errors.New("the new home behaves otherwise than the original (--check): nothing written")
			}
			state := g.state
			if state == "" {
				state = os.Getenv(workspace.StateEnv)
			}
			if err := r.Write(state); err != nil {
				return err
			}
			fmt.Fprintf(w, "wrote %s/home.cue\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", ".", "the folder of the new home")
	cmd.Flags().BoolVar(&allowLoss, "allow-loss", false, "write the home even when some lines cannot be expressed")
	cmd.Flags().BoolVar(&check, "check", false, "fail when the new home behaves otherwise than the original")
	return cmd
}
