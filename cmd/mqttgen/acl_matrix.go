package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
)

func newACLMatrixCmd() *cobra.Command {
	var html string
	var asJSON bool
	c := &cobra.Command{
		Use:   "matrix [PATH]",
		Short: "What every account may read and write under each topic root",
		Long: `matrix prints a table: accounts as rows, the topic roots the home's rules name
as columns (<devices_topic>/<device> per device, the first level otherwise,
and $SYS), and in each cell R/W when the account may read/write every topic the
rules name under the root, r/w when only some, - when none. --html FILE writes
the same as one self-contained page to open in a browser.`,
		Example: `  mqttgen acl matrix
  mqttgen acl matrix --html acl.html`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := loadACL(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			m := h.Matrix()
			if html != "" {
				var b bytes.Buffer
				if err := m.WriteHTML(&b, "MQTT access: "+h.Config.Deploy.Project); err != nil {
					return err
				}
				if err := atomicfile.Write(html, b.Bytes(), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", html)
				return nil
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), m)
			}
			return m.WriteText(cmd.OutOrStdout())
		},
	}
	c.Flags().StringVar(&html, "html", "", "write the matrix as an HTML page to FILE")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
