package workspace

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
)

// VerifiedFile is where the state directory keeps the last passing run of
// `mqttgen verify --live`.
const VerifiedFile = "verify-live.json"

// Verified says when verify --live last passed against a deployment.
type Verified struct {
	PassedAt time.Time `json:"passed_at"`
	Project  string    `json:"project"`
	// Host is the broker verify reached.
	Host string `json:"host"`
	// Checks counts the checks that passed, Skipped those not sent live.
	Checks  int `json:"checks"`
	Skipped int `json:"skipped"`
}

// RecordVerified notes a passing live run in the state directory.
func (h *Home) RecordVerified(v Verified) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(h.Secrets.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(h.Secrets.Dir, VerifiedFile), append(data, '\n'), 0o644)
}

// LastVerified returns when verify --live last passed against this home's
// project; ok is false when it never did (or only against another
// project).
func (h *Home) LastVerified() (v Verified, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(h.Secrets.Dir, VerifiedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Verified{}, false, nil
	}
	if err != nil {
		return Verified{}, false, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return Verified{}, false, err
	}
	return v, v.Project == h.Config.Deploy.Project, nil
}
