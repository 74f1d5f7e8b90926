package main

import (
	"errors"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/broker"
	"github.com/mqttgen/mqttgen/generators"
)

func newBrokerCmd() *cobra.Command {
	var confPath, probe, probeLogin, metrics string
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
Logs follow log_dest, log_type, connection_messages and log_timestamp.

--metrics-listen ADDR (default $` + generators.MetricsEnv + `) serves Prometheus'
/metrics on ADDR: the $SYS values, named as the Mosquitto exporter names them.
It is not a mosquitto.conf option, which Mosquitto would refuse.`,
		Example: `  mqttgen render examples/home.cue --local -o /tmp/broker
  mqttgen broker -c /tmp/broker/config/mosquitto.conf
  mqttgen broker -c /tmp/broker/config/mosquitto.conf --metrics-listen 127.0.0.1:9234`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if probe != "" {
				// The healthcheck of the broker's image (FROM scratch: no
				// shell, no mosquitto_sub). Exit 0 on any CONNACK, else 1.
				var login *broker.Login
				if probeLogin != "" {
					l, err := broker.ReadProbeLogin(probeLogin)
					if err != nil {
						return err
					}
					login = l
				}
				return broker.Probe(cmd.Context(), probe, login, 5*time.Second)
			}
			if confPath == "" {
				return errors.New(`required flag "config-file" (-c) not set`)
			}
			return broker.Run(cmd.Context(), confPath, broker.RunOptions{
				Stdout:        cmd.OutOrStdout(),
				Stderr:        cmd.ErrOrStderr(),
				Version:       buildVersion(),
				MetricsListen: metrics,
			})
		},
	}
	cmd.Flags().StringVarP(&confPath, "config-file", "c", "", "the mosquitto.conf to run (required)")
	cmd.Flags().StringVar(&metrics, "metrics-listen", os.Getenv(generators.MetricsEnv), "serve Prometheus /metrics on `ADDR` (host:port)")
	// The image's healthcheck: mqttgen broker --probe tcp://127.0.0.1:1883
	// (or ssl://, ws://, wss://) exits 0 when the broker answers a CONNECT
	// with any CONNACK, 1 otherwise.
	cmd.Flags().StringVar(&probe, "probe", "", "check that a broker answers at `URL`, then exit")
	cmd.Flags().MarkHidden("probe")
	// --probe-login FILE: the healthcheck's login, a mosquitto_sub options
	// file (-u USER, -P PASSWORD lines), never the command line.
	cmd.Flags().StringVar(&probeLogin, "probe-login", "", "log the probe in with the -u and -P lines of `FILE`")
	cmd.Flags().MarkHidden("probe-login")
	return cmd
}

// buildVersion is the module version the binary was built from.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
