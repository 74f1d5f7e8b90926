package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/status"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	var site string
	cmd := &cobra.Command{
		Use:   "status [PATH]",
		Short: "Show what runs: engine, broker, clients, certificates, last backup, drift",
		Long: `status shows the Docker engine, the broker's container (state, health, uptime,
image), the connected clients and message rates the broker reports in $SYS, the
certificates it serves and when they expire, the age of the newest archive in
backup.dir, and whether what runs is what home.cue asks for (the plan of
"mqttgen plan": No changes, or how many).

$SYS is read as monitoring.prometheus.user when that user exists and may read
it, else as the first account whose rules grant "read $SYS/#"; without one,
status says so and how to add one. The figures are those of the broker's last
$SYS update (every 10 s).

Exit codes, for monitors: 0 the broker serves what home.cue asks for; 1 status
itself failed (the home does not vet); 2 drift (it runs, but not what home.cue
asks for); 3 the broker is down or missing (no container, not running, or
unhealthy); 4 the Docker engine cannot be asked (the state is unknown); 5 the
deployed acl or passwd does not parse (Mosquitto 2.0 then runs without access
control, 2.1 quits). The first line after the header says which, and --json
has it as "state" and "exit_code".`,
		Example: `  mqttgen status
  mqttgen status --json myhome | jq .stats
  mqttgen status >/dev/null; echo $?   # 0 serving, 2 drift, 3 down, 4 engine unreachable, 5 access control broken`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			h, err := g.openRead(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if usesSites(h, site) {
				return statusSites(cmd, h, site, asJSON)
			}
			cli, connErr := engine.Connect(ctx)
			if cli != nil {
				defer cli.Close()
			}
			r := status.Gather(ctx, cli, connErr, h, status.Options{})
			return writeStatus(cmd, r, r.Exit, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	siteFlag(cmd, &site, "status")
	return cmd
}

// statusReport is a status report of one site or of every site.
type statusReport interface {
	WriteJSON(io.Writer) error
	WriteText(io.Writer) error
}

// writeStatus prints r and exits with its documented code, exit.
func writeStatus(cmd *cobra.Command, r statusReport, exit int, asJSON bool) error {
	var err error
	if asJSON {
		err = r.WriteJSON(cmd.OutOrStdout())
	} else {
		err = r.WriteText(cmd.OutOrStdout())
	}
	if err != nil {
		return err
	}
	if exit != status.ExitServing {
		return exitError(exit)
	}
	return nil
}
