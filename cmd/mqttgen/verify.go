package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttgen/mqttgen/aclcheck"
	"github.com/mqttgen/mqttgen/verify"
	"github.com/mqttgen/mqttgen/workspace"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var live, asJSON bool
	var host string
	var settle time.Duration
	c := &cobra.Command{
		Use:   "verify [PATH]",
		Short: "Prove the expectations on a real broker: a sandbox, or the deployed one (--live)",
		Long: `verify proves every expectation (expect: and the built-in ones) by real MQTT 5
logins, subscriptions and publishes, with each account's real password.

Without --live it starts, on loopback and free ports, the engines that can run
here from the files the home renders (Mosquitto when /usr/sbin/mosquitto is
installed, and the bundled broker always; bridges left out), checks every
listener's anonymous setting and TLS certificate, every account's login, and
every expectation: a write by publishing (QoS 1, retained) and watching as every
account that may read it (through a wildcard subscription), a read by
subscribing and having an account that may write publish.

With --live it checks the deployed broker, sending only what cannot actuate
anything: each account logs in, each listener refuses or admits anonymous
clients as the home says, each TLS listener presents the certificate the home
renders, and each write the home denies is refused (PUBACK 0x87) and reaches no
subscriber that may read the topic. Allowed writes are never sent live. A
passing live run is recorded in the state directory (verify-live.json).

Exit status 0 only when every check passes.`,
		Example: `  mqttgen verify
  mqttgen verify --live --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.open(pathArg(args), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ah := aclcheck.New(h.Config)
			xs := ah.Expectations()
			pw, err := verify.Passwords(h)
			if err != nil {
				return err
			}
			opts := verify.Options{Settle: settle}
			var reports []verify.Report
			if live && h.Config.HasSites() {
				return fmt.Errorf("--live checks one deployed broker, and this home has several sites: not supported yet; verify without --live proves the expectations on the whole home's acl in a sandbox")
			}
			if live {
				t, err := verify.LiveTarget(h, host)
				if err != nil {
					return err
				}
				rep := verify.Run(cmd.Context(), ah, pw, t, xs, opts)
				reports = append(reports, rep)
				if rep.OK() {
					passed, skipped := tally(rep)
					if err := h.RecordVerified(workspace.Verified{PassedAt: time.Now().UTC(), Project: h.Config.Deploy.Project, Host: t.Host, Checks: passed, Skipped: skipped}); err != nil {
						return err
					}
				}
			} else {
				reports, err = verify.Sandboxes(cmd.Context(), h, func(s *verify.Sandbox) verify.Report {
					return verify.Run(cmd.Context(), ah, pw, s.Target, xs, opts)
				}, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
			}
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), reports)
			} else {
				err = printReports(cmd.OutOrStdout(), reports)
			}
			if err != nil {
				return err
			}
			for _, r := range reports {
				if !r.OK() {
					return exitError(1)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&live, "live", false, "check the deployed broker (nothing that could actuate a device is sent)")
	c.Flags().StringVar(&host, "host", "", "with --live, the broker's address (default: the listeners' bind address, else 127.0.0.1)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().DurationVar(&settle, "settle", time.Second, "how long to wait for deliveries after publishing")
	return c
}

func tally(r verify.Report) (passed, skipped int) {
	for _, c := range r.Checks {
		switch c.Result {
		case "pass":
			passed++
		case "skip":
			skipped++
		}
	}
	return
}

// printReports writes one row per check, with a column of results per
// engine and the detail; where the engines disagree, the detail of the one
// that did not pass.
func printReports(w io.Writer, reports []verify.Report) error {
	type row struct {
		account, what string
		results       []string
		details       []string
	}
	var rows []*row
	index := map[string]*row{}
	for i, r := range reports {
		for _, c := range r.Checks {
			key := c.Account + "\x00" + c.What + "\x00" + c.Source
			rw := index[key]
			if rw == nil {
				rw = &row{account: c.Account, what: c.What, results: make([]string, len(reports)), details: make([]string, len(reports))}
				index[key] = rw
				rows = append(rows, rw)
			}
			rw.results[i], rw.details[i] = c.Result, c.Detail
		}
	}
	detail := func(rw *row) string {
		for i, res := range rw.results {
			if res != rw.results[0] && res != "pass" {
				return reports[i].Engine + ": " + rw.details[i]
			}
			if res != rw.results[0] {
				return reports[0].Engine + ": " + rw.details[0]
			}
		}
		return rw.details[0]
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "ACCOUNT\tCHECK")
	for _, r := range reports {
		fmt.Fprint(tw, "\t"+strings.ToUpper(r.Engine))
	}
	fmt.Fprintln(tw, "\tDETAIL")
	for _, rw := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", rw.account, rw.what, strings.Join(rw.results, "\t"), detail(rw))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range reports {
		passed, skipped := tally(r)
		fmt.Fprintf(w, "%s: %d passed, %d failed, %d skipped\n", r.Engine, passed, len(r.Checks)-passed-skipped, skipped)
	}
	return nil
}
