package bench

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// Broker is one broker process under test.
type Broker struct {
	// Name is "mosquitto" or "bundled".
	Name string
	Addr string
	Log  string
	cmd  *exec.Cmd
	// exited is closed when the process ended.
	exited  chan struct{}
	waitErr error
}

// StartBroker runs argv pinned to cpu (taskset execs the broker, so the pid
// is the broker's), logging to logPath, and waits until addr accepts
// connections and the log says the broker runs.
func StartBroker(name, cpu, addr, logPath string, argv ...string) (*Broker, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	args := append([]string{"-c", cpu}, argv...)
	cmd := exec.Command("taskset", args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b := &Broker{Name: name, Addr: addr, Log: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		b.waitErr = cmd.Wait()
		close(b.exited)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if !b.Running() {
			return nil, fmt.Errorf("%s exited at start (%v); log %s:\n%s", name, b.waitErr, logPath, tail(logPath, 20))
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			if data, _ := os.ReadFile(logPath); bytes.Contains(data, []byte(" running")) {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			b.Kill()
			return nil, fmt.Errorf("%s does not serve %s within 15 s; log %s:\n%s", name, addr, logPath, tail(logPath, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the broker's process id.
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// Running reports whether the process still runs.
func (b *Broker) Running() bool {
	select {
	case <-b.exited:
		return false
	default:
		return true
	}
}

// Kill ends the process at once.
func (b *Broker) Kill() {
	b.cmd.Process.Kill()
	<-b.exited
}

// Stop sends SIGTERM and waits up to 15 s for the broker to exit.
func (b *Broker) Stop() error {
	if !b.Running() {
		return fmt.Errorf("%s had exited before it was stopped: %v", b.Name, b.waitErr)
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		return nil
	case <-time.After(15 * time.Second):
		b.Kill()
		return fmt.Errorf("%s did not exit within 15 s of SIGTERM", b.Name)
	}
}

// ProcStat is what /proc says about a process at one moment.
type ProcStat struct {
	CPU   time.Duration // user + system time so far, all threads
	RSSKB int64         // VmRSS
	HWMKB int64         // VmHWM, the peak RSS
	// AnonKB is RssAnon: the resident memory that is the process's own
	// (heap, stacks), without the pages of its program file.
	AnonKB int64
}

// ReadProc reads /proc/PID/stat and /proc/PID/status.
func ReadProc(pid int) (ProcStat, error) {
	var s ProcStat
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name is in parentheses and may hold spaces: fields count
	// from the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): utime is field 14, stime 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSSKB = kb(v)
		case "VmHWM":
			s.HWMKB = kb(v)
		case "RssAnon":
			s.AnonKB = kb(v)
		}
	}
	return s, nil
}

func kb(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n
}

// SelfCPU is the CPU time this process used so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RaiseFileLimit sets this process's open-file soft limit to its hard
// limit. Set explicitly, it is also what child processes (the brokers)
// inherit: Go restores the original soft limit for children only when the
// program never set it itself.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	want := l
	want.Cur = want.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return l.Cur, err
	}
	return want.Cur, nil
}

// freePorts returns n distinct free TCP ports of 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
