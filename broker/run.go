package broker

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// RunOptions are what the command line gives Run.
type RunOptions struct {
	Stdout, Stderr io.Writer
	Version        string
	// MetricsListen serves Prometheus' /metrics on this address (see
	// Options); "" serves none.
	MetricsListen string
	// Started, when set, is called once every listener is bound: what
	// says "serving" says it only then.
	Started func()
}

// Run reads the configuration at path and runs the broker in the
// foreground until ctx ends or SIGTERM or SIGINT arrives. SIGHUP reloads
// the password and acl files and the certificates (and so does an update
// of a Kubernetes Secret or ConfigMap volume holding path), SIGUSR1 writes the
// persistence database. Started as root, it drops to the `user` of the
// configuration (mosquitto by default) once its sockets are open.
func Run(ctx context.Context, path string, o RunOptions) error {
	c, err := conf.Load(path)
	if err != nil {
		return err
	}
	stderr := o.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	b, err := New(c, Options{
		Stdout:        o.Stdout,
		Stderr:        o.Stderr,
		Version:       o.Version,
		MetricsListen: o.MetricsListen,
		AfterBind:     func() error { return dropPrivileges(c.User, stderr) },
	})
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := b.Start(); err != nil {
		b.Close()
		return err
	}
	if o.Started != nil {
		o.Started()
	}
	// In a Kubernetes pod, Secret and ConfigMap updates reload as SIGHUP does.
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go watchSwaps(watch, filepath.Dir(path), b)
	for {
		select {
		case <-ctx.Done():
			return b.Close()
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				b.Reload() // failures are logged; the previous rules stay
			case syscall.SIGUSR1:
				b.Flush()
			default:
				b.log.logf(logNotice, "Signal %s received.", s)
				return b.Close()
			}
		}
	}
}

// dropPrivileges switches a process started as root to name (mosquitto
// when empty) and its groups, as Mosquitto does; "root" stays root.
func dropPrivileges(name string, stderr io.Writer) error {
	if os.Geteuid() != 0 {
		return nil
	}
	explicit := name != ""
	if !explicit {
		name = "mosquitto"
	}
	if name == "root" {
		fmt.Fprintln(stderr, "Warning: the broker keeps running as root (user root).")
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		if explicit {
			return fmt.Errorf("user %s: %w", name, err)
		}
		fmt.Fprintf(stderr, "Warning: running as root: user %s does not exist to drop privileges to.\n", name)
		return nil
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("user %s: uid %q gid %q are not numbers", name, u.Uid, u.Gid)
	}
	groups := []int{gid}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil && n != gid {
				groups = append(groups, n)
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("dropping privileges to %s: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("dropping privileges to %s: setgid: %w", name, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("dropping privileges to %s: setuid: %w", name, err)
	}
	return nil
}
