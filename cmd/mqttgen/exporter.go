package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/exporter"
)

func newExporterCmd() *cobra.Command {
	o := exporter.Options{}
	cmd := &cobra.Command{
		Use:   "exporter --broker URL --user NAME --password-file FILE --listen ADDR",
		Short: "Serve a Mosquitto broker's $SYS values as Prometheus metrics",
		Long: `exporter logs in to the broker at URL (tcp://HOST:PORT or ssl://HOST:PORT) as NAME,
with the password on the one line of FILE (never an argument or an environment
variable), subscribes to $SYS/# and serves Prometheus' /metrics on ADDR, named as
the bundled broker's own /metrics names them (broker_clients_connected, ...).

apply runs it beside Mosquitto for monitoring.prometheus, from the same image as
the bundled broker, with FILE written into the container before it starts.`,
		Example: `  mqttgen exporter --broker tcp://127.0.0.1:1883 --user exporter \
    --password-file /run/secrets/exporter_password --listen 127.0.0.1:9234`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Broker == "" || o.User == "" || o.PasswordFile == "" || o.Listen == "" {
				return errors.New("--broker, --user, --password-file and --listen are required")
			}
			o.Log = cmd.ErrOrStderr()
			return exporter.Run(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Broker, "broker", "", "the broker, `URL` tcp://HOST:PORT or ssl://HOST:PORT")
	cmd.Flags().StringVar(&o.User, "user", "", "the `NAME` that may read $SYS/#")
	cmd.Flags().StringVar(&o.PasswordFile, "password-file", "", "the `FILE` holding the password on one line")
	cmd.Flags().StringVar(&o.Listen, "listen", "", "serve /metrics on `ADDR` (host:port)")
	return cmd
}
