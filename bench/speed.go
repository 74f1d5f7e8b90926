package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SpeedResult is one mqttgen command on one home size.
type SpeedResult struct {
	Devices int             `json:"devices"`
	Command string          `json:"command"` // vet, render (first), render (again), plan
	Runs    []time.Duration `json:"runs_ns"`
	Median  time.Duration   `json:"median_ns"`
	// MaxRSSKB is the largest peak RSS of the runs (getrusage of the child).
	MaxRSSKB int64  `json:"max_rss_kb"`
	Err      string `json:"error,omitempty"`
}

// SpeedParams choose the home sizes and repetitions.
type SpeedParams struct {
	Sizes []int
	Reps  int
	// CPUs the commands may run on (all of the machine's: a user's
	// mqttgen is not pinned).
	CPUs string
}

// RunSpeed times `mqttgen vet`, `render` (first, with fresh state: passwords
// generated and hashed; and again: hashes kept, unchanged files not
// rewritten) and `plan` (against the engine DOCKER_HOST names, default the
// local one; the project is deployed nowhere, so this is a first plan) on
// generated homes of each size, each Reps times, in fresh processes.
func RunSpeed(mqttgen, work string, sp SpeedParams, logf func(string, ...any)) []SpeedResult {
	var out []SpeedResult
	for _, n := range sp.Sizes {
		dir := filepath.Join(work, fmt.Sprintf("speed-%d", n))
		if err := WriteSpeedHome(dir, n, fmt.Sprintf("mqttbench-speed-%d", n)); err != nil {
			out = append(out, SpeedResult{Devices: n, Command: "vet", Err: err.Error()})
			continue
		}
		outDir := filepath.Join(dir, "out")
		fresh := func() error {
			if err := os.RemoveAll(filepath.Join(dir, ".mqttgen")); err != nil {
				return err
			}
			return os.RemoveAll(outDir)
		}
		cmds := []struct {
			name  string
			args  []string
			setup func() error
		}{
			{"vet", []string{"vet", dir}, nil},
			{"render (first)", []string{"render", dir, "-o", outDir}, fresh},
			{"render (again)", []string{"render", dir, "-o", outDir}, nil},
			{"plan", []string{"plan", dir}, nil},
		}
		for _, c := range cmds {
			r := SpeedResult{Devices: n, Command: c.name}
			for range sp.Reps {
				if c.setup != nil {
					if err := c.setup(); err != nil {
						r.Err = err.Error()
						break
					}
				}
				d, rss, err := timeCommand(sp.CPUs, mqttgen, c.args...)
				if err != nil {
					r.Err = err.Error()
					break
				}
				r.Runs = append(r.Runs, d)
				r.MaxRSSKB = max(r.MaxRSSKB, rss)
			}
			if len(r.Runs) > 0 {
				s := slices.Clone(r.Runs)
				slices.Sort(s)
				r.Median = s[len(s)/2]
			}
			if logf != nil {
				logf("speed: %4d devices %-15s median %v peak RSS %d KiB %s", n, c.name, r.Median.Round(time.Millisecond), r.MaxRSSKB, r.Err)
			}
			out = append(out, r)
		}
	}
	return out
}

// timeCommand runs name args on cpus and returns its wall time and peak
// RSS. The RSS comes from /usr/bin/time (%M, getrusage of its child): the
// rusage Go gets for its own children would report this process's RSS,
// which the child inherits in its high-water mark until exec.
func timeCommand(cpus, name string, args ...string) (time.Duration, int64, error) {
	f, err := os.CreateTemp("", "mqttbench-time-")
	if err != nil {
		return 0, 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	argv := append([]string{"-f", "%M", "-o", f.Name(), "taskset", "-c", cpus, name}, args...)
	cmd := exec.Command("/usr/bin/time", argv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, 0, fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return d, 0, err
	}
	rss, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return d, 0, fmt.Errorf("/usr/bin/time wrote %q", data)
	}
	return d, rss, nil
}
