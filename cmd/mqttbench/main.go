// Command mqttbench is mqttgen's benchmark: the bundled broker against
// Debian's Mosquitto on the same rendered files, and mqttgen's own speed.
// `make bench` runs it; bench/README.md explains the method.
//
//	mqttbench [run] [flags]
//	mqttbench compare [-broker bundled] BEFORE.json AFTER.json
//
// It pins itself to -load-cpu. With -profile DIR the bundled broker runs
// as cmd/mqttbench-broker (-profile-broker) with a profiling
// endpoint, and CPU and heap profiles are written into DIR.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqttgen/mqttgen/bench"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "compare" {
		compare(args[1:])
		return
	}
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	mqttgen := fs.String("mqttgen", "bin/mqttgen", "the mqttgen binary")
	results := fs.String("results", "bench/results", "folder of the report")
	date := fs.String("date", time.Now().Format("2006-01-02"), "names the report's files")
	loadCPU := fs.Int("load-cpu", 0, "core of the load generator (this process)")
	brokerCPU := fs.Int("broker-cpu", 1, "core of the brokers")
	quick := fs.Bool("quick", false, "smoke run: small counts, small homes")
	only := fs.String("only", "", "run only scenarios whose id (e.g. fan-in-q1-64B) matches this regexp")
	idle := fs.String("idle", "1000,10000", "idle connection counts, comma-separated (empty: none)")
	speed := fs.String("speed", "10,100,1000", "device counts of mqttgen's speed homes (empty: none)")
	reps := fs.Int("reps", 3, "runs of each mqttgen command")
	scenarioReps := fs.Int("scenario-reps", 2, "runs of each scenario on each broker (combined; the order alternates)")
	n := fs.Int("n", 10, "publishers (fan-in, pairs) or subscribers (fan-out) per scenario")
	profile := fs.String("profile", "", "run the bundled broker profiled; write CPU and heap profiles into this folder")
	profBroker := fs.String("profile-broker", "bin/mqttbench-broker", "the profiled broker binary (go build ./cmd/mqttbench-broker)")
	waitIdle := fs.Duration("wait-idle", 20*time.Minute, "wait this long at most for other heavy processes (go test, go builds) to end")
	inflight := fs.Int("inflight", 10, "QoS 1 and 2 PUBLISH unacknowledged per publisher, at most (Mosquitto's max_inflight_messages)")
	onlyBroker := fs.String("broker", "", "run the scenarios against this broker alone: mosquitto or bundled (investigation, profiling)")
	plain := fs.Bool("plain-conn", false, "give paho its own unbuffered connections (checks a finding against the load generator)")
	bundledCmd := fs.String("bundled-cmd", "", "investigation only: run this program (taking -c FILE) instead of mqttgen broker")
	mosqExtra := fs.String("mosquitto-extra", "", "investigation only: a line appended to Mosquitto's copy of the configuration")
	keep := fs.Bool("keep", false, "keep the work folder (homes, rendered files, broker logs)")
	fs.Parse(args)

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		// A smoke run never overwrites the day's real results, and stays
		// small unless told otherwise.
		if !set["date"] {
			*date += "-quick"
		}
		if !set["idle"] {
			*idle = "300"
		}
		if !set["speed"] {
			*speed = "10,100"
		}
	}
	pinSelf(*loadCPU)
	// The load generator allocates a payload per message: collect less
	// often (memory is plentiful, CPU is one core).
	debug.SetGCPercent(400)

	bin, err := filepath.Abs(*mqttgen)
	if err != nil {
		fail(err)
	}
	pb, err := filepath.Abs(*profBroker)
	if err != nil {
		fail(err)
	}
	cfg := bench.Config{
		Mqttgen: bin, ProfileBroker: pb, Results: *results, Date: *date,
		LoadCPU: strconv.Itoa(*loadCPU), BrokerCPU: strconv.Itoa(*brokerCPU),
		Load: bench.LoadParams{
			Warmup: 2000, MaxDeliveries: 200000, MaxDuration: 4 * time.Second, Outstanding: 500,
			LatencyRate: 2000, LatencyDuration: 2 * time.Second, DrainTimeout: 3 * time.Second,
		},
		IdleSettle: 3 * time.Second,
		Speed:      bench.SpeedParams{Reps: *reps, CPUs: allCPUs()},
		Profile:    *profile, WaitIdle: *waitIdle, Keep: *keep, Quick: *quick, Log: os.Stderr,
	}
	if *quick {
		cfg.Load = bench.LoadParams{Warmup: 200, MaxDeliveries: 5000, MaxDuration: time.Second, Outstanding: 500,
			LatencyRate: 1000, LatencyDuration: 500 * time.Millisecond, DrainTimeout: 2 * time.Second}
		cfg.IdleSettle = time.Second
		cfg.Speed.Reps = 1
	}
	cfg.Load.Inflight = *inflight
	cfg.Reps = *scenarioReps
	if *quick {
		cfg.Reps = 1
	}
	cfg.Only = *onlyBroker
	cfg.MosquittoExtra = *mosqExtra
	cfg.BundledCmd = *bundledCmd
	bench.PlainConn = *plain
	if os.Getenv("MQTTBENCH_DEBUG") != "" {
		bench.SetDebug(func(format string, args ...any) { fmt.Fprintf(os.Stderr, "debug: "+format+"\n", args...) })
	}
	var re *regexp.Regexp
	if *only != "" {
		if re, err = regexp.Compile(*only); err != nil {
			fail(err)
		}
	}
	for _, kind := range []string{"fan-in", "fan-out", "pairs"} {
		for _, qos := range []byte{0, 1, 2} {
			for _, size := range []int{64, 4096} {
				sc := bench.Scenario{Kind: kind, N: *n, QoS: qos, Payload: size}
				if re == nil || re.MatchString(sc.ID()) {
					cfg.Scenarios = append(cfg.Scenarios, sc)
				}
			}
		}
	}
	if cfg.Idle, err = ints(*idle); err != nil {
		fail(err)
	}
	if cfg.Speed.Sizes, err = ints(*speed); err != nil {
		fail(err)
	}
	if _, err := bench.Run(cfg); err != nil {
		fail(err)
	}
}

