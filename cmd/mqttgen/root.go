package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// globals are the flags every command shares.
type globals struct {
	state string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "mqttgen",
		Short: "Run a home MQTT broker from one home.cue",
		Long: `mqttgen keeps a household's whole MQTT setup in one home.cue: listeners, users
and their ACLs, devices, persistence, bridges, Home Assistant and Zigbee2MQTT.
It checks the file, renders the broker's files, and keeps the passwords out of git.`,
		Example: `  mqttgen init myhome          # start a home
  mqttgen vet myhome           # check it
  mqttgen render myhome -o out # write mosquitto.conf, passwd, acl, certs`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.state, "state", "", "state directory (passwords, certificates); default $"+workspace.StateEnv+" or .mqttgen beside home.cue")
	root.AddCommand(newInitCmd(), newVetCmd(g), newRenderCmd(g), newSecretsCmd(g), newServeCmd(g), newDiscoveryCmd(g), newBrokerCmd(), newPlanCmd(g), newApplyCmd(g), newDestroyCmd(g), newBackupCmd(g), newRestoreCmd(g), newStatusCmd(g))
	return root
}

// pathArg is the home's path: the first argument, or the working directory.
func pathArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return "."
}

// open loads the home and prints its warnings.
func (g *globals) open(path string, stderr io.Writer) (*workspace.Home, error) {
	h, err := workspace.Open(path, g.state)
	if err != nil {
		return nil, err
	}
	printWarnings(stderr, h.Warnings)
	return h, nil
}

func printWarnings(w io.Writer, diags schema.Diagnostics) {
	for _, d := range diags {
		if d.Warning {
			fmt.Fprintln(w, d)
		}
	}
}
