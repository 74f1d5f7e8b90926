package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/discovery"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
)

func newDiscoveryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "discovery",
		Short: "Home Assistant MQTT discovery",
	}
	var broker string
	publish := &cobra.Command{
		Use:   "publish [PATH]",
		Short: "Publish every device's discovery config, migrate and clear old ones",
		Long: `publish logs in to the broker as the Home Assistant user and publishes one
device discovery config per device, retained, on
<discovery_prefix>/device/<device>/config: origin, the device, its availability
and every entity under cmps (ESPHome and Tasmota devices publish their own).

Per-component configs mqttgen published before
(<discovery_prefix>/<component>/<device>/<entity>/config) are migrated: they get
{"migrate_discovery": true}, the device config follows, then they are emptied, so
Home Assistant keeps the entities and their ids. An entity removed from home.cue
leaves its device config as {"platform": ...} (HA removes it); a device removed is
cleared with an empty retained config. Configs of other programs (Zigbee2MQTT,
Tasmota, ESPHome) are never touched.`,
		Example: `  mqttgen discovery publish
  mqttgen discovery publish --broker tcp://127.0.0.1:1883`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.open(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if h.Config.HasSites() {
				// Home Assistant is at the hub, which knows every site's devices.
				if h, err = h.Site(h.Config.Hub()); err != nil {
					return err
				}
			}
			cfg := h.Config
			if cfg.HomeAssistant == nil {
				return errors.New("the home has no homeassistant: block, so no user to publish as")
			}
			b, err := h.Bundle(schema.Account{Name: cfg.HomeAssistant.User, Password: cfg.Users[cfg.HomeAssistant.User].Password}, time.Now())
			if err != nil {
				return err
			}
			opts := discovery.Options{Broker: broker, Username: b.Username, Password: b.Password}
			if opts.Broker == "" {
				host := b.Host
				if _, err := net.DefaultResolver.LookupHost(cmd.Context(), host); err != nil {
					// init's hostname (mqtt.home.arpa) resolves only once the
					// house's DNS knows it: the broker is also where its ports
					// are published.
					host = publishedHost(cmd)
					fmt.Fprintf(cmd.ErrOrStderr(), "broker.hostname %s does not resolve here; publishing through the published address %s instead (--broker URL chooses another)\n", b.Host, host)
				}
				switch {
				case b.Port != 0:
					opts.Broker = fmt.Sprintf("tcp://%s", net.JoinHostPort(host, strconv.Itoa(b.Port)))
				case b.TLSPort != 0:
					opts.Broker = fmt.Sprintf("ssl://%s", net.JoinHostPort(host, strconv.Itoa(b.TLSPort)))
				default:
					return errors.New("no mqtt listener to publish through: give --broker")
				}
			}
			if b.CACertificate != "" {
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM([]byte(b.CACertificate))
				opts.TLS = &tls.Config{RootCAs: pool, ServerName: cfg.Broker.Hostname, MinVersion: tls.VersionTLS12}
			}
			rep, err := discovery.Publish(opts, cfg.HomeAssistant.DiscoveryPrefix, generators.DeviceDiscoveryMessages(cfg))
			out := cmd.OutOrStdout()
			for _, t := range rep.Migrated {
				fmt.Fprintf(out, "> %s (migrated)\n", t)
			}
			for _, t := range rep.Cleared {
				fmt.Fprintf(out, "- %s\n", t)
			}
			for _, t := range rep.Removed {
				fmt.Fprintf(out, "- %s (component removed)\n", t)
			}
			for _, t := range rep.Published {
				fmt.Fprintf(out, "+ %s\n", t)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "published %d, migrated %d, cleared %d\n", len(rep.Published), len(rep.Migrated), len(rep.Cleared)+len(rep.Removed))
			return nil
		},
	}
	publish.Flags().StringVar(&broker, "broker", "", "broker URL (tcp://, ssl://, ws://); default from the home's hostname and listeners")
	cmd.AddCommand(publish)
	return cmd
}

// publishedHost is where this machine reaches the broker's published ports:
// the Docker engine's host (127.0.0.1 for a local engine), or this machine
// when no engine answers (mqttgen serve).
func publishedHost(cmd *cobra.Command) string {
	cli, err := engine.Connect(cmd.Context())
	if err != nil {
		return "127.0.0.1"
	}
	defer cli.Close()
	return engine.PublishHost(cli)
}