// pinSelf makes sure this process runs on cpu alone: if it is not pinned
// there yet, it runs itself again under taskset (affinity set at exec, so
// the Go runtime sizes GOMAXPROCS to 1 from the start).
func pinSelf(cpu int) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() == 1 && set.IsSet(cpu) {
		return
	}
	if os.Getenv("MQTTBENCH_PINNED") != "" {
		fmt.Fprintf(os.Stderr, "mqttbench: could not pin the load generator to CPU %d\n", cpu)
		return
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		fail(fmt.Errorf("taskset (util-linux) is needed to pin the load generator: %w", err))
	}
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	argv := append([]string{"taskset", "-c", strconv.Itoa(cpu), self}, os.Args[1:]...)
	fail(syscall.Exec(taskset, argv, append(os.Environ(), "MQTTBENCH_PINNED=1")))
}

// allCPUs is the machine's online CPU list, for commands that must not be
// pinned (mqttgen's own speed).
func allCPUs() string {
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return "0"
	}
	return strings.TrimSpace(string(data))
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mqttbench:", err)
	os.Exit(1)
}

// compare prints one broker's figures from two results files side by side,
// as Markdown: before and after a change to the broker.
func compare(args []string) {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	broker := fs.String("broker", "bundled", "the broker whose rows are compared")
	fs.Parse(args)
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: mqttbench compare [-broker bundled] BEFORE.json AFTER.json")
		os.Exit(2)
	}
	before, err := bench.ReadReport(fs.Arg(0))
	if err == nil {
		var after *bench.Report
		if after, err = bench.ReadReport(fs.Arg(1)); err == nil {
			fmt.Print(bench.Compare(before, after, *broker))
			return
		}
	}
	fmt.Fprintln(os.Stderr, "mqttbench compare:", err)
	os.Exit(1)
}
