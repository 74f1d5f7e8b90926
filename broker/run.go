package broker

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mqttgen/mqttgen/internal/privileges"
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
// the password and acl files and the certificates, SIGUSR1 writes the
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
		AfterBind:     func() error { return privileges.Drop(c.User, stderr) },
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
