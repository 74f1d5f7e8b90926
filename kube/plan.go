package kube

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/generators"
)

// Key names an object.
type Key struct{ Kind, Namespace, Name string }

func (k Key) String() string {
	if k.Namespace == "" {
		return fmt.Sprintf("%s %q", k.Kind, k.Name)
	}
	return fmt.Sprintf("%s %q", k.Kind, k.Namespace+"/"+k.Name)
}

func keyOf(u *unstructured.Unstructured) Key {
	return Key{u.GetKind(), u.GetNamespace(), u.GetName()}
}

// kinds are the resources mqttgen renders, in the order they are applied
// (what others need first), with PersistentVolumeClaims, which the
// StatefulSet's claim template makes and destroy may remove.
var kinds = []struct {
	kind string
	gvr  schema.GroupVersionResource
}{
	{"Namespace", schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}},
	{"ConfigMap", schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}},
	{"Secret", schema.GroupVersionResource{Version: "v1", Resource: "secrets"}},
	{"StatefulSet", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}},
	{"Service", schema.GroupVersionResource{Version: "v1", Resource: "services"}},
	{"PersistentVolumeClaim", schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}},
}

func gvrOf(kind string) (schema.GroupVersionResource, int) {
	for i, k := range kinds {
		if k.kind == kind {
			return k.gvr, i
		}
	}
	return schema.GroupVersionResource{}, -1
}

// Desired is what a home asks of the cluster: its manifests, in the
// kustomization's order.
type Desired struct {
	Project, Namespace string
	Objects            []*unstructured.Unstructured
}

// NewDesired parses the manifests Manifests rendered.
func NewDesired(project, namespace string, files []generators.File) (*Desired, error) {
	d := &Desired{Project: project, Namespace: namespace}
	for _, name := range order {
		for _, f := range files {
			if f.Path != Dir+"/"+name {
				continue
			}
			u, err := parse(f.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", f.Path, err)
			}
			d.Objects = append(d.Objects, u)
		}
	}
	return d, nil
}

func parse(manifest []byte) (*unstructured.Unstructured, error) {
	data, err := yaml.YAMLToJSON(manifest)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return u, nil
}

func (d *Desired) object(k Key) *unstructured.Unstructured {
	for _, u := range d.Objects {
		if keyOf(u) == k {
			return u
		}
	}
	return nil
}

// Observed is what the cluster holds of a project.
type Observed struct {
	// Owned are the objects carrying the project's labels (PVCs aside).
	Owned map[Key]*unstructured.Unstructured
	// Existing are the desired objects that exist, owned or not, as they
	// are: what a rollback applies again.
	Existing map[Key]*unstructured.Unstructured
	// WouldBe is what server-side apply would make of each desired object
	// that exists (a dry run), to compare with Existing after the server's
	// defaults.
	WouldBe map[Key]*unstructured.Unstructured
	// Refused is the server's reason a desired object cannot be applied
	// over the existing one (an immutable field of a StatefulSet).
	Refused map[Key]string
	// Claims are the project's PersistentVolumeClaims (the broker's data).
	Claims []Key
}

// Selector picks the objects of a project that mqttgen manages.
func Selector(project string) string {
	return "app.kubernetes.io/managed-by=mqttgen," + LabelProject + "=" + project
}

// Observe reads the project's objects, and has the server dry-run the
// apply of each desired object that exists. d may be nil (destroy).
func (a *Applier) Observe(ctx context.Context, project string, d *Desired) (*Observed, error) {
	o := &Observed{Owned: map[Key]*unstructured.Unstructured{}, Existing: map[Key]*unstructured.Unstructured{},
		WouldBe: map[Key]*unstructured.Unstructured{}, Refused: map[Key]string{}}
	for _, k := range kinds {
		list, err := a.dyn.Resource(k.gvr).List(ctx, metav1.ListOptions{LabelSelector: Selector(project)})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", k.gvr.Resource, err)
		}
		for i := range list.Items {
			u := &list.Items[i]
			if u.GetDeletionTimestamp() != nil {
				continue // on its way out (a namespace waits for its controller)
			}
			u.SetKind(k.kind)
			if k.kind == "PersistentVolumeClaim" {
				o.Claims = append(o.Claims, keyOf(u))
				continue
			}
			o.Owned[keyOf(u)] = u
		}
	}
	if d == nil {
		return o, nil
	}
	for _, want := range d.Objects {
		k := keyOf(want)
		gvr, _ := gvrOf(k.Kind)
		cur, err := a.dyn.Resource(gvr).Namespace(k.Namespace).Get(ctx, k.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		o.Existing[k] = cur
		data, err := want.MarshalJSON()
		if err != nil {
			return nil, err
		}
		force := true
		after, err := a.dyn.Resource(gvr).Namespace(k.Namespace).Patch(ctx, k.Name, types.ApplyPatchType, data,
			metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: &force, DryRun: []string{metav1.DryRunAll}})
		switch {
		case apierrors.IsInvalid(err):
			o.Refused[k] = err.Error()
		case err != nil:
			return nil, fmt.Errorf("%s: %w", k, err)
		default:
			o.WouldBe[k] = after
		}
	}
	return o, nil
}

