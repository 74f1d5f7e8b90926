package verify

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
)

// RecordFile is where the state directory keeps the last passing live run.
const RecordFile = "verify-live.json"

// Record says when verify --live last passed against a deployment.
type Record struct {
	PassedAt time.Time `json:"passed_at"`
	Project  string    `json:"project"`
	// Host is the broker verify reached.
	Host string `json:"host"`
	// Checks counts the checks that passed, Skipped those not sent live.
	Checks  int `json:"checks"`
	Skipped int `json:"skipped"`
}

// WriteRecord notes a passing live run in the state directory.
func WriteRecord(stateDir string, r Record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(stateDir, RecordFile), append(data, '\n'), 0o644)
}

// LastPassed returns when verify --live last passed against project, from
// the state directory; ok is false when it never did (or only against
// another project).
func LastPassed(stateDir, project string) (r Record, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(stateDir, RecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, false, err
	}
	return r, r.Project == project, nil
}
