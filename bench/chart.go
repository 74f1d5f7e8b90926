package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Charts draws the throughput, latency and speed charts as PNGs with
// gnuplot (Debian's gnuplot-nox, pngcairo) into dir, from data files
// written to work. It returns the files written.
func Charts(rep *Report, dir, work string) ([]string, error) {
	gp, err := exec.LookPath("gnuplot")
	if err != nil {
		return nil, errNoGnuplot
	}
	var files []string
	plot := func(name, size, script string) error {
		out := filepath.Join(dir, rep.Date+"-"+name+".png")
		sp := filepath.Join(work, name+".gp")
		full := fmt.Sprintf("set terminal pngcairo size %s font \"sans,10\"\nset output %q\n%s", size, out, script)
		if err := os.WriteFile(sp, []byte(full), 0o644); err != nil {
			return err
		}
		if o, err := exec.Command(gp, sp).CombinedOutput(); err != nil {
			return fmt.Errorf("gnuplot %s: %v: %s", name, err, o)
		}
		files = append(files, out)
		return nil
	}
	ps := pairs(rep.Rows)
	var tp, lat strings.Builder
	for _, p := range ps {
		if !p.present {
			continue
		}
		label := fmt.Sprintf("%s %s q%d %s", p.sc.Kind, p.sc.Shape(), p.sc.QoS, sizeName(p.sc.Payload))
		fmt.Fprintf(&tp, "%q %.0f %.0f\n", label, p.m.Throughput.Rate, p.b.Throughput.Rate)
		fmt.Fprintf(&lat, "%q %.4f %.4f %.4f %.4f\n", label, ms(p.m.Latency.P50), ms(p.b.Latency.P50), ms(p.m.Latency.P99), ms(p.b.Latency.P99))
	}
	common := `set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by 35 right nomirror
set grid ytics
set key top right
set bmargin 9
`
	if tp.Len() > 0 {
		dat := filepath.Join(work, "throughput.dat")
		if err := os.WriteFile(dat, []byte(tp.String()), 0o644); err != nil {
			return files, err
		}
		s := common + fmt.Sprintf(`set title "Throughput: deliveries per second, closed loop (%s, pinned one core each)"
set ylabel "deliveries/s"
set yrange [0:*]
set format y "%%.0f"
plot %q using 2:xtic(1) title "Mosquitto %s" lc rgb "#4c72b0", '' using 3 title "bundled broker (mqttgen broker)" lc rgb "#dd8452"
`, rep.Date, dat, rep.Mosquitto)
		if err := plot("throughput", "1500,700", s); err != nil {
			return files, err
		}
		dat = filepath.Join(work, "latency.dat")
		if err := os.WriteFile(dat, []byte(lat.String()), 0o644); err != nil {
			return files, err
		}
		s = common + fmt.Sprintf(`set title "Latency at a fixed %d deliveries/s: p50 and p99 (ms, log scale)"
set ylabel "ms"
set logscale y
plot %q using 2:xtic(1) title "Mosquitto p50" lc rgb "#a1c9f4", '' using 3 title "bundled p50" lc rgb "#ffb482", '' using 4 title "Mosquitto p99" lc rgb "#4c72b0", '' using 5 title "bundled p99" lc rgb "#dd8452"
`, rep.Params.Load.LatencyRate, dat)
		if err := plot("latency", "1500,700", s); err != nil {
			return files, err
		}
	}
	if len(rep.Speed) > 0 {
		cmds := []string{"vet", "render (first)", "render (again)", "plan"}
		var sb strings.Builder
		for _, n := range rep.Params.Speed.Sizes {
			fmt.Fprintf(&sb, "%d", n)
			for _, c := range cmds {
				s := speedOf(rep.Speed, n, c)
				if s == nil || s.Err != "" || s.Median == 0 {
					sb.WriteString(" NaN")
				} else {
					fmt.Fprintf(&sb, " %.4f", s.Median.Seconds())
				}
			}
			sb.WriteString("\n")
		}
		dat := filepath.Join(work, "speed.dat")
		if err := os.WriteFile(dat, []byte(sb.String()), 0o644); err != nil {
			return files, err
		}
		var lines []string
		for i, c := range cmds {
			lines = append(lines, fmt.Sprintf("%q using 1:%d with linespoints lw 2 pt 7 title %q", dat, i+2, c))
		}
		first := rep.Params.Speed.Sizes[0]
		ref := ""
		if s := speedOf(rep.Speed, first, "vet"); s != nil && s.Median > 0 {
			ref = fmt.Sprintf(", (x/%d.0)*%.4f with lines dt 2 lc rgb \"#888888\" title \"linear growth from vet at %d\"", first, s.Median.Seconds(), first)
		}
		s := fmt.Sprintf(`set title "mqttgen's own speed: median wall time (log-log)"
set xlabel "devices"
set ylabel "seconds"
set logscale xy
set grid
set key top left
set xrange [%d*0.8:%d*1.25]
plot %s%s
`, first, rep.Params.Speed.Sizes[len(rep.Params.Speed.Sizes)-1], strings.Join(lines, ", "), ref)
		if err := plot("speed", "900,600", s); err != nil {
			return files, err
		}
	}
	return files, nil
}
