package bench

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// IdleResult is the memory a broker spends on idle authenticated clients.
type IdleResult struct {
	Broker  string `json:"broker"`
	Clients int    `json:"clients"`
	// RSS before the first client connected and once all are connected and
	// idle for Settle.
	BeforeKB int64 `json:"before_kb"`
	AfterKB  int64 `json:"after_kb"`
	// The same for RssAnon: without the program file's pages, which a
	// broker touches for the first time while its first clients connect.
	BeforeAnonKB int64 `json:"before_anon_kb"`
	AfterAnonKB  int64 `json:"after_anon_kb"`
	// ConnectWall is the time to connect them all (Concurrency at a time);
	// ConnectCPU the broker's CPU time meanwhile (password verification).
	ConnectWall time.Duration `json:"connect_wall_ns"`
	ConnectCPU  time.Duration `json:"connect_cpu_ns"`
	Err         string        `json:"error,omitempty"`
}

// PerConnKB is the RSS each connection costs, in KiB.
func (r IdleResult) PerConnKB() float64 {
	if r.Clients == 0 {
		return 0
	}
	return float64(r.AfterKB-r.BeforeKB) / float64(r.Clients)
}

// PerConnAnonKB is the anonymous resident memory each connection costs,
// in KiB.
func (r IdleResult) PerConnAnonKB() float64 {
	if r.Clients == 0 {
		return 0
	}
	return float64(r.AfterAnonKB-r.BeforeAnonKB) / float64(r.Clients)
}

// ConnectRate is connections per second.
func (r IdleResult) ConnectRate() float64 {
	if r.ConnectWall <= 0 {
		return 0
	}
	return float64(r.Clients) / r.ConnectWall.Seconds()
}

// IdleConcurrency is how many CONNECTs are in progress at once.
const IdleConcurrency = 32

// RunIdle connects n clients, each logging in as one of the bench home's
// devices with its generated password (round robin, client ids idle-N),
// leaves them idle (keepalive 10 minutes, so not even PINGREQ) for settle,
// reads the broker's RSS, calls atPeak (when not nil) and disconnects them.
func RunIdle(b *Broker, n int, pw map[string]string, settle time.Duration, atPeak func()) (IdleResult, error) {
	res := IdleResult{Broker: b.Name, Clients: n}
	before, err := ReadProc(b.Pid())
	if err != nil {
		return res, err
	}
	res.BeforeKB, res.BeforeAnonKB = before.RSSKB, before.AnonKB
	clients := make([]mqtt.Client, n)
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	start := time.Now()
	var wg sync.WaitGroup
	for range IdleConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || firstErr.Load() != nil {
					return
				}
				user := deviceName(i % BenchDevices)
				c, err := Connect(Login{Addr: b.Addr, ClientID: fmt.Sprintf("idle-%d", i), Username: user, Password: pw[user], KeepAlive: 10 * time.Minute})
				if err != nil {
					err = fmt.Errorf("client %d of %d: %w", i+1, n, err)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				clients[i] = c
			}
		}()
	}
	wg.Wait()
	res.ConnectWall = time.Since(start)
	defer func() {
		var dw sync.WaitGroup
		for k := range IdleConcurrency {
			dw.Add(1)
			go func() {
				defer dw.Done()
				for i := k; i < n; i += IdleConcurrency {
					if clients[i] != nil {
						clients[i].Disconnect(0)
					}
				}
			}()
		}
		dw.Wait()
	}()
	if e := firstErr.Load(); e != nil {
		return res, *e
	}
	mid, err := ReadProc(b.Pid())
	if err != nil {
		return res, err
	}
	res.ConnectCPU = mid.CPU - before.CPU
	time.Sleep(settle)
	after, err := ReadProc(b.Pid())
	if err != nil {
		return res, err
	}
	res.AfterKB, res.AfterAnonKB = after.RSSKB, after.AnonKB
	if atPeak != nil {
		atPeak()
	}
	return res, nil
}
