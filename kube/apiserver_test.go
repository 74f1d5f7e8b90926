package kube_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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

	"github.com/mqttgen/mqttgen/kube/kubetest"
)

// applier sends manifests to the API server as server-side apply does.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T, cfg *rest.Config) *applier {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// apply applies one manifest with field manager mqttgen and strict field
// validation; dryRun asks the server to validate and admit it without
// storing it.
func (a *applier) apply(manifest []byte, dryRun bool) error {
	data, err := yaml.YAMLToJSON(manifest)
	if err != nil {
		return err
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(data); err != nil {
		return err
	}
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "mqttgen", FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = a.dyn.Resource(m.Resource).Namespace(u.GetNamespace()).Patch(context.Background(), u.GetName(), types.ApplyPatchType, data, opts)
	return err
}

// exampleHomes are the repository's example homes and the golden homes,
// each rendered for target "kubernetes".
func exampleHomes(t *testing.T) map[string][]byte {
	homes := map[string][]byte{}
	for _, p := range []string{"../examples/home.cue", "../examples/minimal/home.cue"} {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		homes[p] = append(src, "\ndeploy: target: \"kubernetes\"\n"...)
	}
	golden, _ := filepath.Glob("testdata/golden/*.txtar")
	for _, p := range golden {
		homes[p] = goldenHome(t, p)
	}
	return homes
}

// TestAPIServerAcceptsManifests: every rendered manifest of the example
// homes passes a real kube-apiserver's validation and admission through
// server-side apply with dry-run; a manifest with a label Kubernetes
// refuses does not.
func TestAPIServerAcceptsManifests(t *testing.T) {
	a := newApplier(t, kubetest.Start(t))
	for name, src := range exampleHomes(t) {
		t.Run(filepath.Base(filepath.Dir(name))+"/"+filepath.Base(name), func(t *testing.T) {
			files := render(t, "home.cue", src)
			var ns []byte
			for _, f := range files {
				if strings.HasSuffix(f.Path, "/namespace.yaml") {
					ns = f.Data
				}
			}
			if err := a.apply(ns, true); err != nil {
				t.Fatalf("namespace.yaml (dry run): %v", err)
			}
			// A dry run in a namespace that does not exist is refused:
			// the namespace is created for real first.
			if err := a.apply(ns, false); err != nil {
				t.Fatalf("namespace.yaml: %v", err)
			}
			n := 0
			for _, f := range files {
				if !strings.HasSuffix(f.Path, ".yaml") || strings.HasSuffix(f.Path, "/kustomization.yaml") {
					continue
				}
				n++
				if err := a.apply(f.Data, true); err != nil {
					t.Errorf("%s: %v", f.Path, err)
				}
			}
			if n < 5 {
				t.Errorf("only %d manifests applied", n)
			}
		})
	}

	t.Run("broken", func(t *testing.T) {
		files := render(t, "home.cue", goldenHome(t, "testdata/golden/minimal.txtar"))
		for _, f := range files {
			if !strings.HasSuffix(f.Path, "/statefulset.yaml") {
				continue
			}
			bad := bytes.Replace(f.Data, []byte("app.kubernetes.io/component: broker"), []byte("app.kubernetes.io/component: not a label value!"), 1)
			if bytes.Equal(bad, f.Data) {
				t.Fatal("no label to break")
			}
			err := a.apply(bad, true)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("a bad label: got %v, want the API server's Invalid", err)
			}
			if !strings.Contains(err.Error(), "not a label value!") {
				t.Errorf("the error does not name the value: %v", err)
			}
			unknown := bytes.Replace(f.Data, []byte("  replicas: 1\n"), []byte("  replicas: 1\n  replica: 2\n"), 1)
			if err := a.apply(unknown, true); err == nil {
				t.Error("an unknown field was accepted")
			}
		}
	})
}
