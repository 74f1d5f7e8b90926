package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/kube"
)

func newReloaderCmd() *cobra.Command {
	var from, to string
	var once bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:    "reloader",
		Short:  "In a Kubernetes pod: copy the mounted Secret and ConfigMap to Mosquitto's folder, check them, SIGHUP",
		Hidden: true,
		Long: `reloader runs in the Mosquitto pod that render writes for deploy.target
"kubernetes": Mosquitto 2.1 refuses the symlinked files of Secret and ConfigMap
volumes, so the mounted files (--from) are copied as plain files, 0600, into
an emptyDir Mosquitto reads (--to). With --once (the init container) it makes the
first copy and exits. Otherwise (a sidecar in the pod's shared process namespace)
it copies each update, checked first as apply checks files before SIGHUP (an acl
or passwd that does not parse, a certificate that does not match its key is
refused, and the previous files keep serving), then sends SIGHUP to the mosquitto
that reads --to/mosquitto.conf.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &kube.Reloader{From: from, To: to, Log: cmd.ErrOrStderr()}
			if once {
				_, err := r.Sync()
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return r.Run(ctx, interval)
		},
	}
	cmd.Flags().StringVar(&from, "from", kube.MountedDir, "the mounted Secret and ConfigMap volume")
	cmd.Flags().StringVar(&to, "to", kube.ConfigDir, "the folder Mosquitto reads (an emptyDir)")
	cmd.Flags().BoolVar(&once, "once", false, "copy once and exit (the init container)")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often to look for an update")
	return cmd
}
