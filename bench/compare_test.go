package bench

import (
	"strings"
	"testing"
	"time"
)

func TestCompare(t *testing.T) {
	sc := Scenario{Kind: "fan-in", N: 10, QoS: 1, Payload: 64}
	other := Scenario{Kind: "pairs", N: 10, QoS: 0, Payload: 64}
	row := func(broker string, s Scenario, rate float64, cpu time.Duration, p99 time.Duration) Row {
		return Row{Scenario: s, Broker: broker,
			Throughput: Phase{Expected: 100000, Rate: rate, BrokerCPU: cpu},
			Latency:    Phase{Expected: 4000, Lost: 1, P99: p99}}
	}
	before := &Report{
		Rows: []Row{
			row("bundled", sc, 50000, 1800*time.Millisecond, 900*time.Microsecond),
			row("mosquitto", sc, 60000, time.Second, 200*time.Microsecond),
		},
		Idle: []IdleResult{{Broker: "bundled", Clients: 1000, BeforeKB: 1000, AfterKB: 33000}},
	}
	after := &Report{
		Rows: []Row{
			row("bundled", sc, 65000, 1200*time.Millisecond, 300*time.Microsecond),
			row("bundled", other, 1, time.Second, time.Millisecond), // not in before
		},
		Idle: []IdleResult{{Broker: "bundled", Clients: 1000, BeforeKB: 1000, AfterKB: 17000}},
	}
	got := Compare(before, after, "bundled")
	for _, want := range []string{
		"| fan-in 10→1 QoS 1 64B | 50,000 | 65,000 | 1.30× | 18.0 | 12.0 | 0.67× | 0.900 | 0.300 | 1 / 1 |",
		"| 1,000 idle clients | 32.0 | 16.0 | 0.50× |",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("missing line\n%s\nin\n%s", want, got)
		}
	}
	if strings.Contains(got, "pairs") || strings.Contains(got, "| 60,000") {
		t.Errorf("rows of another scenario or broker compared:\n%s", got)
	}
}
