package verify

import (
	"crypto/x509"
	"errors"
	"time"

	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// LiveTarget is the deployed broker as clients on this host reach it:
// each listener on its port at host (its bind address when it has one and
// host is empty, else 127.0.0.1), TLS listeners expected to present the
// certificate the home renders now, as plan expects.
func LiveTarget(h *workspace.Home, host string) (Target, error) {
	cfg := h.Config
	t := Target{Engine: "live", Host: host, Live: true}
	for _, name := range schema.SortedKeys(cfg.Listeners) {
		l := cfg.Listeners[name]
		if t.Host == "" && l.Bind != "" && l.Bind != "0.0.0.0" && l.Bind != "::" {
			t.Host = l.Bind
		}
		t.Listeners = append(t.Listeners, Listener{Name: name, Port: l.Port, TLS: l.TLS, Websockets: l.Protocol == "websockets", Anonymous: cfg.AnonymousOn(l)})
	}
	if t.Host == "" {
		t.Host = "127.0.0.1"
	}
	if !cfg.HasTLS() {
		return t, nil
	}
	files, err := h.Render(workspace.RenderOptions{Now: time.Now()})
	if err != nil {
		return t, err
	}
	for _, f := range files {
		switch f.Path {
		case "config/certs/ca.crt":
			t.CA = x509.NewCertPool()
			if !t.CA.AppendCertsFromPEM(f.Data) {
				return t, errors.New("rendered ca.crt holds no certificate")
			}
		case "config/certs/server.crt":
			t.ServerCert = f.Data
		}
	}
	return t, nil
}
