package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// SavedPlan is a plan file. It holds no secret, so that it may be read,
// mailed or reviewed like the plan it prints: the plan (with secrets
// redacted, as --json prints it), references to the home and its state
// directory, and a fingerprint of the desired state, which covers the
// rendered files, keys, hashes and passwords. apply renders the home again,
// reading its secrets anew, and performs the plan only when the fingerprint
// and the engine's state are those the plan was made from.
type SavedPlan struct {
	Magic   string    `json:"mqttgen_plan"`
	Created time.Time `json:"created"`
	Plan    *Plan     `json:"plan"`
	// Home is the path the plan was made from (a folder or a .cue file)
	// and StateDir its state directory, both absolute.
	Home     string `json:"home"`
	StateDir string `json:"state_dir"`
	// DesiredSHA256 is Desired.Digest of the state the plan was made for.
	DesiredSHA256 string `json:"desired_sha256"`
}

// savedPlanMagic "1" held the whole desired state, secrets included.
const savedPlanMagic = "2"

// maxPlanFile bounds what Load reads: a plan of a home is kilobytes.
const maxPlanFile = 16 << 20

// Digest fingerprints the desired state, secrets included (SHA-256 of its
// JSON, without the time it was rendered): a plan applies only to a home
// that renders to the same.
func (d *Desired) Digest() string {
	c := *d
	c.Now = time.Time{}
	data, err := json.Marshal(&c)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Save writes a plan file (mode 0600, as what the home's folder holds)
// for the home at home (absolute) with state directory stateDir.
func Save(path string, p *Plan, d *Desired, home, stateDir string, now time.Time) error {
	if !filepath.IsAbs(home) || !filepath.IsAbs(stateDir) {
		return fmt.Errorf("a saved plan names its home and state directory by absolute paths, not %q and %q", home, stateDir)
	}
	data, err := json.MarshalIndent(SavedPlan{Magic: savedPlanMagic, Created: now.UTC(), Plan: p, Home: home, StateDir: stateDir, DesiredSHA256: d.Digest()}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

// ErrNotPlan says a file is not a saved plan.
var ErrNotPlan = errors.New("not a saved mqttgen plan")

// Load reads a plan file and checks its form; Check and CheckFresh check
// it against the home and the engine.
func Load(path string) (*SavedPlan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPlanFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPlanFile {
		return nil, fmt.Errorf("%s: %w (larger than %d MiB)", path, ErrNotPlan, maxPlanFile>>20)
	}
	return parsePlan(path, data)
}

func parsePlan(path string, data []byte) (*SavedPlan, error) {
	var sp SavedPlan
	if err := json.Unmarshal(data, &sp); err != nil || sp.Magic == "" {
		return nil, fmt.Errorf("%s: %w", path, ErrNotPlan)
	}
	switch {
	case sp.Magic == "1":
		return nil, fmt.Errorf("%s: a plan of an older mqttgen, which held the home's keys and password hashes: delete it, and make it again with mqttgen plan -o", path)
	case sp.Magic != savedPlanMagic:
		return nil, fmt.Errorf("%s: a plan of another mqttgen version: make it again", path)
	case sp.Plan == nil || sp.Plan.Fingerprint == "":
		return nil, fmt.Errorf("%s: %w (it has no plan)", path, ErrNotPlan)
	case !filepath.IsAbs(sp.Home) || !filepath.IsAbs(sp.StateDir):
		return nil, fmt.Errorf("%s: %w (its home %q or state directory %q is not an absolute path)", path, ErrNotPlan, sp.Home, sp.StateDir)
	case len(sp.DesiredSHA256) != 64 || strings.Trim(sp.DesiredSHA256, "0123456789abcdef") != "":
		return nil, fmt.Errorf("%s: %w (its fingerprint %q is not a SHA-256)", path, ErrNotPlan, sp.DesiredSHA256)
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

// ErrStale says the engine, or the home, changed since a saved plan was
// made.
type ErrStale struct {
	Made, Now string
	// Home says the home renders to another state (home.cue, a secret,
	// a certificate changed); else the engine's state changed.
	Home bool
}

func (e *ErrStale) Error() string {
	if e.Home {
		return "the saved plan is stale: home.cue, a password, a key or a certificate of the home changed since the plan was made; run mqttgen plan again"
	}
	return "the saved plan is stale: the project on the Docker engine changed since the plan was made; run mqttgen plan again"
}

// Check refuses a saved plan made for another desired state than d (the
// home rendered again now, its secrets read anew).
func (sp *SavedPlan) Check(d *Desired) error {
	if now := d.Digest(); now != sp.DesiredSHA256 {
		return &ErrStale{Made: sp.DesiredSHA256, Now: now, Home: true}
	}
	return nil
}

// CheckFresh refuses a saved plan made from another state than o.
func (sp *SavedPlan) CheckFresh(o *Observed) error {
	if now := o.Fingerprint(); now != sp.Plan.Fingerprint {
		return &ErrStale{Made: sp.Plan.Fingerprint, Now: now}
	}
	return nil
}
