package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// globals are the flags every command shares, and the home's lock while a
// command holds it.
type globals struct {
	state   string
	command string
	release func()
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
		Version:       versionLine(),
	}
	root.SetVersionTemplate("mqttgen {{.Version}}\n")
	root.PersistentFlags().StringVar(&g.state, "state", "", "state directory (passwords, certificates); default $"+workspace.StateEnv+" or .mqttgen beside home.cue")
	root.AddCommand(newInitCmd(), newImportCmd(g), newVetCmd(g), newRenderCmd(g), newSecretsCmd(g), newServeCmd(g), newDiscoveryCmd(g), newBrokerCmd(), newExporterCmd(), newPlanCmd(g), newApplyCmd(g), newDestroyCmd(g), newBackupCmd(g), newRestoreCmd(g), newStatusCmd(g), newACLCmd(), newVerifyCmd(g))
	releaseAfterRun(root, g)
	return root
}

// releaseAfterRun makes every command release the home's lock when it
// ends, whatever way it ends.
func releaseAfterRun(c *cobra.Command, g *globals) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			g.command = cmd.CommandPath()
			defer g.unlock()
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		releaseAfterRun(sub, g)
	}
}

// pathArg is the home's path: the first argument, or the working directory.
func pathArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return "."
}

// open loads the home, takes its lock (one command at a time works on a
// home: workspace.LockDir) and prints its warnings. Every command that
// opens a home may write its state (a password generated on first need), so
// every one takes the lock.
func (g *globals) open(path string, stderr io.Writer) (*workspace.Home, error) {
	h, err := workspace.Open(path, g.state)
	if err != nil {
		return nil, err
	}
	if err := g.lock(h.Dir, h.Secrets.Dir); err != nil {
		return nil, err
	}
	printWarnings(stderr, h.Warnings)
	return h, nil
}

// openRead loads the home for a command that only reads it (plan, status,
// secrets show): no lock, so it answers while another command, say an apply
// waiting at its prompt, holds it; and nothing is written into the state
// directory (workspace.Home.ReadOnly).
func (g *globals) openRead(path string, stderr io.Writer) (*workspace.Home, error) {
	h, err := workspace.Open(path, g.state)
	if err != nil {
		return nil, err
	}
	h.ReadOnly()
	printWarnings(stderr, h.Warnings)
	return h, nil
}

// lockHome turns a home opened with openRead into one this command may
// write: it takes the lock.
func (g *globals) lockHome(h *workspace.Home) error {
	if err := g.lock(h.Dir, h.Secrets.Dir); err != nil {
		return err
	}
	h.Secrets.ReadOnly = false
	return nil
}

// lock takes the lock of the home in folder dir, once per command.
func (g *globals) lock(dir, stateDir string) error {
	if g.release != nil {
		return nil
	}
	release, err := workspace.LockDir(dir, stateDir, strings.TrimPrefix(g.command, "mqttgen "))
	if err != nil {
		return err
	}
	g.release = release
	return nil
}

// unlock releases the home's lock if the command holds it.
func (g *globals) unlock() {
	if g.release != nil {
		g.release()
		g.release = nil
	}
}

func printWarnings(w io.Writer, diags schema.Diagnostics) {
	for _, d := range diags {
		if d.Warning {
			fmt.Fprintln(w, d)
		}
	}
}