// Plan is the operations that make the cluster's objects the home's, in
// deploy's terms (Action, Change, FileChange): the same plan as the
// Docker engine's, for objects.
type Plan struct {
	Project   string      `json:"project"`
	Namespace string      `json:"namespace"`
	Ops       []deploy.Op `json:"ops"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Ops) == 0 }

// Summary counts as Terraform does: a replacement adds one and destroys one.
func (p *Plan) Summary() (add, change, destroy int) {
	dp := deploy.Plan{Ops: p.Ops}
	return dp.Summary()
}

// Reconcile compares the home's objects with the cluster's: a missing one
// is created (+); a changed ConfigMap or Secret is updated in place (~),
// the broker reloads its files; a StatefulSet whose pod template changes
// is replaced (-/+: its pod, the claim and its data are kept); other
// changes are updates; objects of the project the home no longer renders
// are destroyed (-). A Namespace that exists without mqttgen's labels is
// not mqttgen's: it is left as it is. It is pure.
func Reconcile(d *Desired, o *Observed) *Plan {
	p := &Plan{Project: d.Project, Namespace: d.Namespace}
	for _, want := range d.Objects {
		k := keyOf(want)
		cur, exists := o.Existing[k]
		if !exists {
			p.Ops = append(p.Ops, createOp(k, want))
			continue
		}
		if k.Kind == "Namespace" && cur.GetLabels()[LabelProject] != d.Project {
			continue
		}
		if why, refused := o.Refused[k]; refused {
			p.Ops = append(p.Ops, deploy.Op{Action: deploy.Replace, Kind: k.Kind, Name: name(k),
				Reasons: []string{"the API server refuses to change it in place (" + firstLine(why) + "): it is deleted and created again; volume claims and their data are kept"}})
			continue
		}
		if op, ok := updateOp(k, cur, o.WouldBe[k]); ok {
			p.Ops = append(p.Ops, op)
		}
	}
	// What the home no longer renders goes last, what uses others first.
	owned := slices.SortedFunc(maps.Keys(o.Owned), compareKeys)
	slices.Reverse(owned)
	for _, k := range owned {
		if d.object(k) == nil {
			p.Ops = append(p.Ops, deploy.Op{Action: deploy.Delete, Kind: k.Kind, Name: name(k),
				Reasons: []string{"home.cue no longer renders it"}})
		}
	}
	return p
}

func compareKeys(a, b Key) int {
	_, i := gvrOf(a.Kind)
	_, j := gvrOf(b.Kind)
	if i != j {
		return i - j
	}
	return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
}

func name(k Key) string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// files are the data of a ConfigMap or Secret by key, decoded.
func files(u *unstructured.Unstructured) map[string][]byte {
	out := map[string][]byte{}
	if u == nil {
		return out
	}
	data, _, _ := unstructured.NestedMap(u.Object, "data")
	for k, v := range data {
		s, _ := v.(string)
		if u.GetKind() == "Secret" {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				b = []byte("(not base64)")
			}
			out[k] = b
		} else {
			out[k] = []byte(s)
		}
	}
	return out
}

func createOp(k Key, want *unstructured.Unstructured) deploy.Op {
	op := deploy.Op{Action: deploy.Create, Kind: k.Kind, Name: name(k), Reasons: []string{"it does not exist"}}
	switch k.Kind {
	case "ConfigMap", "Secret":
		fs := files(want)
		for _, key := range slices.Sorted(maps.Keys(fs)) {
			op.Files = append(op.Files, deploy.FileChange{Path: key, Action: deploy.Create})
		}
	case "StatefulSet":
		containers, _, _ := unstructured.NestedSlice(want.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			c, _ := c.(map[string]any)
			if c["name"] != "broker" {
				continue
			}
			op.Changes = append(op.Changes, deploy.Change{Attr: "image", New: fmt.Sprint(c["image"])})
			op.Changes = append(op.Changes, deploy.Change{Attr: "ports", New: portList(c["ports"], "containerPort")})
		}
	case "Service":
		t, _, _ := unstructured.NestedString(want.Object, "spec", "type")
		ports, _, _ := unstructured.NestedFieldNoCopy(want.Object, "spec", "ports")
		op.Changes = append(op.Changes, deploy.Change{Attr: "type", New: t}, deploy.Change{Attr: "ports", New: portList(ports, "port")})
	}
	return op
}

// assigned hides a value the cluster picks (a node port, a cluster IP):
// the plan says that it is the cluster's, not which, as it is not the
// home's and differs between clusters and runs.
func assigned(attr, v string) string {
	i := strings.LastIndex(attr, ".")
	switch attr[i+1:] {
	case "nodePort", "clusterIP", "clusterIPs", "healthCheckNodePort":
		if v != "" {
			return "(assigned by the cluster)"
		}
	}
	return v
}

// portList is "name:number, ..." of a list of ports.
func portList(v any, field string) string {
	l, _ := v.([]any)
	var out []string
	for _, p := range l {
		m, _ := p.(map[string]any)
		out = append(out, fmt.Sprintf("%v:%v", m["name"], m[field]))
	}
	return strings.Join(out, ", ")
}

// updateOp compares an object with what applying the home's would make of
// it; false when they are the same.
func updateOp(k Key, cur, next *unstructured.Unstructured) (deploy.Op, bool) {
	op := deploy.Op{Action: deploy.Update, Kind: k.Kind, Name: name(k)}
	a, b := flatten(stripped(cur)), flatten(stripped(next))
	for _, attr := range slices.Sorted(maps.Keys(union(a, b))) {
		if strings.HasPrefix(attr, "data.") || a[attr] == b[attr] {
			continue
		}
		op.Changes = append(op.Changes, deploy.Change{Attr: attr, Old: assigned(attr, a[attr]), New: assigned(attr, b[attr])})
		if strings.HasPrefix(attr, "spec.template.") {
			op.Action = deploy.Replace
		}
	}
	if k.Kind == "ConfigMap" || k.Kind == "Secret" {
		of, nf := files(cur), files(next)
		for _, key := range slices.Sorted(maps.Keys(union(of, nf))) {
			old, want := of[key], nf[key]
			if string(old) == string(want) {
				continue
			}
			fc := deploy.FileChange{Path: key, Action: deploy.Update, Diff: deploy.RedactedDiff(key, old, want)}
			switch {
			case old == nil:
				fc.Action = deploy.Create
			case want == nil:
				fc.Action = deploy.Delete
			}
			op.Files = append(op.Files, fc)
		}
	}
	if len(op.Changes)+len(op.Files) == 0 {
		return op, false
	}
	switch {
	case op.Action == deploy.Replace:
		op.Reasons = []string{"its pod template changed: the pod is recreated (its volume claim and data are kept)"}
	case len(op.Files) > 0:
		op.Reasons = []string{"its files changed: they reach the pod without a restart, and the broker reloads them"}
	default:
		op.Reasons = []string{"its settings changed"}
	}
	return op, true
}

// stripped is an object without what the server keeps for itself.
func stripped(u *unstructured.Unstructured) map[string]any {
	if u == nil {
		return nil
	}
	c := u.DeepCopy().Object
	delete(c, "status")
	md, _ := c["metadata"].(map[string]any)
	for k := range md {
		if k != "labels" && k != "annotations" {
			delete(md, k)
		}
	}
	if c["kind"] == "Secret" || c["kind"] == "ConfigMap" {
		delete(c, "data")
		delete(c, "stringData")
	}
	return c
}

func union[V any](a, b map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// flatten turns an object into its leaves by path: a list of objects with
// names is indexed by name, a list of anything else is one leaf.
func flatten(v map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(join(prefix, k), e)
			}
			return
		case []any:
			named := len(v) > 0
			for _, e := range v {
				m, ok := e.(map[string]any)
				if _, has := m["name"].(string); !ok || !has {
					named = false
				}
			}
			if named {
				for _, e := range v {
					m := e.(map[string]any)
					walk(prefix+"["+m["name"].(string)+"]", m)
				}
				return
			}
		}
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
	walk("", v)
	// A name is its list's index already.
	for k := range out {
		if strings.HasSuffix(k, "].name") {
			delete(out, k)
		}
	}
	return out
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

var symbols = map[deploy.Action]string{deploy.Create: "  +", deploy.Update: "  ~", deploy.Replace: "-/+", deploy.Delete: "  -"}

var legend = map[deploy.Action]string{
	deploy.Create:  "create",
	deploy.Update:  "update in-place (a Secret or ConfigMap reaches the pod, and the broker reloads it)",
	deploy.Replace: "destroy and then create replacement (the pod; its volume claim and data are kept)",
	deploy.Delete:  "destroy",
}

var verbs = map[deploy.Action]string{
	deploy.Create:  "will be created",
	deploy.Update:  "will be updated in-place",
	deploy.Replace: "must be replaced",
	deploy.Delete:  "will be destroyed",
}

// WriteText writes the plan as the Docker engine's plan reads.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	if p.Empty() {
		fmt.Fprintf(&b, "No changes. The project %q in namespace %q of the cluster matches home.cue.\n", p.Project, p.Namespace)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "mqttgen will perform the following actions on project %q in namespace %q of the cluster.\n", p.Project, p.Namespace)
	b.WriteString("Resource actions are indicated with the following symbols:\n")
	for _, a := range []deploy.Action{deploy.Create, deploy.Update, deploy.Replace, deploy.Delete} {
		if slices.ContainsFunc(p.Ops, func(op deploy.Op) bool { return op.Action == a }) {
			fmt.Fprintf(&b, "%s %s\n", symbols[a], legend[a])
		}
	}
	for _, op := range p.Ops {
		fmt.Fprintf(&b, "\n  # %s %q %s\n", op.Kind, op.Name, verbs[op.Action])
		for _, r := range op.Reasons {
			fmt.Fprintf(&b, "  #   because %s\n", r)
		}
		sym := symbols[op.Action]
		if op.Action == deploy.Delete || len(op.Changes)+len(op.Files) == 0 {
			fmt.Fprintf(&b, "%s %s %q\n", sym, op.Kind, op.Name)
			continue
		}
		fmt.Fprintf(&b, "%s %s %q {\n", sym, op.Kind, op.Name)
		for _, c := range op.Changes {
			switch {
			case op.Action == deploy.Create:
				fmt.Fprintf(&b, "      + %-11s = %s\n", c.Attr, orNone(c.New))
			case op.Action == deploy.Replace && strings.HasPrefix(c.Attr, "spec.template."):
				fmt.Fprintf(&b, "      ~ %s = %s -> %s # forces replacement\n", c.Attr, orNone(c.Old), orNone(c.New))
			default:
				fmt.Fprintf(&b, "      ~ %s = %s -> %s\n", c.Attr, orNone(c.Old), orNone(c.New))
			}
		}
		for _, f := range op.Files {
			fmt.Fprintf(&b, "      %s file %q\n", f.Action.Symbol(), f.Path)
			if f.Diff != "" {
				for _, l := range strings.Split(strings.TrimSuffix(f.Diff, "\n"), "\n") {
					b.WriteString("          " + l + "\n")
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

// WriteJSON writes the plan as one JSON document (secrets redacted as in
// the text).
func (p *Plan) WriteJSON(w io.Writer) error {
	c := *p
	if c.Ops == nil {
		c.Ops = []deploy.Op{}
	}
	add, change, destroy := p.Summary()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		FormatVersion string `json:"format_version"`
		*Plan
		Summary map[string]int `json:"summary"`
	}{"1", &c, map[string]int{"add": add, "change": change, "destroy": destroy}})
}

func orNone(s string) string {
	if s == "" || s == "null" {
		return "(none)"
	}
	return s
}
