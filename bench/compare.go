package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// ReadReport reads a results file (<date>.json) that Run wrote.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// Compare is a Markdown table of one broker's figures in two reports,
// row by row (scenarios and idle counts present in both): how a change to
// the broker moved them. Figures of different runs carry the run-to-run
// noise bench/README.md describes; the broker's CPU per delivery is the
// steadiest.
func Compare(before, after *Report, broker string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("| scenario | msgs/s before | msgs/s after | × | µs/msg before | µs/msg after | × | p99 ms before | p99 ms after | lost before / after |\n")
	w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, a := range after.Rows {
		if a.Broker != broker || a.Err != "" {
			continue
		}
		var o *Row
		for i, r := range before.Rows {
			if r.Broker == broker && r.Scenario == a.Scenario && r.Err == "" {
				o = &before.Rows[i]
			}
		}
		if o == nil {
			continue
		}
		ot, at := o.Throughput, a.Throughput
		w("| %s | %s | %s | %s | %.1f | %.1f | %s | %s | %s | %d / %d |\n", a.Scenario,
			fmtInt(ot.Rate), fmtInt(at.Rate), fmtRatio(ratio(at.Rate, ot.Rate)),
			ot.CPUPerMsg(), at.CPUPerMsg(), fmtRatio(ratio(at.CPUPerMsg(), ot.CPUPerMsg())),
			fmtMs(o.Latency.P99), fmtMs(a.Latency.P99),
			ot.Lost+o.Latency.Lost, at.Lost+a.Latency.Lost)
	}
	var idle []string
	for _, n := range idleSizes(after.Idle) {
		o, a := idleOf(before.Idle, broker, n), idleOf(after.Idle, broker, n)
		if o == nil || a == nil {
			continue
		}
		idle = append(idle, fmt.Sprintf("| %s idle clients | %.1f | %.1f | %s |\n", fmtInt(float64(n)),
			o.PerConnKB(), a.PerConnKB(), fmtRatio(ratio(a.PerConnKB(), o.PerConnKB()))))
	}
	if len(idle) > 0 {
		w("\n| connections | KiB per connection before | after | × |\n|---|--:|--:|--:|\n")
		for _, l := range idle {
			b.WriteString(l)
		}
	}
	return b.String()
}
