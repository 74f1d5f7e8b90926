// Package bench measures the bundled broker against Debian's Mosquitto on
// the same rendered files, and mqttgen's own speed. `make bench` runs it
// through cmd/mqttbench; bench/README.md explains the method.
package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is one benchmark run.
type Config struct {
	// Mqttgen is the mqttgen binary to render with and to run the bundled
	// broker from; ProfileBroker is cmd/mqttbench-broker, the bundled
	// broker with a profiling endpoint (used with Profile).
	Mqttgen, ProfileBroker string
	// Results is the folder the report goes to; Date names its files.
	Results, Date string
	// LoadCPU is the core this process (the load generator) is pinned to
	// by its caller; BrokerCPU the core both brokers are pinned to.
	LoadCPU, BrokerCPU string
	Scenarios          []Scenario
	Load               LoadParams
	// Reps runs each scenario this many times on each broker, the order
	// of the brokers alternating, and reports the runs combined.
	Reps int
	// Idle lists the idle-connection counts.
	Idle []int
	// IdleSettle is how long idle clients stay connected before RSS is read.
	IdleSettle time.Duration
	Speed      SpeedParams
	// Profile, when set, runs the bundled broker as ProfileBroker, with a
	// profiling endpoint, and writes a CPU profile per row (throughput
	// phase) and a heap profile at each idle peak into that folder.
	Profile string
	// WaitIdle waits up to this long, polling every 30 s, while other
	// heavy processes (go test, test binaries, go builds) run.
	WaitIdle time.Duration
	// Only, when set, runs the scenarios against this broker alone
	// ("mosquitto" or "bundled"), for profiling and investigation.
	Only string
	// BundledCmd, for investigation only, replaces `mqttgen broker` by
	// another program taking -c FILE (the report says so).
	BundledCmd string
	// MosquittoExtra, for investigation only, is appended to a copy of
	// Mosquitto's configuration (the report says so).
	MosquittoExtra string
	// Keep keeps the work folder (homes, rendered files, broker logs).
	Keep bool
	// Quick marks a smoke run in the report.
	Quick bool
	Log   io.Writer
}

