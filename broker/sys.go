package broker

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// clearMochiSys removes the retained $SYS messages mochi publishes once at
// start under its own names; the broker publishes Mosquitto's instead.
func (b *Broker) clearMochiSys() {
	for topic := range b.srv.Topics.Retained.GetAll() {
		if strings.HasPrefix(topic, "$SYS/") {
			b.srv.Topics.Retained.Delete(topic)
		}
	}
	atomic.StoreInt64(&b.srv.Info.Retained, int64(b.srv.Topics.Retained.Len()))
}

// sysLoop publishes the $SYS topics Mosquitto publishes, retained, every
// sys interval, each only when its value changed.
func (b *Broker) sysLoop() {
	defer b.wg.Done()
	s := b.sys
	s.publish(time.Now())
	t := time.NewTicker(b.opts.SysInterval)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case now := <-t.C:
			s.publish(now)
		}
	}
}

func newSysTree(b *Broker) *sysTree {
	return &sysTree{b: b, last: map[string]string{}, loads: map[string]*[3]float64{}}
}

// sysTree computes the broker's $SYS values, for the $SYS topics and for
// /metrics.
type sysTree struct {
	b *Broker
	// mu guards what follows: sysLoop and /metrics both read the values.
	mu       sync.Mutex
	last     map[string]string
	prev     map[string]int64
	prevTime time.Time
	loads    map[string]*[3]float64
	heapMax  uint64
}

// sysValue is one $SYS topic (under $SYS/broker/) and its value.
type sysValue struct {
	topic, value string
}

// loadNames are the load averages, as they appear under load/.
var loadNames = []string{"messages/received", "messages/sent", "publish/received", "publish/sent", "publish/dropped", "bytes/received", "bytes/sent", "sockets", "connections"}

// values reads the current values and the counters of the load averages.
// It holds s.mu.
func (s *sysTree) values(now time.Time) ([]sysValue, map[string]int64) {
	b := s.b
	info := b.srv.Info
	inline := b.stats.inline.Load()
	load := func(p *int64) int64 { return atomic.LoadInt64(p) }

	connected := load(&info.ClientsConnected)
	total := int64(b.srv.Clients.Len() - 1) // without the inline client
	disconnected := max(total-connected, 0)
	retained := b.srv.Topics.Retained.GetAll()
	var retainedBytes int64
	for _, pk := range retained {
		retainedBytes += int64(len(pk.Payload))
	}
	stored := load(&info.Inflight) + int64(len(retained))
	for _, br := range b.bridges {
		// What a bridge holds for its remote while the link is down, as
		// Mosquitto counts a bridge's queue in its store.
		stored += int64(len(br.out))
	}

	counters := map[string]int64{
		"messages/received":         max(load(&info.PacketsReceived)-inline, 0),
		"messages/sent":             load(&info.PacketsSent),
		"publish/messages/received": max(load(&info.MessagesReceived)-inline, 0),
		"publish/messages/sent":     load(&info.MessagesSent),
		"publish/messages/dropped":  b.stats.dropped.Load() + load(&info.InflightDropped),
		"bytes/received":            load(&info.BytesReceived),
		"bytes/sent":                load(&info.BytesSent),
		"sockets":                   b.stats.sockets.Load(),
		"connections":               b.stats.connections.Load(),
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heapMax = max(s.heapMax, ms.HeapAlloc)

	itoa := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []sysValue{
		{"version", fmt.Sprintf("mqttgen version %s (mochi-mqtt %s)", b.opts.Version, mochiVersion)},
		{"uptime", fmt.Sprintf("%d seconds", int64(now.Sub(b.started).Seconds()))},
		{"clients/total", itoa(total)},
		{"clients/connected", itoa(connected)},
		{"clients/active", itoa(connected)},
		{"clients/disconnected", itoa(disconnected)},
		{"clients/inactive", itoa(disconnected)},
		{"clients/maximum", itoa(max(load(&info.ClientsMaximum), connected))},
		{"clients/expired", itoa(b.stats.expired.Load())},
		{"heap/current", strconv.FormatUint(ms.HeapAlloc, 10)},
		{"heap/maximum", strconv.FormatUint(s.heapMax, 10)},
		{"messages/received", itoa(counters["messages/received"])},
		{"messages/sent", itoa(counters["messages/sent"])},
		{"messages/stored", itoa(stored)},
		{"store/messages/count", itoa(stored)},
		{"store/messages/bytes", itoa(retainedBytes)},
		{"publish/messages/received", itoa(counters["publish/messages/received"])},
		{"publish/messages/sent", itoa(counters["publish/messages/sent"])},
		{"publish/messages/dropped", itoa(counters["publish/messages/dropped"])},
		{"publish/bytes/received", itoa(b.stats.publishBytesIn.Load())},
		{"publish/bytes/sent", itoa(b.stats.publishBytesOut.Load())},
		{"bytes/received", itoa(counters["bytes/received"])},
		{"bytes/sent", itoa(counters["bytes/sent"])},
		{"retained messages/count", itoa(int64(len(retained)))},
		{"subscriptions/count", itoa(load(&info.Subscriptions))},
	}, counters
}

func (s *sysTree) put(topic, value string) {
	if s.last[topic] == value {
		return
	}
	s.last[topic] = value
	s.b.stats.inline.Add(1)
	s.b.srv.Publish("$SYS/broker/"+topic, []byte(value), true, 0)
}

func (s *sysTree) publish(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vals, counters := s.values(now)
	for _, v := range vals {
		s.put(v.topic, v.value)
	}

	// Load averages, as Mosquitto computes them: per-minute rates smoothed
	// over 1, 5 and 15 minutes.
	if s.prev != nil {
		dt := now.Sub(s.prevTime).Seconds()
		if dt > 0 {
			for _, name := range loadNames {
				key := name
				if strings.HasPrefix(name, "publish/") {
					key = "publish/messages/" + strings.TrimPrefix(name, "publish/")
				}
				rate := float64(counters[key]-s.prev[key]) * 60 / dt
				l := s.loads[name]
				if l == nil {
					l = new([3]float64)
					s.loads[name] = l
				}
				for i, minutes := range []float64{1, 5, 15} {
					e := math.Exp(-dt / (60 * minutes))
					l[i] = l[i]*e + rate*(1-e)
					s.put(fmt.Sprintf("load/%s/%gmin", name, minutes), fmt.Sprintf("%.2f", l[i]))
				}
			}
		}
	}
	s.prev, s.prevTime = counters, now
}

// OnPacketSent counts the payload bytes of PUBLISH packets sent.
func (h *hook) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		h.b.stats.publishBytesOut.Add(int64(len(pk.Payload)))
	}
}
