package deploy

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/pki"
)

// certificateReasons says why a deployed certificate is replaced, when the
// reason is one a user should see: it expires in fewer than
// pki.RenewBefore (judged at now, the time the home was rendered; skipped
// when now is zero), or its names are not those the home asks for. Rendering
// already made the new certificate (pki.Ensure); apply deploys it, after
// checking that it matches its key, and reloads the broker with SIGHUP.
func certificateReasons(deployed, want []generators.File, now time.Time) []string {
	var out []string
	for _, w := range want {
		if !strings.HasSuffix(w.Path, ".crt") {
			continue
		}
		old := fileData(deployed, w.Path)
		if old == nil || string(old) == string(w.Data) {
			continue
		}
		oc, err1 := pki.ParseCert(old)
		nc, err2 := pki.ParseCert(w.Data)
		if err1 != nil || err2 != nil {
			continue
		}
		switch left := oc.NotAfter.Sub(now); {
		case now.IsZero():
		case left <= 0:
			out = append(out, fmt.Sprintf("certificate %s expired on %s: renewed (valid until %s)", w.Path, day(oc.NotAfter), day(nc.NotAfter)))
		case left < pki.RenewBefore:
			out = append(out, fmt.Sprintf("certificate %s expires on %s, in %s, fewer than the %d days before expiry mqttgen renews at: renewed (valid until %s)",
				w.Path, day(oc.NotAfter), days(left), int(pki.RenewBefore.Hours()/24), day(nc.NotAfter)))
		}
		if on, nn := certNames(oc.DNSNames, oc.IPAddresses), certNames(nc.DNSNames, nc.IPAddresses); !oc.IsCA && !slices.Equal(on, nn) {
			out = append(out, fmt.Sprintf("certificate %s names %s, home.cue asks for %s: made anew", w.Path, strings.Join(on, ", "), strings.Join(nn, ", ")))
		} else if !oc.IsCA && oc.Subject.CommonName != nc.Subject.CommonName {
			out = append(out, fmt.Sprintf("certificate %s has the common name %s, broker.hostname is %s: made anew", w.Path, oc.Subject.CommonName, nc.Subject.CommonName))
		}
	}
	return out
}

func certNames(dns []string, ips []net.IP) []string {
	out := slices.Clone(dns)
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func days(d time.Duration) string {
	n := int((d + 12*time.Hour) / (24 * time.Hour)) // the nearest day
	switch {
	case n == 1:
		return "1 day"
	case n < 1:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", n)
}
