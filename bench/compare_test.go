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

func TestTargetsCPUAndIdle(t *testing.T) {
	row := func(broker string, s Scenario, cpu time.Duration) Row {
		return Row{Scenario: s, Broker: broker, Throughput: Phase{Expected: 100000, BrokerCPU: cpu}}
	}
	q1 := Scenario{Kind: "fan-out", N: 10, QoS: 1, Payload: 4096}
	q0 := Scenario{Kind: "pairs", N: 10, QoS: 0, Payload: 64}
	q2 := Scenario{Kind: "pairs", N: 10, QoS: 2, Payload: 64}
	rep := &Report{
		Rows: []Row{
			row("bundled", q1, 900*time.Millisecond), row("mosquitto", q1, time.Second),
			row("bundled", q0, 1100*time.Millisecond), row("mosquitto", q0, time.Second),
			row("bundled", q2, 9*time.Second), row("mosquitto", q2, time.Second), // QoS 2: not a target row
		},
		Idle: []IdleResult{
			{Broker: "bundled", Clients: 1000, BeforeKB: 0, AfterKB: 9000},
			{Broker: "mosquitto", Clients: 1000, BeforeKB: 0, AfterKB: 1000},
		},
	}
	got := map[string]Target{}
	for _, tg := range Targets(rep) {
		got[tg.Name[:12]] = tg
	}
	cpu := got["CPU per deli"]
	if cpu.Met || !strings.Contains(cpu.Figure, "worst 1.10× (pairs 10→10 QoS 0 64B)") || strings.Contains(cpu.Figure, "QoS 2") ||
		!strings.Contains(cpu.Figure, "0.90×") {
		t.Errorf("CPU target: %+v", cpu)
	}
	if idle := got["RSS per idle"]; !idle.Met || !strings.Contains(idle.Name, "10×") {
		t.Errorf("idle target: %+v", idle)
	}
}
