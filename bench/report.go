package bench

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"
)

// pair is one scenario on both brokers.
type pair struct {
	sc      Scenario
	m, b    *Row
	present bool
}

func pairs(rows []Row) []pair {
	var out []pair
	idx := map[string]int{}
	for i := range rows {
		r := &rows[i]
		k := r.Scenario.String()
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, pair{sc: r.Scenario})
		}
		if r.Broker == "mosquitto" {
			out[j].m = r
		} else {
			out[j].b = r
		}
		out[j].present = out[j].m != nil && out[j].b != nil
	}
	return out
}

// Target is one of the targets, evaluated on this run.
type Target struct {
	Name   string
	Figure string
	Met    bool
}

func ratio(b, m float64) float64 {
	if m == 0 {
		return math.NaN()
	}
	return b / m
}

func fmtRatio(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

// idleTarget is the most RSS per idle connection the bundled broker may
// take, in multiples of Mosquitto's (issue 18: 10×; the first bench's 3×
// cannot be met with two goroutine stacks per connection, bench/README.md).
const idleTarget = 10.0

// Targets evaluates the targets.
func Targets(rep *Report) []Target {
	var ts []Target
	ps := pairs(rep.Rows)

	// Throughput on QoS 0 and 1, fan-in and pairs.
	var figs []string
	met, any := true, false
	for _, p := range ps {
		if !p.present || (p.sc.Kind != "fan-in" && p.sc.Kind != "pairs") || p.sc.QoS > 1 {
			continue
		}
		any = true
		r := ratio(p.b.Throughput.Rate, p.m.Throughput.Rate)
		ok := r >= 1 && p.b.Err == ""
		met = met && ok
		figs = append(figs, fmt.Sprintf("%s %s%s", p.sc, fmtRatio(r), mark(ok)))
	}
	if any {
		ts = append(ts, Target{"Throughput bundled ≥ Mosquitto on QoS 0 and 1 fan-in and pairs", strings.Join(figs, "; "), met})
	}

	// CPU per delivery (issue 18): the broker's CPU time per delivered
	// message, not throughput, is what a home broker on a small board
	// pays; it does not depend on who was the bottleneck.
	figs, met, any = nil, true, false
	worstCPU, worstCPUName := 0.0, ""
	for _, p := range ps {
		if !p.present || p.sc.QoS > 1 {
			continue
		}
		any = true
		r := ratio(p.b.Throughput.CPUPerMsg(), p.m.Throughput.CPUPerMsg())
		ok := r <= 1 && p.b.Err == ""
		met = met && ok
		if r > worstCPU || math.IsNaN(r) {
			worstCPU, worstCPUName = r, p.sc.String()
		}
		figs = append(figs, fmt.Sprintf("%s %.1f vs %.1f µs %s%s", p.sc, p.b.Throughput.CPUPerMsg(), p.m.Throughput.CPUPerMsg(), fmtRatio(r), mark(ok)))
	}
	if any {
		ts = append(ts, Target{"CPU per delivery bundled ≤ Mosquitto's on QoS 0 and 1 fan-in, fan-out and pairs",
			fmt.Sprintf("worst %s (%s); ", fmtRatio(worstCPU), worstCPUName) + strings.Join(figs, "; "), met})
	}

	// No loss at QoS 1 and 2.
	figs, met, any = nil, true, false
	for _, p := range ps {
		if p.sc.QoS == 0 {
			continue
		}
		for _, r := range []*Row{p.b, p.m} {
			if r == nil {
				continue
			}
			any = true
			lost := r.Throughput.Lost + r.Latency.Lost
			if lost > 0 || r.Err != "" {
				if r.Broker == "bundled" {
					met = false
				}
				figs = append(figs, fmt.Sprintf("%s on %s: %d lost %s", p.sc, r.Broker, lost, r.Err))
			}
		}
	}
	if any {
		fig := "0 lost in every QoS 1 and 2 row, both brokers, both phases"
		if len(figs) > 0 {
			fig = strings.Join(figs, "; ")
		}
		ts = append(ts, Target{"No message lost at QoS 1 and 2 (bundled broker)", fig, met})
	}

	// p99 latency.
	figs, met, any = nil, true, false
	worst, worstName := 0.0, ""
	for _, p := range ps {
		if !p.present {
			continue
		}
		any = true
		r := ratio(float64(p.b.Latency.P99), float64(p.m.Latency.P99))
		if r > worst || math.IsNaN(r) {
			worst, worstName = r, p.sc.String()
		}
		if !(r <= 1.5) {
			met = false
			figs = append(figs, fmt.Sprintf("%s %s", p.sc, fmtRatio(r)))
		}
	}
	if any {
		fig := fmt.Sprintf("worst %s (%s)", fmtRatio(worst), worstName)
		if len(figs) > 0 {
			fig += "; above 1.5×: " + strings.Join(figs, "; ")
		}
		ts = append(ts, Target{"p99 latency ≤ 1.5× Mosquitto's (paced phase)", fig, met})
	}

	// RSS per idle connection.
	figs, met, any = nil, true, false
	for _, n := range idleSizes(rep.Idle) {
		m, b := idleOf(rep.Idle, "mosquitto", n), idleOf(rep.Idle, "bundled", n)
		if m == nil || b == nil {
			continue
		}
		any = true
		r := ratio(b.PerConnKB(), m.PerConnKB())
		ok := r <= idleTarget && b.Err == "" && m.Err == ""
		met = met && ok
		figs = append(figs, fmt.Sprintf("%d clients: %.1f vs %.1f KiB %s%s", n, b.PerConnKB(), m.PerConnKB(), fmtRatio(r), mark(ok)))
	}
	if any {
		ts = append(ts, Target{fmt.Sprintf("RSS per idle authenticated connection ≤ %.0f× Mosquitto's", idleTarget), strings.Join(figs, "; "), met})
	}

	// plan on 1,000 devices.
	if s := speedOf(rep.Speed, 1000, "plan"); s != nil {
		ok := s.Err == "" && s.Median < time.Second
		fig := fmt.Sprintf("median %s", fmtDur(s.Median))
		if s.Err != "" {
			fig = s.Err
		}
		ts = append(ts, Target{"plan on a 1,000-device home < 1 s", fig, ok})
	}

	// vet and render no worse than linear.
	for _, cmd := range []string{"vet", "render (first)", "render (again)"} {
		a, b := speedOf(rep.Speed, 100, cmd), speedOf(rep.Speed, 1000, cmd)
		if a == nil || b == nil || a.Median == 0 {
			continue
		}
		g := float64(b.Median) / float64(a.Median)
		ts = append(ts, Target{fmt.Sprintf("%s grows no worse than linearly (100 → 1,000 devices: ≤ 10×)", cmd),
			fmt.Sprintf("%s → %s: %.2f× for 10× the devices", fmtDur(a.Median), fmtDur(b.Median), g), g <= 10 && b.Err == ""})
	}
	return ts
}

func mark(ok bool) string {
	if ok {
		return ""
	}
	return " ✗"
}

func idleSizes(rs []IdleResult) []int {
	var out []int
	seen := map[int]bool{}
	for _, r := range rs {
		if !seen[r.Clients] {
			seen[r.Clients] = true
			out = append(out, r.Clients)
		}
	}
	return out
}

func idleOf(rs []IdleResult, broker string, n int) *IdleResult {
	for i := range rs {
		if rs[i].Broker == broker && rs[i].Clients == n {
			return &rs[i]
		}
	}
	return nil
}

func speedOf(rs []SpeedResult, n int, cmd string) *SpeedResult {
	for i := range rs {
		if rs[i].Devices == n && rs[i].Command == cmd {
			return &rs[i]
		}
	}
	return nil
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func fmtMs(d time.Duration) string {
	v := ms(d)
	switch {
	case d == 0:
		return "–"
	case v < 1:
		return fmt.Sprintf("%.3f", v)
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func fmtInt(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mib(kb int64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }

// Markdown renders the report.
func Markdown(rep *Report) string {
	c := rep.Params
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Benchmark %s: the bundled broker against Mosquitto, and mqttgen's own speed\n\n", rep.Date)
	if c.Quick {
		w("**Smoke run with small counts (`-quick`): not a measurement.**\n\n")
	}
	if c.Profile != "" {
		w("**Profiling run: the bundled broker ran in `mqttbench broker` with CPU profiling on; its figures carry the profiler's cost.**\n\n")
	}
	w("Written by `make bench`. Method, analysis, profiles and next steps: [bench/README.md](../README.md). Raw figures, every run: [%s.json](%s.json).\n\n", rep.Date, rep.Date)

	w("## Conditions\n\n")
	m := rep.Machine
	w("- Machine: %s, %d cores, Linux %s, %s; commit %s (%s).\n", m.CPU, m.Cores, m.Kernel, m.Go, m.Commit, m.TreeState)
	w("- Pinning (taskset): load generator (`mqttbench`, paho.mqtt.golang MQTT 3.1.1 clients) on CPU %s; each broker on CPU %s. Both brokers run during the scenarios, one under load at a time; the other is idle.\n", c.LoadCPU, c.BrokerCPU)
	w("- Brokers: Debian's Mosquitto %s (`mosquitto -c`) and the bundled broker (`mqttgen broker -c`, mochi-mqtt 2.7.9 as kept in third_party/mochi, GOMAXPROCS 1 from the pinning; broker/ and third_party/mochi: %s), on 127.0.0.1, open-file limit %d.\n", rep.Mosquitto, m.BrokerTree, m.FileLimit)
	w("- Files: the bench home (%d devices, a `collector` and a `homeassistant` user, the reference home's patterns) rendered once with `mqttgen render --local`; both brokers read the same passwd and acl. The bundled broker's copy of mosquitto.conf differs in one line:\n\n```diff\n%s```\n\n", BenchDevices, rep.ConfDiff)
	w("- Load average before %s, after %s (1, 5, 15 min).", m.LoadBefore, m.LoadAfter)
	if len(m.Busy) > 0 {
		w(" Other heavy processes at the start%s: %s.", waited(m.Waited), strings.Join(m.Busy, "; "))
	} else {
		w(" No other heavy process (`pgrep -af 'go test|\\.test |go-build'`) at the start%s.", waited(m.Waited))
	}
	if len(m.BusyAfter) > 0 {
		w(" At the end: %s.", strings.Join(m.BusyAfter, "; "))
	}
	w("\n")
	lp := c.Load
	w("- Each row: %d run(s) per broker, the brokers' order alternating, combined (rates averaged, counts and CPU summed, percentiles over all deliveries); each run %s warm-up deliveries; throughput phase closed-loop (at most %d messages published and not yet delivered per subscriber, at most %d QoS 1 and 2 PUBLISH unacknowledged per publisher), at most %s deliveries or %s; latency phase at a fixed %s deliveries/s for %s; a phase waits up to %s without progress for its last deliveries. Whole run %s.\n\n",
		max(1, c.Reps), fmtInt(float64(lp.Warmup)), lp.Outstanding, lp.Inflight, fmtInt(float64(lp.MaxDeliveries)), lp.MaxDuration, fmtInt(float64(lp.LatencyRate)), lp.LatencyDuration, lp.DrainTimeout, rep.Duration.Round(time.Second))

	w("## Targets\n\n| target | this run | met |\n|---|---|---|\n")
	for _, t := range Targets(rep) {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		w("| %s | %s | %s |\n", t.Name, t.Figure, met)
	}
	w("\n")

	w("## Messaging\n\nM = Mosquitto, B = bundled broker, × = B/M. msgs/s counts deliveries to subscribers in the throughput phase; p50/p99 come from the latency phase; CPU is the broker's over the throughput phase (%% of one core, and µs per delivery); RSS at the end of the row; lost counts both phases.\n\n")
	w("| scenario | msgs/s M | msgs/s B | × | p50 ms M / B | p99 ms M / B | p99 × | broker CPU %% M / B | µs/msg M / B | load gen CPU %% M / B | RSS MiB M / B | lost M / B | dup M / B |\n")
	w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, p := range pairs(rep.Rows) {
		if !p.present {
			continue
		}
		mt, bt := p.m.Throughput, p.b.Throughput
		ml, bl := p.m.Latency, p.b.Latency
		w("| %s | %s%s | %s%s | %s | %s / %s | %s / %s | %s | %.0f / %.0f | %.1f / %.1f | %.0f / %.0f | %s / %s | %d / %d | %d / %d |\n",
			p.sc, fmtInt(mt.Rate), loadBound(mt), fmtInt(bt.Rate), loadBound(bt), fmtRatio(ratio(bt.Rate, mt.Rate)),
			fmtMs(ml.P50), fmtMs(bl.P50), fmtMs(ml.P99), fmtMs(bl.P99), fmtRatio(ratio(float64(bl.P99), float64(ml.P99))),
			mt.BrokerCPUPct(), bt.BrokerCPUPct(), mt.CPUPerMsg(), bt.CPUPerMsg(), mt.LoadCPUPct(), bt.LoadCPUPct(),
			mib(p.m.RSSKB), mib(p.b.RSSKB), mt.Lost+ml.Lost, bt.Lost+bl.Lost, mt.Dup+ml.Dup, bt.Dup+bl.Dup)
	}
	w("\n† the load generator was at least 90%% busy: the broker was not the bottleneck, its figure is a lower bound.\n")
	for _, r := range rep.Rows {
		if r.Err != "" {
			w("\n- %s on %s failed: %s", r.Scenario, r.Broker, r.Err)
		}
	}
	w("\n\nThroughput-phase latency (queueing under the window, for reference), p50 / p99 ms:\n\n| scenario | M | B |\n|---|--:|--:|\n")
	for _, p := range pairs(rep.Rows) {
		if p.present {
			w("| %s | %s / %s | %s / %s |\n", p.sc, fmtMs(p.m.Throughput.P50), fmtMs(p.m.Throughput.P99), fmtMs(p.b.Throughput.P50), fmtMs(p.b.Throughput.P99))
		}
	}
	w("\n")

	if len(rep.Idle) > 0 {
		w("## Idle authenticated connections\n\nEach client logs in as one of the %d devices with its generated password (%d CONNECTs at a time), then stays idle; RSS is read before the first CONNECT and %s after the last, on freshly started brokers.\n\n", BenchDevices, IdleConcurrency, c.IdleSettle)
		w("| clients | broker | RSS before MiB | RSS after MiB | KiB per connection | × | connect time | connections/s | broker CPU while connecting |\n|--:|---|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, n := range idleSizes(rep.Idle) {
			mm := idleOf(rep.Idle, "mosquitto", n)
			for _, name := range []string{"mosquitto", "bundled"} {
				r := idleOf(rep.Idle, name, n)
				if r == nil {
					continue
				}
				x := ""
				if name == "bundled" && mm != nil {
					x = fmtRatio(ratio(r.PerConnKB(), mm.PerConnKB()))
				}
				errs := ""
				if r.Err != "" {
					errs = " (" + r.Err + ")"
				}
				w("| %s | %s | %s | %s | %.2f | %s | %s | %s | %s%s |\n", fmtInt(float64(n)), name, mib(r.BeforeKB), mib(r.AfterKB), r.PerConnKB(), x,
					fmtDur(r.ConnectWall), fmtInt(r.ConnectRate()), fmtDur(r.ConnectCPU), errs)
			}
		}
		w("\n")
	}

	if len(rep.Speed) > 0 {
		w("## mqttgen's own speed\n\nGenerated homes shaped like examples/home.cue (three listeners with TLS, presets, patterns) with N devices, each with availability and two entities. Median of %d fresh processes on all cores; peak RSS is the largest of the runs (getrusage of the child). `render (first)` starts from an empty state folder (passwords generated and hashed); `render (again)` keeps the hashes and leaves unchanged files alone; `plan` reads the local Docker engine, where the project is not deployed (a first plan).\n\n", c.Speed.Reps)
		var cmds []string
		seen := map[string]bool{}
		for _, s := range rep.Speed {
			if !seen[s.Command] {
				seen[s.Command] = true
				cmds = append(cmds, s.Command)
			}
		}
		w("| devices |")
		for _, cmd := range cmds {
			w(" %s | peak RSS MiB |", cmd)
		}
		w("\n|--:|")
		for range cmds {
			w("--:|--:|")
		}
		w("\n")
		for _, n := range c.Speed.Sizes {
			w("| %s |", fmtInt(float64(n)))
			for _, cmd := range cmds {
				s := speedOf(rep.Speed, n, cmd)
				switch {
				case s == nil:
					w(" – | – |")
				case s.Err != "":
					w(" error | – |")
				default:
					w(" %s | %s |", fmtDur(s.Median), mib(s.MaxRSSKB))
				}
			}
			w("\n")
		}
		w("\nGrowth (time ratio; 10× the devices each step):\n\n| command |")
		for i := 1; i < len(c.Speed.Sizes); i++ {
			w(" %d → %d |", c.Speed.Sizes[i-1], c.Speed.Sizes[i])
		}
		w(" per extra device, last step |\n|---|")
		for i := 1; i < len(c.Speed.Sizes); i++ {
			w("--:|")
		}
		w("--:|\n")
		for _, cmd := range cmds {
			w("| %s |", cmd)
			var last string
			for i := 1; i < len(c.Speed.Sizes); i++ {
				a, z := speedOf(rep.Speed, c.Speed.Sizes[i-1], cmd), speedOf(rep.Speed, c.Speed.Sizes[i], cmd)
				if a == nil || z == nil || a.Median == 0 || z.Median == 0 {
					w(" – |")
					continue
				}
				w(" %.2f× |", float64(z.Median)/float64(a.Median))
				per := (z.Median - a.Median) / time.Duration(c.Speed.Sizes[i]-c.Speed.Sizes[i-1])
				last = fmt.Sprintf("%.2f ms", float64(per)/float64(time.Millisecond))
			}
			w(" %s |\n", last)
		}
		for _, s := range rep.Speed {
			if s.Err != "" {
				w("\n- %s on %d devices: %s", s.Command, s.Devices, s.Err)
			}
		}
		w("\n")
	}

	if len(rep.Charts) > 0 {
		w("## Charts\n\n")
		for _, ch := range rep.Charts {
			f := filepath.Base(ch)
			w("![%s](%s)\n\n", strings.TrimSuffix(strings.TrimPrefix(f, rep.Date+"-"), ".png"), f)
		}
	}
	if len(rep.Notes) > 0 || len(rep.Profiles) > 0 {
		w("## Notes\n\n")
		for _, n := range rep.Notes {
			w("- %s\n", n)
		}
		if len(rep.Profiles) > 0 {
			w("- Profiles written: %s\n", strings.Join(rep.Profiles, ", "))
		}
		w("\n")
	}
	return b.String()
}

// loadBound marks a throughput the load generator limited.
func loadBound(p Phase) string {
	if p.LoadCPUPct() >= 90 {
		return " †"
	}
	return ""
}

func waited(w string) string {
	if w == "" {
		return ""
	}
	return " (after waiting " + w + ")"
}
