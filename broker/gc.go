package broker

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The garbage collector's target. mochi allocates several copies of every
// message it routes; with Go's default (GOGC=100) and the few megabytes a
// home broker keeps live, that meant a collection every 75 ms under load,
// 13–30% of the broker's CPU and its worst latencies (bench/README.md).
// While the live heap is small the broker lets it grow up to 4 times
// further before collecting, but never by more than gcHeadroom, and never
// less than Go's default: 3 MiB live collects at 15 MiB, 32 MiB at 96 MiB,
// 64 MiB or more as Go's default would. GOGC in the environment turns this
// off; GOMEMLIMIT applies either way.
const (
	gcHeadroom   = 64 << 20
	gcMinPercent = 100
	gcMaxPercent = 400
)

// gcPercent is the GOGC value for a live heap of live bytes.
func gcPercent(live uint64) int {
	if live == 0 {
		return gcMaxPercent
	}
	return int(min(max(gcHeadroom*100/live, gcMinPercent), gcMaxPercent))
}

var (
	gcTuning sync.Once
	// gcSet is the last value set; only the cleanup goroutine uses it.
	gcSet int
)

// tuneGC sets the collector's target now and after every collection, for
// the rest of the process, unless GOGC is set.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	gcTuning.Do(func() {
		gcSet = gcMaxPercent
		debug.SetGCPercent(gcSet)
		armGCTuner()
	})
}

// gcSentinel is garbage as soon as it is allocated: its cleanup runs after
// the next collection. It is large enough not to share a tiny block.
type gcSentinel [32]byte

func armGCTuner() {
	runtime.AddCleanup(new(gcSentinel), func(struct{}) {
		if live, ok := runtimeMetric("/gc/heap/live:bytes"); ok {
			if p := gcPercent(live); p != gcSet {
				gcSet = p
				debug.SetGCPercent(p)
			}
		}
		armGCTuner()
	}, struct{}{})
}

// trimInterval is how often the broker looks for a quiet moment to give
// memory back; trimMinAlloc is how much must have been allocated since the
// last time for a collection to be worth it, and trimSpacing how long
// after the last time it may come again (a large broker whose traffic
// pauses every other second would otherwise collect every other second).
const (
	trimInterval = time.Second
	trimMinAlloc = 4 << 20
	trimSpacing  = 10 * time.Second
)

// trimLoop gives memory back to the system once the broker falls quiet
// after activity (no packet and no new connection for trimInterval): it
// collects, which is the only time Go shrinks the goroutine stacks that
// grew while clients connected or sent bursts, and returns the freed pages.
// With the collector's target raised for throughput (above), a burst's
// garbage and its clients' grown stacks would otherwise stay resident until
// the next collection, which an idle broker does not reach: 10,000 clients
// connecting at once left 18 KiB each resident where their idle cost is
// about 7 KiB (docs/broker.md, Memory per idle connection).
func (b *Broker) trimLoop() {
	defer b.wg.Done()
	t := time.NewTicker(trimInterval)
	defer t.Stop()
	last, trimmed := b.activity(), heapAllocs()
	var lastTrim time.Time
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
		}
		a := b.activity()
		if a != last {
			last = a
			continue
		}
		if heapAllocs()-trimmed < trimMinAlloc || time.Since(lastTrim) < trimSpacing {
			continue
		}
		// A collection halves a stack at most once: two, then the one
		// FreeOSMemory makes, bring a 16 KiB stack down to 4 KiB.
		runtime.GC()
		runtime.GC()
		debug.FreeOSMemory()
		trimmed, lastTrim = heapAllocs(), time.Now()
	}
}

// activity changes whenever a packet is read or written or a connection
// is accepted.
func (b *Broker) activity() int64 {
	return atomic.LoadInt64(&b.srv.Info.PacketsReceived) + atomic.LoadInt64(&b.srv.Info.PacketsSent) + b.stats.sockets.Load()
}

// heapAllocs is the number of bytes allocated since the process started.
func heapAllocs() uint64 {
	n, _ := runtimeMetric("/gc/heap/allocs:bytes")
	return n
}

// runtimeMetric reads one of the runtime's uint64 metrics.
func runtimeMetric(name string) (uint64, bool) {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return s[0].Value.Uint64(), true
}
