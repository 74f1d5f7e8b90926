package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/deploy"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var autoApprove, force bool
	var passFile, site string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restore ARCHIVE [PATH]",
		Short: "Restore a backup's data and config into the broker",
		Long: `restore first reads the whole archive and checks every entry against the SHA-256
in its manifest: a truncated or altered archive is refused before anything is
touched. It refuses an archive of another project (deploy.project) unless --force.

It then shows what will change, as plan does (the data volume's files, the
config files with secrets redacted, the state directory's certificates it
lacks), and asks; only "yes" proceeds, and --auto-approve skips the question.

It takes a backup of what it replaces (into backup.dir), stops the broker,
writes the archive's data into the data volume and its config into the
container through the Docker API, starts the broker and waits until every
listener accepts an authenticated login, as apply does. If the broker does not
serve the restored files, the previous data and config are written back. When
the project is not deployed (after "mqttgen destroy --volumes"), the network,
volumes and container are created from home.cue first, and the broker starts
with the archive's data.

Secrets the archive does not hold (private keys, bridge passwords) are taken
from the running broker, home.cue or the state directory when they are the same
files; an archive made with --with-secrets opens with its passphrase
(--passphrase-file FILE or $MQTTGEN_BACKUP_PASSPHRASE).`,
		Example: `  mqttgen restore backups/home-mqtt-20261122T005401Z.tar.gz
  mqttgen restore --auto-approve /mnt/nas/mqtt/home-mqtt-20261122T005401Z.tar.gz myhome`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := cmd.OutOrStdout()
			a, err := backup.Open(args[0])
			if err != nil {
				return fmt.Errorf("refusing to restore, nothing was changed: %w", err)
			}
			pass, err := backup.ReadPassphrase(passFile)
			if err != nil {
				return err
			}
			var secrets []backup.File
			if a.Manifest.Secrets != nil && pass != "" {
				if secrets, err = a.Secrets(pass); err != nil {
					return fmt.Errorf("refusing to restore, nothing was changed: %w", err)
				}
			}
			h, err := g.open(pathArg(args[1:]), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			// Rendered as the home will be with the archive's state files
			// the state directory lacks (a lost state directory gets the
			// archive's passwords and CA back, not new ones).
			h, cli, host, err := siteEngine(ctx, h, site)
			if err != nil {
				return err
			}
			defer cli.Close()
			d, err := deploy.FromHomeRestoring(h, a.StateFiles(secrets), time.Now())
			if err != nil {
				return err
			}
			o, err := deploy.Observe(ctx, cli, d.Project, d)
			if err != nil {
				return err
			}
			rp, err := deploy.PlanRestore(ctx, cli, d, o, a, deploy.RestoreOptions{Secrets: secrets, Force: force})
			if err != nil {
				if errors.Is(err, deploy.ErrOtherProject) {
					return err
				}
				return fmt.Errorf("refusing to restore, nothing was changed: %w", err)
			}
			if err := rp.WriteText(w, time.Now()); err != nil {
				return err
			}
			if rp.Empty() {
				fmt.Fprintln(w, "\nThe broker already holds the archive's data and config: nothing to restore.")
				return nil
			}
			if a.Manifest.Secrets != nil && secrets == nil {
				fmt.Fprintf(w, "\nThe archive holds encrypted secrets (%s); without a passphrase they stay closed.\n", backup.SecretsName)
			}
			if !autoApprove && !confirm(cmd, "restore this backup") {
				fmt.Fprintln(w, "Restore cancelled.")
				return exitError(1)
			}
			safety, err := deploy.Restore(ctx, cli, d, rp, deploy.Options{ReadyTimeout: timeout, Events: eventPrinter(w, false), PublishHost: host})
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "\nRestore complete! The broker serves the data and config of %s.\n", args[0])
			if safety != "" {
				fmt.Fprintf(w, "What it replaced is in %s (mqttgen restore undoes this restore with it).\n", safety)
			}
			if o, err := deploy.Observe(ctx, cli, d.Project, d); err == nil {
				if p := deploy.Reconcile(d, o); p.Empty() {
					fmt.Fprintln(w, "mqttgen plan: No changes: what runs is what home.cue asks for.")
				} else {
					add, change, destroy := p.Summary()
					fmt.Fprintf(w, "mqttgen plan: %d to add, %d to change, %d to destroy: the archive's config is not home.cue's (mqttgen apply makes it so).\n", add, change, destroy)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "skip the question")
	cmd.Flags().BoolVar(&force, "force", false, "restore an archive of another project or broker engine")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "open the archive's secrets with the passphrase on the first line of `FILE` (else $"+backup.PassphraseEnv+")")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the broker to accept a login after the restore")
	siteFlag(cmd, &site, "restore")
	return cmd
}
