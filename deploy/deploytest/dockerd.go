package deploytest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
)

// Dockerd is an extra Docker engine a test starts on this machine beside
// the one it runs: its own socket, data root, exec root, pid file,
// containerd namespaces and an empty config file (so that nothing of the
// main daemon's /etc/docker/daemon.json applies), no iptables rules of its
// own (they would fight the main daemon's chains) and an address pool of
// its own for its networks. Its published ports are served by the userland
// proxy on every address of this host.
type Dockerd struct {
	// Host is unix://<Dir>/docker.sock.
	Host string
	// Socket is the socket's path.
	Socket string
	Dir    string
	Cli    *client.Client
	cmd    *exec.Cmd
	done   chan struct{}
}

var dockerdN atomic.Int32

// StartDockerd starts an extra engine and stops it, removing everything it
// made, when the test ends. Without dockerd or without root the test is
// skipped, except under CI=true, where it fails.
func StartDockerd(t testing.TB) *Dockerd {
	t.Helper()
	return startDockerd(t, nil)
}

func startDockerd(t testing.TB, tlsFiles func(dir string) []string) *Dockerd {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and "+format, args...)
		}
		t.Skipf(format, args...)
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		missing("no dockerd to start an extra engine: %v", err)
	}
	if os.Geteuid() != 0 {
		missing("an extra dockerd needs root")
	}
	// A short path: a unix socket's path has at most 107 bytes.
	dir, err := os.MkdirTemp("/tmp", "mqttgen-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	n := int(dockerdN.Add(1))
	ns := fmt.Sprintf("mqttgen-test-%d-%d", os.Getpid(), n)
	// 10.<180..239>.0.0/16: distinct per engine of this run, away from
	// Docker's default 172.17-31 and 192.168 pools.
	pool := fmt.Sprintf("base=10.%d.0.0/16,size=24", 180+(os.Getpid()*7+n)%60)
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Dockerd{Dir: dir, Socket: filepath.Join(dir, "docker.sock"), done: make(chan struct{})}
	d.Host = "unix://" + d.Socket
	args := []string{
		"--host", d.Host,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--containerd-namespace", ns,
		"--containerd-plugins-namespace", ns + "-plugins",
		"--bridge", "none",
		"--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--default-address-pool", pool,
		"--mtu", "1400",
	}
	if tlsFiles != nil {
		args = append(args, tlsFiles(dir)...)
	}
	if _, err := os.Stat("/etc/docker/daemon.json"); err == nil {
		// The main daemon's storage driver may be one this kernel lacks
		// for a second root (fuse-overlayfs); overlay2 on /tmp works.
		args = append(args, "--storage-driver", "overlay2")
	}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("start dockerd: %v", err)
	}
	go func() { d.cmd.Wait(); log.Close(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		cli, err := engine.ConnectEndpoint(ctx, engine.Endpoint{Host: d.Host})
		if err == nil {
			d.Cli = cli
			return d
		}
		select {
		case <-d.done:
			data, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd exited: %s", tail(string(data), 15))
		case <-ctx.Done():
			data, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd did not answer within a minute: %v\n%s", err, tail(string(data), 15))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// Stop stops the engine (its containers stop with it), as a machine that
// loses power; the test's cleanup removes it.
func (d *Dockerd) Stop() {
	if d.cmd.Process != nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

func (d *Dockerd) stop(t testing.TB) {
	if d.Cli != nil {
		// Containers first, so that their mounts are gone before the data
		// root is removed.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if cl, err := d.Cli.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
			for _, c := range cl.Items {
				d.Cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			}
		}
		cancel()
		d.Cli.Close()
	}
	d.Stop()
	// dockerd leaves its overlay and netns mounts under data and exec.
	if out, err := exec.Command("sh", "-c", "grep -o ' "+d.Dir+"[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l").CombinedOutput(); err != nil {
		t.Logf("unmount %s: %v %s", d.Dir, err, out)
	}
	if err := os.RemoveAll(d.Dir); err != nil {
		t.Errorf("remove %s: %v", d.Dir, err)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// HostAddress is an address of this host that containers of every engine
// on it reach (its first non-loopback IPv4 address): sites on one machine
// reach each other's published ports there.
func HostAddress(t testing.TB) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 || strings.HasPrefix(i.Name, "docker") || strings.HasPrefix(i.Name, "br-") || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && ip.IP.IsGlobalUnicast() {
				return ip.IP.String()
			}
		}
	}
	t.Fatal("no non-loopback IPv4 address on this host for the sites to reach each other at")
	return ""
}
