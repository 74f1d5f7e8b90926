// Command mqttbench-broker runs the bundled broker with a profiling
// endpoint, for `mqttbench run -profile` (make bench PROFILE=DIR). It runs
// the broker package through its exported API (conf.Load, broker.New,
// Start, Close: what `mqttgen broker` runs, less the privilege drop); the
// broker package has no profiling hook of its own, so this one lives only
// in the harness.
//
//	mqttbench-broker -c FILE -pprof 127.0.0.1:PORT
//
// Endpoints: net/http/pprof under /debug/pprof/, and /bench/cpu/start?file=F
// and /bench/cpu/stop to profile exactly one phase. It runs until SIGTERM
// or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	rpprof "runtime/pprof"
	"sync"
	"syscall"

	"github.com/mqttgen/mqttgen/broker"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

func main() {
	confPath := flag.String("c", "", "the mosquitto.conf to run")
	addr := flag.String("pprof", "127.0.0.1:6060", "loopback address of the profiling endpoint")
	flag.Parse()
	if *confPath == "" {
		fmt.Fprintln(os.Stderr, "mqttbench-broker: -c FILE is required")
		os.Exit(2)
	}
	if err := serve(*confPath, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "mqttbench-broker:", err)
		os.Exit(1)
	}
}

// serve runs the broker of confPath with the profiling endpoint on
// pprofAddr (loopback only) until SIGTERM or SIGINT.
func serve(confPath, pprofAddr string) error {
	host, _, err := net.SplitHostPort(pprofAddr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-pprof %s: profiling listens on loopback only", pprofAddr)
	}
	c, err := conf.Load(confPath)
	if err != nil {
		return err
	}
	b, err := broker.New(c, broker.Options{Version: "bench-pprof"})
	if err != nil {
		return err
	}
	if err := b.Start(); err != nil {
		b.Close()
		return err
	}
	runtime.SetMutexProfileFraction(100)
	runtime.SetBlockProfileRate(100000)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	var mu sync.Mutex
	var cpuFile *os.File
	mux.HandleFunc("/bench/cpu/start", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cpuFile != nil {
			http.Error(w, "a CPU profile is running", http.StatusConflict)
			return
		}
		f, err := os.Create(r.URL.Query().Get("file"))
		if err == nil {
			err = rpprof.StartCPUProfile(f)
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cpuFile = f
	})
	mux.HandleFunc("/bench/cpu/stop", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if cpuFile == nil {
			http.Error(w, "no CPU profile is running", http.StatusConflict)
			return
		}
		rpprof.StopCPUProfile()
		err := cpuFile.Close()
		cpuFile = nil
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	ln, err := net.Listen("tcp", pprofAddr)
	if err != nil {
		b.Close()
		return err
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	srv.Shutdown(context.Background())
	return b.Close()
}
