package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Scenario is one row of the table: a shape, a QoS and a payload size.
type Scenario struct {
	// Kind is "fan-in" (N publishers to 1 subscriber), "fan-out" (1 to N)
	// or "pairs" (N publishers, each to its own subscriber).
	Kind    string
	N       int
	QoS     byte
	Payload int
}

func (s Scenario) String() string {
	return fmt.Sprintf("%s %s QoS %d %s", s.Kind, s.Shape(), s.QoS, sizeName(s.Payload))
}

// Shape is publishers→subscribers.
func (s Scenario) Shape() string {
	switch s.Kind {
	case "fan-in":
		return fmt.Sprintf("%d→1", s.N)
	case "fan-out":
		return fmt.Sprintf("1→%d", s.N)
	default:
		return fmt.Sprintf("%d→%d", s.N, s.N)
	}
}

// ID is a short name for files and client ids.
func (s Scenario) ID() string {
	return fmt.Sprintf("%s-q%d-%s", s.Kind, s.QoS, sizeName(s.Payload))
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// LoadParams bound each row in count and time.
type LoadParams struct {
	// Warmup deliveries before measuring (not counted).
	Warmup int
	// The throughput phase publishes as fast as the window allows, up to
	// MaxDeliveries deliveries or MaxDuration, whichever comes first.
	MaxDeliveries int
	MaxDuration   time.Duration
	// Outstanding bounds, per subscriber, the messages published and not
	// yet delivered (closed loop): it keeps every broker queue below
	// max_queued_messages (1000 in the bench home), so that a broker is
	// measured at the rate it sustains, not at the rate it drops.
	Outstanding int
	// Inflight bounds each publisher's QoS 1 and 2 PUBLISH packets not yet
	// acknowledged (PUBACK, PUBCOMP), as libmosquitto clients do
	// (max_inflight_messages 20) and MQTT 5 clients must (Receive
	// Maximum). MQTT 3.1.1 has no way to tell a client the limit, and
	// Mosquitto 2.0 answers a QoS 2 PUBLISH beyond its own
	// max_inflight_messages with a PUBREC and drops it.
	Inflight int
	// The latency phase publishes at a fixed LatencyRate deliveries per
	// second for LatencyDuration, the same for both brokers, well below
	// either's capacity: its percentiles are a broker's delay, not the
	// queueing the window allows.
	LatencyRate     int
	LatencyDuration time.Duration
	// DrainTimeout is how long a phase waits for the last deliveries
	// without progress before it counts the rest as lost.
	DrainTimeout time.Duration
}

// Phase is what one phase of a row measured.
type Phase struct {
	Sent     int64         `json:"sent"`     // PUBLISH packets sent
	Expected int64         `json:"expected"` // deliveries expected: sent × subscribers of the topic
	Received int64         `json:"received"` // deliveries, duplicates included
	Lost     int64         `json:"lost"`     // expected deliveries that never came
	Dup      int64         `json:"dup"`      // deliveries of a sequence number already seen
	Stalls   int64         `json:"stalls"`   // publisher waits that timed out (lost messages held the window)
	Errors   int64         `json:"errors"`   // publish tokens that failed
	Corrupt  int64         `json:"corrupt"`  // payloads that are not the message their header names
	Wall     time.Duration `json:"wall_ns"`  // first publish to last delivery
	Rate     float64       `json:"rate"`     // unique deliveries per second
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	// BrokerCPU is the broker's user+system time during the phase, LoadCPU
	// this process's (the load generator).
	BrokerCPU time.Duration `json:"broker_cpu_ns"`
	LoadCPU   time.Duration `json:"load_cpu_ns"`
	// Window is the phase's wall time used for CPU shares: start to the
	// end of the drain.
	Window time.Duration `json:"window_ns"`
	// Runs is how many runs were combined into this phase.
	Runs int `json:"runs"`
	hist *Hist
}

// Combine merges the same phase of several runs: counts and CPU times
// add up, the rate is the mean of the runs' rates, percentiles come from
// all deliveries together.
func Combine(ps []Phase) Phase {
	var out Phase
	var h Hist
	for _, p := range ps {
		out.Sent += p.Sent
		out.Expected += p.Expected
		out.Received += p.Received
		out.Lost += p.Lost
		out.Dup += p.Dup
		out.Stalls += p.Stalls
		out.Errors += p.Errors
		out.Corrupt += p.Corrupt
		out.Wall += p.Wall
		out.Rate += p.Rate / float64(len(ps))
		out.BrokerCPU += p.BrokerCPU
		out.LoadCPU += p.LoadCPU
		out.Window += p.Window
		out.Runs += max(1, p.Runs)
		if p.hist != nil {
			h.Merge(p.hist)
		}
	}
	out.hist = &h
	out.P50, out.P99, out.Max = h.Quantile(0.50), h.Quantile(0.99), h.Max()
	return out
}

// BrokerCPUPct is the broker's CPU use in percent of one core.
func (p Phase) BrokerCPUPct() float64 { return pct(p.BrokerCPU, p.Window) }

// LoadCPUPct is the load generator's CPU use in percent of one core.
func (p Phase) LoadCPUPct() float64 { return pct(p.LoadCPU, p.Window) }

// CPUPerMsg is the broker's CPU time per delivery, in microseconds.
func (p Phase) CPUPerMsg() float64 {
	u := p.Expected - p.Lost
	if u <= 0 {
		return 0
	}
	return float64(p.BrokerCPU.Microseconds()) / float64(u)
}

func pct(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

// CombineRows merges several runs of one scenario on one broker.
func CombineRows(rs []Row) Row {
	out := Row{Scenario: rs[0].Scenario, Broker: rs[0].Broker}
	var tp, lat []Phase
	var errs []string
	for _, r := range rs {
		tp, lat = append(tp, r.Throughput), append(lat, r.Latency)
		out.RSSKB, out.HWMKB = max(out.RSSKB, r.RSSKB), max(out.HWMKB, r.HWMKB)
		if r.Err != "" {
			errs = append(errs, r.Err)
		}
	}
	out.Throughput, out.Latency = Combine(tp), Combine(lat)
	out.Err = strings.Join(errs, "; ")
	return out
}

// Row is one scenario against one broker.
type Row struct {
	Scenario   Scenario `json:"scenario"`
	Broker     string   `json:"broker"`
	Throughput Phase    `json:"throughput"`
	Latency    Phase    `json:"latency"`
	// RSS of the broker at the end of the row, and its peak since start.
	RSSKB int64  `json:"rss_kb"`
	HWMKB int64  `json:"hwm_kb"`
	Err   string `json:"error,omitempty"`
}

// Payload layout: phase (1 byte), publisher index (4), sequence number (8),
// send time in ns since the run's epoch (8, monotonic clock), then up to
// the payload size a pattern derived from publisher and sequence number,
// which the subscriber checks: a payload mixed up with another message's
// is counted as corrupt, not as a delivery.
const hdrLen = 21

// fill writes the pattern of message (pub, seq) after the header.
func fill(p []byte, pub uint32, seq uint64) {
	w := pattern(pub, seq)
	var word [8]byte
	binary.LittleEndian.PutUint64(word[:], w)
	for i := hdrLen; i < len(p); i += 8 {
		copy(p[i:], word[:])
	}
}

// intact reports whether p carries the pattern of message (pub, seq).
func intact(p []byte, pub uint32, seq uint64) bool {
	var word [8]byte
	binary.LittleEndian.PutUint64(word[:], pattern(pub, seq))
	for i := hdrLen; i < len(p); i += 8 {
		n := min(8, len(p)-i)
		if string(p[i:i+n]) != string(word[:n]) {
			return false
		}
	}
	return true
}

// debugf, when set, reports duplicated and corrupt deliveries.
var debugf func(format string, args ...any)

// SetDebug reports duplicated and corrupt deliveries to f.
func SetDebug(f func(format string, args ...any)) {
	debugf = f
	var bad int
	var mu sync.Mutex
	writeCheck = func(p []byte) {
		// A QoS 0 PUBLISH with a two-byte remaining length: check the
		// payload as it leaves paho.
		if len(p) < 4 || p[0]>>4 != 3 || (p[0]>>1)&3 != 0 || p[1]&0x80 == 0 {
			return
		}
		tl := int(p[3])<<8 | int(p[4])
		body := p[5+tl:]
		if len(body) < hdrLen {
			return
		}
		pi := binary.LittleEndian.Uint32(body[1:])
		seq := binary.LittleEndian.Uint64(body[5:])
		if !intact(body, pi, seq) {
			mu.Lock()
			bad++
			if bad <= 5 {
				f("corrupt as written by paho: pub %d seq %d, body says %s", pi, seq, bodySays(body, pi))
			}
			mu.Unlock()
		}
	}
}

// bodySays decodes which message the pattern words of p belong to.
func bodySays(p []byte, pub uint32) string {
	const kinv = 0xF1DE83E19937733D // inverse of 0x9E3779B97F4A7C15 mod 2^64
	var out []string
	last := ""
	for i := hdrLen; i+8 <= len(p); i += 8 {
		w := binary.LittleEndian.Uint64(p[i:])
		x := (w ^ uint64(pub)<<32) * kinv
		d := fmt.Sprintf("seq %d", int64(x)-1)
		if x == 0 || x > 1<<40 {
			d = fmt.Sprintf("%#x", w)
		}
		if d != last {
			out = append(out, fmt.Sprintf("@%d %s", i, d))
			last = d
		}
		if len(out) > 6 {
			break
		}
	}
	return strings.Join(out, ", ")
}

func pattern(pub uint32, seq uint64) uint64 {
	return (seq+1)*0x9E3779B97F4A7C15 ^ uint64(pub)<<32
}

const (
	phaseWarmup = iota + 1
	phaseThroughput
	phaseLatency
)

type run struct {
	sc    Scenario
	epoch time.Time
	phase atomic.Int32
	pubs  []*publisher
	subs  []*subscriber
}

type publisher struct {
	idx       int
	c         mqtt.Client
	topic     string
	receivers int64 // subscribers of its topic
	window    int64 // messages not yet delivered everywhere, at most
	sent      atomic.Int64
	delivered atomic.Int64 // unique deliveries of this phase, all subscribers
	waiting   atomic.Bool
	wake      chan struct{}
	timer     *time.Timer
	stalls    int64
	// credit is what stalls wrote off: deliveries that never came (lost
	// QoS 0, or messages a broker dropped) no longer hold the window.
	credit atomic.Int64
	errs   int64
	last   mqtt.Token
	ring   []mqtt.Token // the last Inflight tokens, by sequence number
}

type subscriber struct {
	r      *run
	c      mqtt.Client
	filter string

	mu       sync.Mutex
	seen     [][]uint64 // by publisher: sequence numbers seen
	unique   []int64
	received int64
	dup      int64
	corrupt  int64
	stale    int64
	bad      int64
	hist     Hist
	last     int64 // ns since epoch of the last delivery
}

func (s *subscriber) reset(npubs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = make([][]uint64, npubs)
	s.unique = make([]int64, npubs)
	s.received, s.dup, s.corrupt, s.stale, s.bad, s.last = 0, 0, 0, 0, 0, 0
	s.hist = Hist{}
}

// handle runs on the subscriber's paho goroutine for every delivery.
func (s *subscriber) handle(_ mqtt.Client, m mqtt.Message) {
	now := int64(time.Since(s.r.epoch))
	p := m.Payload()
	if len(p) < hdrLen {
		s.mu.Lock()
		s.bad++
		s.mu.Unlock()
		return
	}
	ph := int32(p[0])
	pi := int(binary.LittleEndian.Uint32(p[1:]))
	seq := binary.LittleEndian.Uint64(p[5:])
	ts := int64(binary.LittleEndian.Uint64(p[13:]))
	ok := len(p) == s.r.sc.Payload && intact(p, uint32(pi), seq)
	s.mu.Lock()
	if !ok {
		s.corrupt++
		if debugf != nil && s.corrupt <= 5 {
			debugf("corrupt on %s: %d bytes (want %d), header pub %d seq %d phase %d, body says %s", s.filter, len(p), s.r.sc.Payload, pi, seq, ph, bodySays(p, uint32(pi)))
		}
		s.mu.Unlock()
		return
	}
	if ph != s.r.phase.Load() || pi >= len(s.seen) {
		s.stale++
		s.mu.Unlock()
		return
	}
	s.received++
	s.last = now
	w, bit := seq/64, seq%64
	bs := s.seen[pi]
	for uint64(len(bs)) <= w {
		bs = append(bs, 0)
	}
	s.seen[pi] = bs
	fresh := bs[w]&(1<<bit) == 0
	if fresh {
		bs[w] |= 1 << bit
		s.unique[pi]++
		s.hist.Add(time.Duration(now - ts))
		if debugf != nil && ph == phaseLatency && now-ts > int64(3*time.Millisecond) {
			debugf("slow delivery on %s: pub %d seq %d, %v, sent at %v", s.filter, pi, seq, time.Duration(now-ts), time.Duration(ts))
		}
	} else {
		s.dup++
		if debugf != nil && s.dup <= 5 {
			debugf("dup on %s: pub %d seq %d phase %d (sent %d so far), latency %v", s.filter, pi, seq, ph, s.r.pubs[pi].sent.Load(), time.Duration(now-ts))
		}
	}
	s.mu.Unlock()
	if fresh {
		pub := s.r.pubs[pi]
		d := pub.delivered.Add(1)
		if pub.waiting.Load() && pub.sent.Load()*pub.receivers-pub.credit.Load()-d <= pub.window*pub.receivers/2 {
			select {
			case pub.wake <- struct{}{}:
			default:
			}
		}
	}
}

// topology builds the publishers and subscribers of a scenario: devices
// publish on their own data topic, subscribers log in as the collector.
func (r *run) topology(outstanding int) (pubTopics []string, subFilters []string, receivers []int64, window int64) {
	n := r.sc.N
	switch r.sc.Kind {
	case "fan-in":
		for i := range n {
			pubTopics = append(pubTopics, "home/"+deviceName(i)+"/data")
			receivers = append(receivers, 1)
		}
		subFilters = []string{"home/+/data"}
		window = int64(max(1, outstanding/n))
	case "fan-out":
		pubTopics = []string{"home/" + deviceName(0) + "/data"}
		receivers = []int64{int64(n)}
		for range n {
			subFilters = append(subFilters, "home/"+deviceName(0)+"/data")
		}
		window = int64(outstanding)
	case "pairs":
		for i := range n {
			pubTopics = append(pubTopics, "home/"+deviceName(i)+"/data")
			subFilters = append(subFilters, "home/"+deviceName(i)+"/data")
			receivers = append(receivers, 1)
		}
		window = int64(outstanding)
	}
	return
}

// Hooks let the caller act around the measured phases (profiling).
type Hooks struct {
	BeforeThroughput func() error
	AfterThroughput  func() error
}

// RunScenario connects the scenario's clients to b, runs the warm-up, the
// throughput phase and the latency phase, and disconnects.
func RunScenario(b *Broker, sc Scenario, lp LoadParams, pw map[string]string, tag string, hooks Hooks) (row Row, err error) {
	row = Row{Scenario: sc, Broker: b.Name}
	if sc.N < 1 || (sc.Kind != "fan-in" && sc.Kind != "fan-out" && sc.Kind != "pairs") {
		return row, fmt.Errorf("unknown scenario %v", sc)
	}
	if sc.Payload < hdrLen {
		return row, fmt.Errorf("payload of %d bytes is smaller than the %d-byte header", sc.Payload, hdrLen)
	}
	lost0 := connLost.Load()
	r := &run{sc: sc, epoch: time.Now()}
	topics, filters, receivers, window := r.topology(lp.Outstanding)
	defer func() {
		for _, s := range r.subs {
			if s.c != nil {
				s.c.Disconnect(50)
			}
		}
		for _, p := range r.pubs {
			if p.c != nil {
				p.c.Disconnect(50)
			}
		}
		if n := connLost.Load() - lost0; n > 0 && err == nil {
			err = fmt.Errorf("%d connections lost during the row", n)
		}
	}()
	for i, f := range filters {
		s := &subscriber{r: r, filter: f}
		s.reset(len(topics))
		r.subs = append(r.subs, s)
		s.c, err = Connect(Login{Addr: b.Addr, ClientID: fmt.Sprintf("%s-%s-sub-%d", tag, sc.ID(), i), Username: collector, Password: pw[collector]})
		if err != nil {
			return row, err
		}
		if err = Subscribe(s.c, f, sc.QoS, s.handle); err != nil {
			return row, err
		}
	}
	for i, t := range topics {
		p := &publisher{idx: i, topic: t, receivers: receivers[i], window: window, wake: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
		if sc.QoS > 0 && lp.Inflight > 0 {
			p.ring = make([]mqtt.Token, lp.Inflight)
		}
		p.timer.Stop()
		r.pubs = append(r.pubs, p)
		p.c, err = Connect(Login{Addr: b.Addr, ClientID: fmt.Sprintf("%s-%s-pub-%d", tag, sc.ID(), i), Username: deviceName(i), Password: pw[deviceName(i)]})
		if err != nil {
			return row, err
		}
	}

	var deliveriesPerPublish int64
	for _, n := range receivers {
		deliveriesPerPublish += n
	}
	perPub := func(deliveries int) int64 {
		return max(1, int64(deliveries)/deliveriesPerPublish)
	}

	// Warm-up: connections, buffers and caches, not counted.
	if _, err = r.phaseRun(b, phaseWarmup, perPub(lp.Warmup), time.Now().Add(10*time.Second), 0, lp); err != nil {
		return row, fmt.Errorf("warm-up: %w", err)
	}
	if hooks.BeforeThroughput != nil {
		if err = hooks.BeforeThroughput(); err != nil {
			return row, err
		}
	}
	row.Throughput, err = r.phaseRun(b, phaseThroughput, perPub(lp.MaxDeliveries), time.Now().Add(lp.MaxDuration), 0, lp)
	if hooks.AfterThroughput != nil {
		if herr := hooks.AfterThroughput(); herr != nil && err == nil {
			err = herr
		}
	}
	if err != nil {
		return row, fmt.Errorf("throughput: %w", err)
	}
	// Publishes per second per publisher for the fixed delivery rate.
	rate := float64(lp.LatencyRate) / float64(deliveriesPerPublish)
	count := max(1, int64(rate*lp.LatencyDuration.Seconds()))
	row.Latency, err = r.phaseRun(b, phaseLatency, count, time.Now().Add(lp.LatencyDuration+5*time.Second), rate, lp)
	if err != nil {
		return row, fmt.Errorf("latency: %w", err)
	}
	if st, e := ReadProc(b.Pid()); e == nil {
		row.RSSKB, row.HWMKB = st.RSSKB, st.HWMKB
	}
	return row, nil
}

// phaseRun has every publisher send count messages (or until deadline):
// with rate 0 as fast as its window allows, else rate messages per second
// each. It then waits for the deliveries and counts them.
func (r *run) phaseRun(b *Broker, phase int32, count int64, deadline time.Time, rate float64, lp LoadParams) (Phase, error) {
	var res Phase
	for _, s := range r.subs {
		s.reset(len(r.pubs))
	}
	for _, p := range r.pubs {
		p.sent.Store(0)
		p.delivered.Store(0)
		p.stalls, p.errs, p.last = 0, 0, nil
		clear(p.ring)
		p.credit.Store(0)
		// Drop a wake-up left over from the previous phase.
		select {
		case <-p.wake:
		default:
		}
	}
	r.phase.Store(phase)
	before, err := ReadProc(b.Pid())
	if err != nil {
		return res, err
	}
	cpu0 := SelfCPU()
	start := time.Now()
	startNs := int64(start.Sub(r.epoch))
	var wg sync.WaitGroup
	for _, p := range r.pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.publish(r, byte(phase), count, deadline, rate, start)
		}()
	}
	wg.Wait()
	var expected int64
	for _, p := range r.pubs {
		res.Sent += p.sent.Load()
		expected += p.sent.Load() * p.receivers
		res.Stalls += p.stalls
		if p.last != nil && p.last.WaitTimeout(lp.DrainTimeout) && p.last.Error() != nil {
			p.errs++
		}
		res.Errors += p.errs
	}
	res.Expected = expected
	// Drain: wait for every expected delivery, or until nothing arrived
	// for DrainTimeout.
	var delivered, prev int64 = 0, -1
	progress := time.Now()
	for {
		delivered = 0
		for _, p := range r.pubs {
			delivered += p.delivered.Load()
		}
		if delivered >= expected {
			break
		}
		if delivered != prev {
			prev, progress = delivered, time.Now()
		} else if time.Since(progress) > lp.DrainTimeout {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.Window = time.Since(start)
	res.LoadCPU = SelfCPU() - cpu0
	after, err := ReadProc(b.Pid())
	if err != nil {
		return res, err
	}
	res.BrokerCPU = after.CPU - before.CPU
	var h Hist
	var last int64
	for _, s := range r.subs {
		s.mu.Lock()
		res.Received += s.received
		res.Dup += s.dup
		res.Corrupt += s.corrupt
		h.Merge(&s.hist)
		last = max(last, s.last)
		bad := s.bad
		s.mu.Unlock()
		if bad > 0 {
			return res, fmt.Errorf("subscriber %s got %d payloads that are not the load generator's", s.filter, bad)
		}
	}
	res.Lost = expected - delivered
	res.Wall = time.Duration(last - startNs)
	if res.Wall > 0 {
		res.Rate = float64(delivered) / res.Wall.Seconds()
	}
	res.P50, res.P99, res.Max = h.Quantile(0.50), h.Quantile(0.99), h.Max()
	res.hist, res.Runs = &h, 1
	if !b.Running() {
		return res, errors.New("the broker exited")
	}
	return res, nil
}

func (p *publisher) publish(r *run, phase byte, count int64, deadline time.Time, rate float64, start time.Time) {
	size := r.sc.Payload
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
		// Publishers start spread over one interval, not all at once.
		start = start.Add(interval * time.Duration(p.idx) / time.Duration(len(r.pubs)))
	}
	for seq := int64(0); seq < count; seq++ {
		if seq%32 == 0 && time.Now().After(deadline) {
			return
		}
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(seq) * interval)); d > 0 {
				time.Sleep(d)
			}
		} else {
			p.waitWindow(seq)
		}
		var slot *mqtt.Token
		if len(p.ring) > 0 {
			slot = &p.ring[seq%int64(len(p.ring))]
			if *slot != nil && !(*slot).WaitTimeout(stallAfter) {
				p.stalls++
			}
		}
		// paho keeps the payload until it is written (QoS 0) or
		// acknowledged (QoS 1, 2): a new one each time.
		buf := make([]byte, size)
		buf[0] = phase
		binary.LittleEndian.PutUint32(buf[1:], uint32(p.idx))
		binary.LittleEndian.PutUint64(buf[5:], uint64(seq))
		fill(buf, uint32(p.idx), uint64(seq))
		binary.LittleEndian.PutUint64(buf[13:], uint64(time.Since(r.epoch)))
		t := p.c.Publish(p.topic, r.sc.QoS, false, buf)
		p.sent.Store(seq + 1)
		if t.Error() != nil {
			p.errs++
		}
		p.last = t
		if slot != nil {
			*slot = t
		}
	}
}

// stallAfter is how long a publisher waits for its window to open before
// it goes on regardless: only lost messages keep it shut that long.
const stallAfter = time.Second

func (p *publisher) waitWindow(seq int64) {
	over := func() bool { return (seq+1)*p.receivers-p.credit.Load()-p.delivered.Load() > p.window*p.receivers }
	for over() {
		p.waiting.Store(true)
		if !over() {
			p.waiting.Store(false)
			return
		}
		p.timer.Reset(stallAfter)
		select {
		case <-p.wake:
			p.timer.Stop()
		case <-p.timer.C:
			p.stalls++
			p.credit.Store(seq*p.receivers - p.delivered.Load())
			p.waiting.Store(false)
			return
		}
		p.waiting.Store(false)
	}
}
