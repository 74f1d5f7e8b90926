package verify

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/mqttgen/mqttgen/broker"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// MosquittoPath is where Debian installs Mosquitto.
const MosquittoPath = "/usr/sbin/mosquitto"

// Passwords returns every account's password: generated ones from the
// state directory, others from their file or environment variable.
func Passwords(h *workspace.Home) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range h.Config.Accounts() {
		pw, err := h.Secrets.Password(a.Name, a.Password)
		if err != nil {
			return nil, fmt.Errorf("password of %s: %w", a.Name, err)
		}
		out[a.Name] = pw
	}
	return out, nil
}

// Sandbox is a broker started for verify from the home's rendered files.
type Sandbox struct {
	Target Target
	dir    string
	stop   func() error
	log    *os.File
}

// StartSandbox renders the home for this host into a temporary folder and
// starts engine ("mosquitto" or "mqttgen") on it, on loopback. The files
// are the home's own (passwd, acl, certificates, options) except that every
// listener binds 127.0.0.1 on a free port, bridges are left out (a sandbox
// talks to nothing outside) and the log goes to a file.
func StartSandbox(h *workspace.Home, engine string) (*Sandbox, error) {
	dir, err := os.MkdirTemp("", "mqttgen-verify-")
	if err != nil {
		return nil, err
	}
	s := &Sandbox{dir: dir}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	cfg := *h.Config
	cfg.Listeners = map[string]schema.Listener{}
	var ls []Listener
	names := schema.SortedKeys(h.Config.Listeners)
	ports, err := freePorts(len(names))
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		l := h.Config.Listeners[name]
		port := ports[i]
		l.Port, l.Bind = port, "127.0.0.1"
		cfg.Listeners[name] = l
		ls = append(ls, Listener{Name: name, Port: port, TLS: l.TLS, Websockets: l.Protocol == "websockets", Anonymous: h.Config.AnonymousOn(l)})
	}
	cfg.Bridges = nil
	cfg.Backup = nil
	cfg.Monitoring = schema.Monitoring{}
	cfg.Logging.Destinations = []string{"stderr"}
	sh := *h
	sh.Config = &cfg
	files, err := sh.Render(workspace.RenderOptions{Local: true, Out: dir, Now: time.Now(), KeepUser: true})
	if err != nil {
		return nil, err
	}
	if err := workspace.Write(dir, files, true); err != nil {
		return nil, err
	}
	s.Target = Target{Engine: engine, Host: "127.0.0.1", Listeners: ls}
	if err := s.certs(files); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "config", "mosquitto.conf")
	if s.log, err = os.Create(filepath.Join(dir, "broker.log")); err != nil {
		return nil, err
	}
	switch engine {
	case schema.EngineMosquitto:
		cmd := exec.Command(MosquittoPath, "-c", confPath)
		cmd.Stdout, cmd.Stderr = s.log, s.log
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		s.stop = func() error {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			return nil
		}
	case schema.EngineMqttgen:
		c, err := conf.Load(confPath)
		if err != nil {
			return nil, err
		}
		b, err := broker.New(c, broker.Options{Stdout: s.log, Stderr: s.log, Version: "verify"})
		if err != nil {
			return nil, err
		}
		if err := b.Start(); err != nil {
			b.Close()
			return nil, err
		}
		s.stop = b.Close
	default:
		return nil, fmt.Errorf("unknown engine %q", engine)
	}
	if err := s.await(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// certs reads the CA clients trust and the server certificate from the
// rendered files.
func (s *Sandbox) certs(files []generators.File) error {
	for _, f := range files {
		switch f.Path {
		case "config/certs/ca.crt":
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(f.Data) {
				return errors.New("rendered ca.crt holds no certificate")
			}
			s.Target.CA = pool
		case "config/certs/server.crt":
			s.Target.ServerCert = f.Data
		}
	}
	return nil
}

// await waits until every listener accepts connections.
func (s *Sandbox) await() error {
	deadline := time.Now().Add(10 * time.Second)
	for _, l := range s.Target.Listeners {
		for {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Target.Host, strconv.Itoa(l.Port)), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not open listener %s: %v\n%s", s.Target.Engine, l.Name, err, s.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// Log returns what the broker logged.
func (s *Sandbox) Log() string {
	data, _ := os.ReadFile(filepath.Join(s.dir, "broker.log"))
	return string(data)
}

// Close stops the broker and removes its folder.
func (s *Sandbox) Close() error {
	var err error
	if s.stop != nil {
		err = s.stop()
		s.stop = nil
	}
	if s.log != nil {
		s.log.Close()
	}
	os.RemoveAll(s.dir)
	return err
}

// freePorts returns n distinct loopback ports that are free now: each is
// held open until all are chosen, so none is handed out twice.
func freePorts(n int) ([]int, error) {
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// cutPEM returns the DER bytes of the first PEM block and the rest.
func cutPEM(data []byte) ([]byte, []byte, bool) {
	b, rest := pem.Decode(data)
	if b == nil {
		return nil, nil, false
	}
	return b.Bytes, rest, true
}

// Sandboxes runs verify in a sandbox of every engine that can run here:
// Mosquitto when it is installed (the engine of broker.engine "mosquitto")
// and the bundled broker always.
func Sandboxes(ctx context.Context, h *workspace.Home, xs func(*Sandbox) Report, log io.Writer) ([]Report, error) {
	engines := []string{schema.EngineMqttgen}
	if _, err := os.Stat(MosquittoPath); err == nil {
		engines = append([]string{schema.EngineMosquitto}, engines...)
	} else if h.Config.Broker.Engine == schema.EngineMosquitto {
		fmt.Fprintf(log, "verify: %s is not installed: the sandbox runs the bundled broker only, not the home's engine\n", MosquittoPath)
	}
	var out []Report
	for _, e := range engines {
		s, err := StartSandbox(h, e)
		if err != nil {
			return out, fmt.Errorf("sandbox %s: %w", e, err)
		}
		rep := xs(s)
		s.Close()
		out = append(out, rep)
	}
	return out, nil
}
