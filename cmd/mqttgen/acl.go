package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/aclcheck"
	"github.com/mqttgen/mqttgen/schema"
)

func newACLCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "acl",
		Short: "Ask the home's access control: why, who, and the whole matrix",
		Long: `acl answers questions about the acl file the home renders, deciding as the
broker does (Mosquitto 2.0 and the bundled broker decide alike): explain says
whether an account may read or write a topic and which rule decides, who lists
every account that may, matrix shows every account under every topic root.`,
		Example: `  mqttgen acl explain hall-light home/porch-light/set --write
  mqttgen acl who home/porch-light/set --write
  mqttgen acl matrix --html acl.html`,
	}
	c.AddCommand(newACLExplainCmd(), newACLWhoCmd(), newACLMatrixCmd())
	return c
}

// loadACL loads the home at path for questions; it writes nothing, so it
// takes no lock.
func loadACL(path string, stderr io.Writer) (*aclcheck.Home, error) {
	cfg, diags := schema.Load(path)
	if diags.Errors() > 0 {
		return nil, diags
	}
	printWarnings(stderr, diags)
	return aclcheck.New(cfg), nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
