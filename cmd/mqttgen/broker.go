package main

import (
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/broker"
)

func newBrokerCmd() *cobra.Command {
	var confPath string
	cmd := &cobra.Command{
		Use:   "broker -c FILE",
		Short: "Run the bundled broker on rendered Mosquitto files",
		Long: `broker runs mqttgen's own MQTT broker in the foreground on the files render
writes for Mosquitto: FILE is a mosquitto.conf, and its password_file, acl_file
and certificates are read as Mosquitto reads them. Options mqttgen does not
render are refused with their file:line.

Signals, as Mosquitto: SIGHUP reloads the password and acl files and the
certificates without dropping clients (a file that fails to load keeps the
previous rules); SIGUSR1 writes the persistence database; SIGTERM and SIGINT
stop the broker cleanly. Started as root, it drops to the configured user.
Logs follow log_dest, log_type, connection_messages and log_timestamp.`,
		Example: `  mqttgen render examples/home.cue --local -o /tmp/broker
  mqttgen broker -c /tmp/broker/config/mosquitto.conf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return broker.Run(cmd.Context(), confPath, broker.RunOptions{
				Stdout:  cmd.OutOrStdout(),
				Stderr:  cmd.ErrOrStderr(),
				Version: buildVersion(),
			})
		},
	}
	cmd.Flags().StringVarP(&confPath, "config-file", "c", "", "the mosquitto.conf to run (required)")
	cmd.MarkFlagRequired("config-file")
	return cmd
}

// buildVersion is the module version the binary was built from.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
