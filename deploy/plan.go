package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
)

// symbols are Terraform's.
var symbols = map[Action]string{Create: "  +", Update: "  ~", Replace: "-/+", Delete: "  -"}

// Symbol is the action's mark in a plan: +, ~, -/+ or -.
func (a Action) Symbol() string { return strings.TrimSpace(symbols[a]) }

var legend = map[Action]string{
	Create:  "create",
	Update:  "update in-place (files, then SIGHUP)",
	Replace: "destroy and then create replacement (named volumes are kept)",
	Delete:  "destroy",
}

var verbs = map[Action]string{
	Create:  "will be created",
	Update:  "will be updated in-place",
	Replace: "must be replaced",
	Delete:  "will be destroyed",
}

// WriteText writes the plan as Terraform users read one.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	if p.Empty() {
		fmt.Fprintf(&b, "No changes. The project %q on the Docker engine matches home.cue.\n", p.Project)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "mqttgen will perform the following actions on project %q.\n", p.Project)
	b.WriteString("Resource actions are indicated with the following symbols:\n")
	for _, a := range []Action{Create, Update, Replace, Delete} {
		if slices.ContainsFunc(p.Ops, func(op Op) bool { return op.Action == a }) {
			fmt.Fprintf(&b, "%s %s\n", symbols[a], legend[a])
		}
	}
	for _, op := range p.Ops {
		b.WriteString("\n")
		what := fmt.Sprintf("%s %q", op.Kind, op.Name)
		if op.Service != "" {
			what += " (service " + op.Service + ")"
		}
		fmt.Fprintf(&b, "  # %s %s\n", what, verbs[op.Action])
		for _, r := range op.Reasons {
			fmt.Fprintf(&b, "  #   because %s\n", r)
		}
		if op.BackupDir != "" {
			fmt.Fprintf(&b, "  #   (a backup of its data and config is taken first, into %s)\n", op.BackupDir)
		}
		sym := symbols[op.Action]
		if op.Kind != KindContainer || op.Action == Delete || len(op.Changes)+len(op.Files) == 0 {
			fmt.Fprintf(&b, "%s %s %q\n", sym, op.Kind, op.Name)
			continue
		}
		fmt.Fprintf(&b, "%s %s %q {\n", sym, op.Kind, op.Name)
		for _, c := range op.Changes {
			switch {
			case op.Action == Create:
				fmt.Fprintf(&b, "      + %-11s = %s\n", c.Attr, orNone(c.New))
			case op.Action == Replace:
				fmt.Fprintf(&b, "      ~ %-11s = %s -> %s # forces replacement\n", c.Attr, orNone(c.Old), orNone(c.New))
			default:
				fmt.Fprintf(&b, "      ~ %-11s = %s -> %s\n", c.Attr, orNone(c.Old), orNone(c.New))
			}
		}
		for _, f := range op.Files {
			sym := f.Action.Symbol()
			line := fmt.Sprintf("      %s file %q", sym, f.Path)
			if f.Mode != "" {
				line += " (mode " + f.Mode + ")"
			}
			if f.Why != "" {
				line += " # forces replacement: " + f.Why
			}
			b.WriteString(line + "\n")
			if op.Action != Create && f.Diff != "" {
				for _, l := range strings.SplitAfter(strings.TrimSuffix(f.Diff, "\n"), "\n") {
					b.WriteString("          " + strings.TrimSuffix(l, "\n") + "\n")
				}
			}
		}
		b.WriteString("    }\n")
	}
	add, change, destroy := p.Summary()
	fmt.Fprintf(&b, "\nPlan: %d to add, %d to change, %d to destroy.\n", add, change, destroy)
	_, err := io.WriteString(w, b.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// jsonPlan is the --json form of a plan.
type jsonPlan struct {
	FormatVersion string `json:"format_version"`
	*Plan
	Summary struct {
		Add     int `json:"add"`
		Change  int `json:"change"`
		Destroy int `json:"destroy"`
	} `json:"summary"`
}

// WriteJSON writes the plan as one JSON document (secrets redacted as in
// the text).
func (p *Plan) WriteJSON(w io.Writer) error {
	c := *p
	if c.Ops == nil {
		c.Ops = []Op{}
	}
	jp := jsonPlan{FormatVersion: "1", Plan: &c}
	jp.Summary.Add, jp.Summary.Change, jp.Summary.Destroy = p.Summary()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jp)
}

// SavedPlan is a plan file: the plan, the desired state it was made for
// (files included) and the fingerprint of the state it was made from.
type SavedPlan struct {
	Magic   string    `json:"mqttgen_plan"`
	Created time.Time `json:"created"`
	Plan    *Plan     `json:"plan"`
	Desired *Desired  `json:"desired"`
	// Home and StateDir are the folders of the home and of its state,
	// absolute: applying the plan takes the home's lock (workspace.LockDir)
	// when the folder is there.
	Home     string `json:"home,omitempty"`
	StateDir string `json:"state_dir,omitempty"`
}

const savedPlanMagic = "1"

// Save writes a plan file, mode 0600: it holds the rendered files, keys and
// password hashes included, and the probe's password.
func Save(path string, p *Plan, d *Desired, home, stateDir string, now time.Time) error {
	data, err := json.MarshalIndent(SavedPlan{Magic: savedPlanMagic, Created: now.UTC(), Plan: p, Desired: d, Home: home, StateDir: stateDir}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

// ErrNotPlan says a file is not a saved plan.
var ErrNotPlan = errors.New("not a saved mqttgen plan")

// Load reads a plan file.
func Load(path string) (*SavedPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sp SavedPlan
	if err := json.Unmarshal(data, &sp); err != nil || sp.Magic == "" {
		return nil, fmt.Errorf("%s: %w", path, ErrNotPlan)
	}
	if sp.Magic != savedPlanMagic || sp.Plan == nil || sp.Desired == nil {
		return nil, fmt.Errorf("%s: a plan of another mqttgen version: make it again", path)
	}
	return &sp, nil
}

// IsPlanFile reports whether path is a saved plan rather than a home.
func IsPlanFile(path string) bool {
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || strings.HasSuffix(path, ".cue") {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	return strings.Contains(string(head[:n]), `"mqttgen_plan"`)
}

// ErrStale says the engine changed since a saved plan was made.
type ErrStale struct{ Made, Now string }

func (e *ErrStale) Error() string {
	return "the saved plan is stale: the project on the Docker engine changed since the plan was made; run mqttgen plan again"
}

// CheckFresh refuses a saved plan made from another state than o.
func (sp *SavedPlan) CheckFresh(o *Observed) error {
	if now := o.Fingerprint(); now != sp.Plan.Fingerprint {
		return &ErrStale{Made: sp.Plan.Fingerprint, Now: now}
	}
	return nil
}
