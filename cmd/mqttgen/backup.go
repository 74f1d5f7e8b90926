package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/internal/human"
	"github.com/mqttgen/mqttgen/workspace"
)

func newBackupCmd(g *globals) *cobra.Command {
	var dir, passFile string
	var keep int
	var withSecrets, asJSON bool
	var site string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "backup [PATH]",
		Short: "Back up the running broker's data and config, without stopping it",
		Long: `backup asks the project's broker to write its persistence database (SIGUSR1:
Mosquitto writes mosquitto.db and keeps serving; no client is disconnected),
waits until the database file changed, then reads the data volume and the
config deployed in the container through the Docker API, so that a remote
engine (DOCKER_HOST) works as a local one, and adds the state directory's
certificates (ca.crt, server.crt). It writes backup.dir/<project>-<UTC time>.tar.gz
atomically (mode 0600), with manifest.json listing the SHA-256 of every entry,
and keeps the newest backup.keep archives of the project.

backup.dir is relative to home.cue's folder; without a backup block in
home.cue, backups go to backups/ in the state directory and 7 are kept.

Secrets are left out: private keys (the server's and the CA's), the generated
passwords, and bridge passwords in mosquitto.conf (the file is stored with
their values redacted). restore takes them from the running broker, home.cue
or the state directory when it can. --with-secrets stores them too, encrypted
(AES-256-GCM, key from a passphrase by PBKDF2-HMAC-SHA256, 600,000 rounds),
and is refused without a passphrase: --passphrase-file FILE or
$MQTTGEN_BACKUP_PASSPHRASE.`,
		Example: `  mqttgen backup
  mqttgen backup myhome --dir /mnt/nas/mqtt --keep 30
  MQTTGEN_BACKUP_PASSPHRASE=... mqttgen backup --with-secrets`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			h, err := g.open(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			bdir, bkeep := h.BackupLocation()
			if dir != "" {
				if bdir, err = filepath.Abs(dir); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("keep") {
				bkeep = keep
			}
			pass := ""
			if withSecrets {
				if pass, err = backup.ReadPassphrase(passFile); err != nil {
					return err
				}
				if pass == "" {
					return errors.New("--with-secrets stores keys and passwords encrypted, and needs a passphrase: --passphrase-file FILE or $" + backup.PassphraseEnv + "; nothing was backed up")
				}
			} else if passFile != "" {
				return errors.New("--passphrase-file without --with-secrets: the archive would hold no secrets to encrypt")
			}
			h, cli, _, err := siteEngine(ctx, h, site)
			if err != nil {
				return err
			}
			defer cli.Close()
			w := cmd.OutOrStdout()
			progress := func(s string) { fmt.Fprintln(w, s) }
			if asJSON {
				progress = nil
			}
			res, err := backup.Create(ctx, cli, backup.Options{
				Project: h.Config.Deploy.Project, Dir: bdir, Keep: bkeep, StateDir: h.Secrets.Dir,
				WithSecrets: withSecrets, Passphrase: pass, Reason: "mqttgen backup",
				FlushTimeout: timeout, Progress: progress,
			})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			m := res.Manifest
			fmt.Fprintf(w, "Wrote %s (%s): %s, %s, %s, each with its SHA-256 in %s\n",
				res.Path, human.Bytes(res.Size), count(res.ConfigFiles, "config file"), count(res.DataFiles, "data file"), count(res.StateFiles, "state file"), backup.ManifestName)
			if m.Secrets != nil {
				fmt.Fprintf(w, "Secrets (%s) are in %s, encrypted with %s\n", strings.Join(m.Secrets.Entries, ", "), backup.SecretsName, m.Secrets.Cipher)
			}
			var omitted []string
			if m.Secrets == nil {
				for _, o := range m.Omitted {
					omitted = append(omitted, o.Path)
				}
			}
			for _, e := range m.Entries {
				if len(e.Redacted) > 0 && m.Secrets == nil {
					omitted = append(omitted, e.Path+" ("+strings.Join(e.Redacted, ", ")+" redacted)")
				}
			}
			if len(omitted) > 0 {
				fmt.Fprintf(w, "Not in it (secrets; --with-secrets stores them encrypted): %s\n", strings.Join(omitted, ", "))
			}
			for _, n := range m.Notes {
				fmt.Fprintf(w, "Note: %s\n", n)
			}
			if len(res.Removed) > 0 {
				var names []string
				for _, p := range res.Removed {
					names = append(names, filepath.Base(p))
				}
				fmt.Fprintf(w, "Removed %s (keep %d): %s\n", count(len(res.Removed), "older archive"), bkeep, strings.Join(names, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write the archive into `DIR` instead of backup.dir")
	cmd.Flags().IntVar(&keep, "keep", workspace.DefaultBackupKeep, "keep this many archives of the project instead of backup.keep")
	cmd.Flags().BoolVar(&withSecrets, "with-secrets", false, "also store private keys and passwords, encrypted with a passphrase")
	cmd.Flags().StringVar(&passFile, "passphrase-file", "", "read the passphrase from the first line of `FILE` (else $"+backup.PassphraseEnv+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	siteFlag(cmd, &site, "back up")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the broker to write its database")
	return cmd
}

// count is "1 file" or "2 files".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
