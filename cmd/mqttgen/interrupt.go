package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/mqttgen/mqttgen/deploy"
)

// interruptible returns ctx that the first SIGINT or SIGTERM cancels: the
// command finishes or undoes the step in progress. Later signals are refused
// with a line saying why: stopping in the middle of a replacement would
// leave the house without a broker. stop releases the signals.
func interruptible(parent context.Context, stderr io.Writer) (ctx context.Context, got func() os.Signal, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var first atomic.Value
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if first.Load() == nil {
					first.Store(s)
					fmt.Fprintf(stderr, "mqttgen: %s received: finishing or undoing the step in progress, so that the broker is not left stopped...\n", name(s))
					cancel()
					continue
				}
				fmt.Fprintln(stderr, "mqttgen: still restoring the broker, please wait: stopping now would leave the house without one (kill -9 ends mqttgen anyway; mqttgen plan then shows what is left)")
			case <-done:
				return
			}
		}
	}()
	got = func() os.Signal {
		s, _ := first.Load().(os.Signal)
		return s
	}
	return ctx, got, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

func name(s os.Signal) string {
	if s == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}

// signalExit is the exit status of a command ended by s, as shells report it.
func signalExit(s os.Signal) int {
	if s == syscall.SIGTERM {
		return 128 + int(syscall.SIGTERM)
	}
	return 128 + int(syscall.SIGINT)
}

// applyCheckpoint is deploy.Options.Checkpoint for apply: nil, except in
// the tests, which interrupt apply at a step with it.
var applyCheckpoint func(op deploy.Op, step string)
