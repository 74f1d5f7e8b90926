package deploy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// reload sends SIGHUP and checks that the broker serves files: it logs in,
// TLS listeners present the certificate of files, and the log shows no
// error after "Reloading config." (when Mosquitto logs to the container).
func (x *executor) reload(ctx context.Context, op Op, s *Service, id string, files []generators.File, sp *Spec, auth bool) error {
	since := time.Now().Add(-time.Second)
	x.emit(op, "reloading", "Sending SIGHUP: %s re-reads its files...", engineName(s.Engine()))
	if err := engine.Signal(ctx, x.cli, id, "SIGHUP"); err != nil {
		return err
	}
	// Wait for the broker to log the reload when it logs to stderr;
	// otherwise give its main loop a moment.
	if logsToStderr(files) {
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if logs, _ := x.logs(ctx, id, since, false); strings.Contains(logs, "Reloading config.") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	} else {
		time.Sleep(300 * time.Millisecond)
	}
	return x.waitReady(ctx, op, s, id, files, sp, since, auth)
}

// waitReady waits until the container runs and every listener of files,
// published as sp says, accepts a login; then it checks that TLS listeners
// present the certificate of files and, after a reload, that the log shows
// no error after "Reloading config.". With auth false a refused login counts
// as serving (after a rollback, the previous passwd may not know the probe).
func (x *executor) waitReady(ctx context.Context, op Op, s *Service, id string, files []generators.File, sp *Spec, reloadedSince time.Time, auth bool) error {
	if !s.Reload {
		return x.waitRunning(ctx, id)
	}
	cred := x.d.Probe.Credentials
	if cred.Username == "" {
		// A home without accounts: a CONNACK is all the broker can give.
		auth = false
	}
	targets := ProbeTargets(files, sp)
	who := "anonymously"
	if cred.Username != "" {
		who = "as " + cred.Username
	}
	x.emit(op, "waiting", "Waiting for the broker to accept a login %s on %d listeners...", who, len(targets))
	deadline := time.Now().Add(x.opts.ReadyTimeout)
	var refusedSince time.Time
	for {
		st, err := x.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		if state := st.Container.State; state != nil && (!state.Running || state.Restarting || st.Container.RestartCount > 0) {
			logs, _ := x.logsSince(ctx, id, time.Time{})
			return fmt.Errorf("the broker exited (status %d)%s", state.ExitCode, logTail(logs, 8))
		}
		var lastErr error
		for _, t := range targets {
			if lastErr = probeTarget(x.host, t, cred, auth); lastErr != nil {
				break
			}
		}
		if lastErr == nil {
			break
		}
		// A refused login is final once the broker has read its passwd;
		// allow a moment for a reload in progress.
		if errors.Is(lastErr, errRefused) {
			if refusedSince.IsZero() {
				refusedSince = time.Now()
			} else if time.Since(refusedSince) > 3*time.Second {
				return lastErr
			}
		}
		if time.Now().After(deadline) {
			logs, _ := x.logsSince(ctx, id, reloadedSince)
			return fmt.Errorf("no login within %s: %v%s", x.opts.ReadyTimeout, lastErr, logTail(logs, 8))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !reloadedSince.IsZero() {
		if err := x.reloadErrors(ctx, id, reloadedSince); err != nil {
			return err
		}
	}
	var crt []byte
	for _, f := range files {
		if f.Path == "certs/server.crt" {
			crt = f.Data
		}
	}
	if crt != nil {
		var err error
		for end := time.Now().Add(time.Second); ; {
			if err = checkCertificates(x.host, targets, crt); err == nil || time.Now().After(end) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			logs, _ := x.logsSince(ctx, id, reloadedSince)
			return fmt.Errorf("%v%s", err, logTail(errorLines(logs), 8))
		}
	}
	x.emit(op, "ready", "The broker accepts logins on every listener")
	return nil
}

// logsToStderr says the mosquitto.conf of files logs to stderr.
func logsToStderr(files []generators.File) bool {
	for _, f := range files {
		if f.Path == "mosquitto.conf" {
			return slices.Contains(conf.Read(f.Path, f.Data).Values("log_dest"), "stderr")
		}
	}
	return false
}

// reloadErrors reports the errors Mosquitto logged since its last
// "Reloading config.", when it logs to the container (log_dest stderr; its
// stdout is block-buffered under Docker).
func (x *executor) reloadErrors(ctx context.Context, id string, since time.Time) error {
	logs, _ := x.logs(ctx, id, since, false)
	if errs := errorLines(afterLast(logs, "Reloading config.")); errs != "" {
		return fmt.Errorf("Mosquitto reported errors while reloading%s", logTail(errs, 8))
	}
	return nil
}

// waitRunning is the check of a service that is not the broker: it keeps
// running for two seconds.
func (x *executor) waitRunning(ctx context.Context, id string) error {
	time.Sleep(2 * time.Second)
	st, err := x.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	if st.Container.State != nil && !st.Container.State.Running {
		logs, _ := x.logsSince(ctx, id, time.Time{})
		return fmt.Errorf("the container exited (status %d)%s", st.Container.State.ExitCode, logTail(logs, 8))
	}
	return nil
}

// logsSince reads the container's output since t (all of it for zero t).
func (x *executor) logsSince(ctx context.Context, id string, t time.Time) (string, error) {
	return x.logs(ctx, id, t, true)
}

// logs reads the container's stderr, and its stdout too when stdout is
// true (engine.Logs).
func (x *executor) logs(ctx context.Context, id string, t time.Time, stdout bool) (string, error) {
	return engine.Logs(ctx, x.cli, id, t, stdout)
}

func afterLast(s, marker string) string {
	if i := strings.LastIndex(s, marker); i >= 0 {
		return s[i+len(marker):]
	}
	return ""
}

// errorLines are the lines of Mosquitto's log that report errors.
func errorLines(logs string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "Error") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// logTail formats the last n lines of a log for an error message.
func logTail(logs string, n int) string {
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return ""
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n    " + strings.Join(lines, "\n    ")
}
