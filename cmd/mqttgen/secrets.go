package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/secrets"
	"github.com/mqttgen/mqttgen/workspace"
)

func newSecretsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Show and rotate passwords",
		Long: `Passwords never live in home.cue. mqttgen generates each user's and device's
password on first need (32 random URL-safe characters) into the state directory,
or reads it from where home.cue says (password: file: PATH or env: NAME).`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "show USER [PATH]",
		Short:   "Print a user's password alone on stdout",
		Example: `  mqttgen secrets show homeassistant | wl-copy`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, account, err := g.account(cmd, args, true)
			if err != nil {
				return err
			}
			pw, err := h.Secrets.Password(account.Name, account.Password)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), pw)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate USER [PATH]",
		Short: "Replace a generated password",
		Long: `rotate replaces a generated password in the state directory. The new password
takes effect at the next render (and apply); it is not printed: use
"mqttgen secrets show USER" to hand it to the client. For an imported account
(password: "hash") it replaces the kept hash with a generated password.`,
		Example: `  mqttgen secrets rotate zigbee2mqtt && mqttgen render -o out`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, account, err := g.account(cmd, args, false)
			if err != nil {
				return err
			}
			if account.Password != nil && !account.Password.Hash {
				return fmt.Errorf("the password of %s comes from %s: change it there", account.Name, secrets.Source(account.Password))
			}
			if _, err := h.Secrets.Rotate(account.Name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated the password of %s: render or apply to use it\n", account.Name)
			return nil
		},
	})
	var format string
	bundle := &cobra.Command{
		Use:   "bundle USER [PATH]",
		Short: "Print what a client needs to log in: broker, ports, username, password, CA",
		Long: `bundle prints the login of a user or device for a client: the broker's hostname,
its plain, TLS and WebSockets ports, the username and password, and with TLS the
CA certificate. For the Home Assistant user it reads as the values HA's MQTT
config flow asks for. Formats: text, json, yaml, env (MQTT_HOST=...), esphome
(a secrets.yaml fragment: mqtt_username_<device>, mqtt_password_<device>).`,
		Example: `  mqttgen secrets bundle homeassistant
  mqttgen secrets bundle livingroom-climate --format esphome >> esphome/secrets.yaml`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, account, err := g.account(cmd, args, true)
			if err != nil {
				return err
			}
			if h.Config.HasSites() {
				// A device logs in at its site: that broker's name and ports.
				site := h.Config.Hub()
				if account.Device {
					site = h.Config.DeviceSite(account.Name)
				}
				if h, err = h.Site(site); err != nil {
					return err
				}
			}
			b, err := h.Bundle(account, time.Now())
			if err != nil {
				return err
			}
			out, err := generators.FormatBundle(b, format)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	bundle.Flags().StringVar(&format, "format", "text", "text, json, yaml, env or esphome")
	cmd.AddCommand(bundle)
	cmd.AddCommand(newSecretsK8sCmd(g))
	return cmd
}

// account finds USER among the home's users and devices. A read-only
// command (show, bundle) takes the home's lock only when it has something to
// write (a password or the CA made on first need), so it answers while an
// apply holds the lock at its prompt.
func (g *globals) account(cmd *cobra.Command, args []string, readOnly bool) (*workspace.Home, schema.Account, error) {
	var h *workspace.Home
	var err error
	if readOnly {
		h, err = g.openRead(pathArg(args[1:]), cmd.ErrOrStderr())
	} else {
		h, err = g.open(pathArg(args[1:]), cmd.ErrOrStderr())
	}
	if err != nil {
		return nil, schema.Account{}, err
	}
	var names []string
	for _, a := range h.Config.Accounts() {
		if a.Name == args[0] {
			if readOnly && !h.HasSecretsOf(a) {
				if err := g.lockHome(h); err != nil {
					return nil, schema.Account{}, err
				}
			}
			return h, a, nil
		}
		names = append(names, a.Name)
	}
	return nil, schema.Account{}, fmt.Errorf("no user or device %q: the home has %s", args[0], strings.Join(names, ", "))
}
