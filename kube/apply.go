package kube

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/generators"
)

// FieldManager owns the fields mqttgen applies.
const FieldManager = "mqttgen"

// Applier sends manifests to an API server with server-side apply.
type Applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// NewApplier connects to the API server of cfg.
func NewApplier(cfg *rest.Config) (*Applier, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// Result is what applying one manifest did.
type Result struct {
	Kind, Namespace, Name string
	// Changed is false when the server kept the object as it was.
	Changed bool
}

func (r Result) String() string {
	verb := "unchanged"
	if r.Changed {
		verb = "applied"
	}
	if r.Namespace == "" {
		return fmt.Sprintf("%s %s %s", r.Kind, r.Name, verb)
	}
	return fmt.Sprintf("%s %s/%s %s", r.Kind, r.Namespace, r.Name, verb)
}

// Apply applies one manifest (YAML) with field manager mqttgen, strict
// field validation and force (mqttgen owns what it renders); dryRun has
// the server validate and admit it without storing it.
func (a *Applier) Apply(ctx context.Context, manifest []byte, dryRun bool) (Result, error) {
	data, err := yaml.YAMLToJSON(manifest)
	if err != nil {
		return Result{}, err
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(data); err != nil {
		return Result{}, err
	}
	gvk := u.GroupVersionKind()
	r := Result{Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return r, err
	}
	res := a.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	before := ""
	if old, err := res.Get(ctx, u.GetName(), metav1.GetOptions{}); err == nil {
		before = old.GetResourceVersion()
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: FieldManager, FieldValidation: "Strict", Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	after, err := res.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts)
	if err != nil {
		return r, fmt.Errorf("%s %s: %w", r.Kind, path.Join(r.Namespace, r.Name), err)
	}
	r.Changed = after.GetResourceVersion() != before
	return r, nil
}

// ApplyAll applies the manifests of Dir in the kustomization's order (the
// Namespace first), without waiting for the broker to come up.
func (a *Applier) ApplyAll(ctx context.Context, files []generators.File) ([]Result, error) {
	var out []Result
	for _, name := range order {
		for _, f := range files {
			if f.Path != Dir+"/"+name {
				continue
			}
			r, err := a.Apply(ctx, f.Data, false)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// order is the kustomization's: what others need comes first.
var order = []string{"namespace.yaml", "configmap.yaml", SecretFile, "statefulset.yaml", "service.yaml"}

// Execute performs a plan in its order: a created, updated or replaced
// object is applied as the home renders it (one the server refuses to
// change in place is deleted first); a destroyed one is deleted, its
// dependents in the background. say gets a line per object done.
func (a *Applier) Execute(ctx context.Context, d *Desired, o *Observed, p *Plan, say func(string)) error {
	for _, op := range p.Ops {
		k := opKey(op)
		switch {
		case op.Action == deploy.Delete:
			if err := a.delete(ctx, k); err != nil {
				return err
			}
			say(fmt.Sprintf("%s: destroyed", k))
			continue
		case op.Action == deploy.Replace && o.Refused[k] != "":
			if err := a.delete(ctx, k); err != nil {
				return err
			}
		}
		want := d.object(k)
		if want == nil {
			return fmt.Errorf("the plan names %s, which the home does not render", k)
		}
		data, err := want.MarshalJSON()
		if err != nil {
			return err
		}
		if _, err := a.Apply(ctx, data, false); err != nil {
			return err
		}
		say(fmt.Sprintf("%s: %s", k, doneVerb[op.Action]))
	}
	return nil
}

var doneVerb = map[deploy.Action]string{deploy.Create: "created", deploy.Update: "updated in-place", deploy.Replace: "replaced"}

func opKey(op deploy.Op) Key {
	ns, n, ok := strings.Cut(op.Name, "/")
	if !ok {
		return Key{op.Kind, "", op.Name}
	}
	return Key{op.Kind, ns, n}
}

// delete deletes an object and waits until it is gone or only waits for a
// finalizer (a namespace's, whose controller empties it); gone already is
// fine.
func (a *Applier) delete(ctx context.Context, k Key) error {
	gvr, _ := gvrOf(k.Kind)
	res := a.dyn.Resource(gvr).Namespace(k.Namespace)
	bg := metav1.DeletePropagationBackground
	if err := res.Delete(ctx, k.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", k, err)
	}
	for {
		u, err := res.Get(ctx, k.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && u.GetDeletionTimestamp() != nil && len(u.GetFinalizers())+len(finalizers(u)) > 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("deleting %s: %w", k, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deleting %s: %w", k, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// finalizers of a namespace are in its spec.
func finalizers(u *unstructured.Unstructured) []string {
	f, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "finalizers")
	return f
}