// Report is everything a run measured; it is written as Markdown and JSON.
type Report struct {
	Date      string        `json:"date"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	Machine   Machine       `json:"machine"`
	Params    Config        `json:"-"`
	Rows      []Row         `json:"rows"`
	Runs      []Row         `json:"runs"` // every run before combining
	Idle      []IdleResult  `json:"idle"`
	Speed     []SpeedResult `json:"speed"`
	Charts    []string      `json:"charts"`
	Notes     []string      `json:"notes"`
	Profiles  []string      `json:"profiles,omitempty"`
	ConfDiff  string        `json:"conf_diff"`
	WorkDir   string        `json:"work_dir"`
	Mosquitto string        `json:"mosquitto_version"`
}

// Machine is where and in what state the run happened.
type Machine struct {
	CPU        string   `json:"cpu"`
	Cores      int      `json:"cores"`
	Kernel     string   `json:"kernel"`
	Go         string   `json:"go"`
	Commit     string   `json:"commit"`
	TreeState  string   `json:"tree_state"`
	LoadBefore string   `json:"load_before"`
	LoadAfter  string   `json:"load_after"`
	Busy       []string `json:"busy,omitempty"` // heavy processes seen before the run
	BusyAfter  []string `json:"busy_after,omitempty"`
	Waited     string   `json:"waited,omitempty"`
	// BrokerTree identifies the sources the bundled broker was built from
	// (broker/ and third_party/mochi, which change often): the last commit
	// touching them and a digest of the files as they were.
	BrokerTree string `json:"broker_tree"`
	FileLimit  uint64 `json:"file_limit"`
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// Run runs the whole benchmark and writes the report.
func Run(cfg Config) (*Report, error) {
	rep := &Report{Date: cfg.Date, Started: time.Now(), Params: cfg}
	rep.Machine = machine()
	rep.Machine.Busy = busyProcesses()
	if len(rep.Machine.Busy) > 0 && cfg.WaitIdle > 0 {
		waitStart := time.Now()
		for len(rep.Machine.Busy) > 0 && time.Since(waitStart) < cfg.WaitIdle {
			cfg.logf("waiting for other heavy processes to end (%d running): %s", len(rep.Machine.Busy), strings.Join(rep.Machine.Busy, "; "))
			time.Sleep(30 * time.Second)
			rep.Machine.Busy = busyProcesses()
		}
		rep.Machine.Waited = time.Since(waitStart).Round(time.Second).String()
	}
	rep.Machine.LoadBefore = loadavg()
	lim, err := RaiseFileLimit()
	rep.Machine.FileLimit = lim
	if err != nil {
		cfg.logf("raising the open-file limit: %v (limit %d)", err, lim)
	}
	need := 0
	for _, n := range cfg.Idle {
		need = max(need, n)
	}
	if uint64(need)+200 > lim {
		return nil, fmt.Errorf("the open-file limit is %d: %d idle clients need more (ulimit -n)", lim, need)
	}

	work, err := os.MkdirTemp("", "mqttbench-")
	if err != nil {
		return nil, err
	}
	// Mosquitto drops to user mosquitto before it reads passwd and acl:
	// the folder must be searchable by others.
	if err := os.Chmod(work, 0o755); err != nil {
		return nil, err
	}
	rep.WorkDir = work
	if !cfg.Keep {
		defer os.RemoveAll(work)
	}
	cfg.logf("work folder %s", work)

	// The bench homes, each rendered once by the real CLI: the messaging
	// scenarios run on one with deep queues, the idle connections on one
	// with the default limits (a broker's per-client memory depends on
	// max_queued_messages).
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	msgHome, err := prepareHome(cfg, filepath.Join(work, "home"), ports, BenchQueue)
	if err != nil {
		return nil, err
	}
	idleHome, err := prepareHome(cfg, filepath.Join(work, "home-idle"), ports, 0)
	if err != nil {
		return nil, err
	}
	rep.ConfDiff = msgHome.diff
	if cfg.BundledCmd != "" {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Investigation run: the bundled broker's rows ran %s instead of mqttgen broker.", cfg.BundledCmd))
	}
	if cfg.MosquittoExtra != "" {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Investigation run: Mosquitto's configuration had %q appended.", cfg.MosquittoExtra))
	}
	mosqAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	bundledAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	pprofAddr := "127.0.0.1:" + strconv.Itoa(ports[2])
	if cfg.Profile != "" {
		if err := os.MkdirAll(cfg.Profile, 0o755); err != nil {
			return nil, err
		}
	}
	logs := filepath.Join(work, "logs")
	os.MkdirAll(logs, 0o755)
	// Every broker started is stopped when Run returns, whatever happened.
	var started []*Broker
	defer func() {
		for _, x := range started {
			if x.Running() {
				x.Stop()
			}
		}
	}()
	startPair := func(h *benchHome, stage string) (*Broker, *Broker, error) {
		m, err := StartBroker("mosquitto", cfg.BrokerCPU, mosqAddr, filepath.Join(logs, "mosquitto-"+stage+".log"), "mosquitto", "-c", h.mosqConf)
		if err != nil {
			return nil, nil, err
		}
		started = append(started, m)
		argv := []string{cfg.Mqttgen, "broker", "-c", h.bundledConf}
		if cfg.Profile != "" {
			argv = []string{cfg.ProfileBroker, "-c", h.bundledConf, "-pprof", pprofAddr}
		} else if cfg.BundledCmd != "" {
			argv = []string{cfg.BundledCmd, "-c", h.bundledConf}
		}
		b, err := StartBroker("bundled", cfg.BrokerCPU, bundledAddr, filepath.Join(logs, "bundled-"+stage+".log"), argv...)
		if err != nil {
			m.Stop()
			return nil, nil, err
		}
		started = append(started, b)
		return m, b, nil
	}
	stopPair := func(m, b *Broker) {
		for _, x := range []*Broker{m, b} {
			if err := x.Stop(); err != nil {
				rep.Notes = append(rep.Notes, err.Error())
			}
		}
	}

	// Idle connections, each size on freshly started brokers.
	for _, n := range cfg.Idle {
		m, b, err := startPair(idleHome, fmt.Sprintf("idle-%d", n))
		if err != nil {
			return nil, err
		}
		time.Sleep(time.Second)
		for _, x := range []*Broker{m, b} {
			cfg.logf("idle: %d clients on %s", n, x.Name)
			var peak func()
			if x.Name == "bundled" && cfg.Profile != "" {
				file := filepath.Join(cfg.Profile, fmt.Sprintf("idle-%d.heap.pprof", n))
				peak = func() {
					if err := fetch(pprofAddr, "/debug/pprof/heap?gc=1", file); err != nil {
						cfg.logf("heap profile: %v", err)
					} else {
						rep.Profiles = append(rep.Profiles, file)
					}
					// The text form ends with runtime.MemStats: heap and
					// goroutine stacks in use, and how many goroutines.
					stats := strings.TrimSuffix(file, ".pprof") + ".txt"
					if err := fetch(pprofAddr, "/debug/pprof/heap?debug=1", stats); err == nil {
						rep.Profiles = append(rep.Profiles, stats)
					}
					goroutines := strings.TrimSuffix(file, ".heap.pprof") + ".goroutines.txt"
					if err := fetch(pprofAddr, "/debug/pprof/goroutine?debug=1", goroutines); err == nil {
						rep.Profiles = append(rep.Profiles, goroutines)
					}
				}
			}
			r, err := RunIdle(x, n, idleHome.pw, cfg.IdleSettle, peak)
			if err != nil {
				r.Err = err.Error()
			}
			cfg.logf("idle: %s %d clients: RSS %d -> %d KiB, %.2f KiB per connection (anonymous %.2f), %.0f connections/s %s", x.Name, n, r.BeforeKB, r.AfterKB, r.PerConnKB(), r.PerConnAnonKB(), r.ConnectRate(), r.Err)
			rep.Idle = append(rep.Idle, r)
		}
		stopPair(m, b)
	}

	// Scenarios, both brokers in turn, the order alternating row by row.
	if len(cfg.Scenarios) > 0 {
		m, b, err := startPair(msgHome, "scenarios")
		if err != nil {
			return nil, err
		}
		rep.Mosquitto = mosquittoVersion(m.Log)
		for i, sc := range cfg.Scenarios {
			runs := map[string][]Row{}
			for k := range max(1, cfg.Reps) {
				order := []*Broker{m, b}
				if (i+k)%2 == 1 {
					order = []*Broker{b, m}
				}
				for _, x := range order {
					if cfg.Only != "" && x.Name != cfg.Only {
						continue
					}
					var hooks Hooks
					if x.Name == "bundled" && cfg.Profile != "" {
						file := filepath.Join(cfg.Profile, fmt.Sprintf("%s-%d.cpu.pprof", sc.ID(), k))
						hooks.BeforeThroughput = func() error { return profileCall(pprofAddr, "/bench/cpu/start?file="+file) }
						hooks.AfterThroughput = func() error {
							rep.Profiles = append(rep.Profiles, file)
							if err := profileCall(pprofAddr, "/bench/cpu/stop"); err != nil {
								return err
							}
							// Allocations since the broker started (cumulative:
							// compare two rows with pprof -base).
							allocs := filepath.Join(cfg.Profile, fmt.Sprintf("%s-%d.allocs.pprof", sc.ID(), k))
							if err := fetch(pprofAddr, "/debug/pprof/allocs", allocs); err != nil {
								return err
							}
							rep.Profiles = append(rep.Profiles, allocs)
							return nil
						}
					}
					row, err := RunScenario(x, sc, cfg.Load, msgHome.pw, fmt.Sprintf("b%dr%d", i, k), hooks)
					if err != nil {
						row.Err = err.Error()
					}
					t, l := row.Throughput, row.Latency
					cfg.logf("%-28s %-9s %9.0f msg/s  p50 %6.2f ms p99 %6.2f ms (paced)  broker CPU %3.0f%% %5.2f µs/msg  load CPU %3.0f%%  lost %d/%d dup %d/%d corrupt %d/%d stalls %d/%d  RSS %d KiB %s",
						sc, x.Name, t.Rate, ms(l.P50), ms(l.P99), t.BrokerCPUPct(), t.CPUPerMsg(), t.LoadCPUPct(), t.Lost, l.Lost, t.Dup, l.Dup, t.Corrupt, l.Corrupt, t.Stalls, l.Stalls, row.RSSKB, row.Err)
					rep.Runs = append(rep.Runs, row)
					runs[x.Name] = append(runs[x.Name], row)
					if !x.Running() {
						rep.Notes = append(rep.Notes, fmt.Sprintf("%s exited during %s: restarted", x.Name, sc))
						stopPair(m, b)
						if m, b, err = startPair(msgHome, fmt.Sprintf("scenarios-%d-%d", i, k)); err != nil {
							return nil, err
						}
					}
				}
			}
			for _, name := range []string{"mosquitto", "bundled"} {
				if len(runs[name]) > 0 {
					rep.Rows = append(rep.Rows, CombineRows(runs[name]))
				}
			}
		}
		stopPair(m, b)
	}

	// mqttgen's own speed, with the brokers stopped.
	if len(cfg.Speed.Sizes) > 0 {
		rep.Speed = RunSpeed(cfg.Mqttgen, work, cfg.Speed, cfg.logf)
	}
	rep.Machine.LoadAfter = loadavg()
	rep.Machine.BusyAfter = busyProcesses()
	rep.Duration = time.Since(rep.Started)

	if err := os.MkdirAll(cfg.Results, 0o755); err != nil {
		return rep, err
	}
	rep.Charts, err = Charts(rep, cfg.Results, work)
	if err != nil {
		rep.Notes = append(rep.Notes, "charts: "+err.Error())
		cfg.logf("charts: %v", err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return rep, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Results, cfg.Date+".json"), append(js, '\n'), 0o644); err != nil {
		return rep, err
	}
	md := Markdown(rep)
	if err := os.WriteFile(filepath.Join(cfg.Results, cfg.Date+".md"), []byte(md), 0o644); err != nil {
		return rep, err
	}
	cfg.logf("wrote %s", filepath.Join(cfg.Results, cfg.Date+".md"))
	return rep, nil
}

// benchHome is a bench home rendered for both brokers.
type benchHome struct {
	dir                   string
	mosqConf, bundledConf string
	pw                    map[string]string
	diff                  string
}

// prepareHome writes a bench home into dir, vets and renders it with
// `mqttgen render --local` into dir/out, writes the bundled broker's copy
// of mosquitto.conf (the listener moved from ports[0] to ports[1]) and
// reads the generated passwords.
func prepareHome(cfg Config, dir string, ports []int, queue int) (*benchHome, error) {
	out := filepath.Join(dir, "out")
	if err := WriteBenchHome(dir, ports[0], queue); err != nil {
		return nil, err
	}
	for _, args := range [][]string{{"vet", dir}, {"render", dir, "--local", "-o", out}} {
		if o, err := exec.Command(cfg.Mqttgen, args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("mqttgen %s: %v\n%s", strings.Join(args, " "), err, o)
		}
	}
	h := &benchHome{dir: dir, mosqConf: filepath.Join(out, "config", "mosquitto.conf"), bundledConf: filepath.Join(out, "config", "mosquitto-bundled.conf")}
	var err error
	if h.diff, err = portCopy(h.mosqConf, h.bundledConf, ports[0], ports[1]); err != nil {
		return nil, err
	}
	if cfg.MosquittoExtra != "" {
		data, err := os.ReadFile(h.mosqConf)
		if err != nil {
			return nil, err
		}
		h.mosqConf = filepath.Join(out, "config", "mosquitto-extra.conf")
		if err := os.WriteFile(h.mosqConf, append(data, []byte("\n"+cfg.MosquittoExtra+"\n")...), 0o644); err != nil {
			return nil, err
		}
	}
	if h.pw, err = Passwords(dir); err != nil {
		return nil, err
	}
	return h, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// portCopy writes the Mosquitto configuration at src to dst with the
// listener line moved from port a to port b: the only difference between
// the two brokers' files. It returns the difference as a diff.
func portCopy(src, dst string, a, b int) (string, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	old := fmt.Sprintf("listener %d 127.0.0.1\n", a)
	repl := fmt.Sprintf("listener %d 127.0.0.1\n", b)
	if bytes.Count(data, []byte(old)) != 1 {
		return "", fmt.Errorf("%s: expected one line %q", src, strings.TrimSpace(old))
	}
	if err := os.WriteFile(dst, bytes.Replace(data, []byte(old), []byte(repl), 1), 0o644); err != nil {
		return "", err
	}
	return fmt.Sprintf("-%s+%s", old, repl), nil
}

// fetch saves an endpoint's answer to file.
func fetch(addr, path, file string) error {
	resp, err := httpGet("http://" + addr + path)
	if err != nil {
		return err
	}
	return os.WriteFile(file, resp, 0o644)
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	// The machine has as many cores as are online, not as this process
	// may use (it is pinned).
	if data, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		m.Cores = countCPUs(strings.TrimSpace(string(data)))
	}
	if o, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(o))
	}
	m.BrokerTree = brokerTree()
	if o, err := exec.Command("git", "status", "--porcelain").Output(); err == nil {
		if s := strings.TrimSpace(string(o)); s != "" {
			var paths []string
			for _, l := range strings.Split(s, "\n") {
				if f := strings.Fields(l); len(f) > 0 {
					paths = append(paths, f[len(f)-1])
				}
			}
			if len(paths) > 12 {
				paths = append(paths[:12], fmt.Sprintf("and %d more", len(paths)-12))
			}
			m.TreeState = "uncommitted: " + strings.Join(paths, ", ")
		} else {
			m.TreeState = "clean"
		}
	}
	return m
}

// brokerDirs are the sources of the bundled broker: its package and the
// engine mqttgen keeps.
var brokerDirs = []string{"broker", "third_party/mochi"}

// brokerTree names the bundled broker's sources: the last commit that
// touched them and a SHA-256 over every file under brokerDirs (path and
// content).
func brokerTree() string {
	commit := "?"
	if o, err := exec.Command("git", append([]string{"log", "-1", "--format=%h", "--"}, brokerDirs...)...).Output(); err == nil && len(o) > 0 {
		commit = strings.TrimSpace(string(o))
	}
	h := sha256.New()
	n := 0
	for _, dir := range brokerDirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			fmt.Fprintf(h, "%s\x00%d\x00", p, len(data))
			h.Write(data)
			n++
			return nil
		})
	}
	state := "as committed"
	if o, err := exec.Command("git", append([]string{"status", "--porcelain", "--"}, brokerDirs...)...).Output(); err == nil && len(bytes.TrimSpace(o)) > 0 {
		state = "with uncommitted changes"
	}
	return fmt.Sprintf("last commit %s, %s; %d files, sha256 %x", commit, state, n, h.Sum(nil)[:6])
}

// countCPUs counts a list like "0-1" or "0,2-3".
func countCPUs(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		if !ok {
			if err1 == nil {
				n++
			}
			continue
		}
		b, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && b >= a {
			n += b - a + 1
		}
	}
	return n
}

func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// busyProcesses lists other heavy processes: test runs, test binaries and
// Go builds (pgrep -af 'go test|\.test |go-build').
func busyProcesses() []string {
	o, err := exec.Command("pgrep", "-af", `go test|\.test |go-build`).Output()
	if err != nil {
		return nil // pgrep exits 1 when nothing matches
	}
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(o)), "\n") {
		if l == "" || strings.HasPrefix(l, self+" ") || strings.Contains(l, "pgrep") {
			continue
		}
		if len(l) > 140 {
			l = l[:140] + "…"
		}
		out = append(out, l)
	}
	return out
}

// mosquittoVersion reads "mosquitto version X starting" from a log.
func mosquittoVersion(log string) string {
	data, _ := os.ReadFile(log)
	for _, l := range strings.Split(string(data), "\n") {
		if i := strings.Index(l, "mosquitto version "); i >= 0 {
			return strings.TrimSuffix(strings.TrimSpace(l[i+len("mosquitto version "):]), " starting")
		}
	}
	return "?"
}

var errNoGnuplot = errors.New("gnuplot is not installed (apt-get install gnuplot-nox): no charts")
