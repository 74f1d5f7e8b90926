package broker

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 400},
		{3 << 20, 400},
		{16 << 20, 400},
		{32 << 20, 200},
		{64 << 20, 100},
		{1 << 30, 100},
	} {
		if got := gcPercent(c.live); got != c.want {
			t.Errorf("gcPercent(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

func currentGCPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// After each collection the target follows the live heap: 400 while it is
// small, Go's default once it is large.
func TestTuneGCFollowsLiveHeap(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Fatal("GOGC is set in the test's environment: the tuner is off by design")
	}
	tuneGC()
	defer debug.SetGCPercent(gcMaxPercent)
	waitPercent := func(want int) {
		t.Helper()
		for range 50 {
			runtime.GC()
			if currentGCPercent() == want {
				return
			}
		}
		t.Fatalf("GOGC = %d after 50 collections, want %d", currentGCPercent(), want)
	}
	waitPercent(400)
	live := make([][]byte, 160)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	waitPercent(100)
	runtime.KeepAlive(live)
	live = nil
	waitPercent(400)
}
