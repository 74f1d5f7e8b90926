package deploy

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqttgen/mqttgen/schema"
	"github.com/mqttgen/mqttgen/workspace"
)

// FromHome renders a loaded home (container layout) and builds the state it
// asks for. The probe logs in as the home's first account whose password
// mqttgen knows (any login proves that the broker reads its passwd); the
// exporter's password is that of monitoring.prometheus.user. The backup apply takes before it replaces the
// broker goes to backup.dir (workspace.Home.BackupLocation). With broker.engine
// "mqttgen" the broker's image is built from the mqttgen binary
// BrokerBinary names, which must be static (InspectBinary).
func FromHome(h *workspace.Home, now time.Time) (*Desired, error) {
	cfg := h.Config
	var build *Build
	// The bundled broker's image, and mqttgen's exporter beside Mosquitto
	// (monitoring.prometheus), are built from this binary.
	if cfg.Broker.Engine == schema.EngineMqttgen || cfg.Monitoring.Prometheus.Enabled {
		path, err := BrokerBinary()
		if err != nil {
			return nil, fmt.Errorf("the mqttgen binary, to build the bundled broker's image from: %w", err)
		}
		if build, err = InspectBinary(path); err != nil {
			return nil, err
		}
	}
	files, err := h.Render(workspace.RenderOptions{Now: now})
	if err != nil {
		return nil, err
	}
	dir, keep := h.BackupLocation()
	in := Input{Config: cfg, Files: files, WorkingDir: h.Dir, Now: now,
		Backup: &BackupTarget{Dir: dir, Keep: keep, StateDir: h.Secrets.Dir}, Build: build}
	accounts := cfg.Accounts()
	// The probe logs in as the first account whose password mqttgen knows
	// (an imported account keeps only its hash).
	for i, a := range accounts {
		pw, err := h.AccountPassword(a.Name)
		if errors.Is(err, workspace.ErrUnknownPassword) {
			if i < len(accounts)-1 {
				continue
			}
			return nil, fmt.Errorf("apply proves the broker serves by logging in, but mqttgen knows no account's password: every account keeps an imported hash (password: \"hash\"); add a user, or give one a new password with `mqttgen secrets rotate %s`", a.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("password of %s: %w", a.Name, err)
		}
		in.Probe = Credentials{Username: a.Name, Password: pw}
		break
	}
	if pr := cfg.Monitoring.Prometheus; pr.Enabled {
		if in.ExporterPassword, err = h.AccountPassword(pr.User); err != nil {
			return nil, fmt.Errorf("monitoring.prometheus.user: %w", err)
		}
	}
	return NewDesired(in)
}
