package kube_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/kube/kubetest"
)

// cluster starts an API server and returns an applier and a client for it.
func cluster(t *testing.T) (applier, *kubernetes.Clientset) {
	t.Helper()
	cfg := kubetest.Start(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return newApplier(t, cfg), cs
}

// applier applies manifests as the tests read them: an error alone.
type applier struct{ *kube.Applier }

func newApplier(t *testing.T, cfg *rest.Config) applier {
	a, err := kube.NewApplier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return applier{a}
}

func (a applier) apply(manifest []byte, dryRun bool) error {
	_, err := a.Apply(context.Background(), manifest, dryRun)
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

// ApplyAll creates every object, applying again changes nothing, and a
// changed account changes the Secret alone.
func TestApplyAll(t *testing.T) {
	a := newApplier(t, kubetest.Start(t))
	ctx := context.Background()
	home := goldenHome(t, "testdata/golden/minimal.txtar")
	summary := func(rs []kube.Result) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.String())
		}
		return strings.Join(out, "\n")
	}
	rs, err := a.ApplyAll(ctx, render(t, "home.cue", home))
	if err != nil {
		t.Fatal(err)
	}
	want := `Namespace mqttgen applied
ConfigMap mqttgen/mqttgen-config applied
Secret mqttgen/mqttgen-secret applied
StatefulSet mqttgen/mqttgen applied
Service mqttgen/mqttgen applied`
	if got := summary(rs); got != want {
		t.Errorf("first apply:\n%s\nwant:\n%s", got, want)
	}
	if rs, err = a.ApplyAll(ctx, render(t, "home.cue", home)); err != nil {
		t.Fatal(err)
	}
	if got := summary(rs); strings.Contains(got, " applied") {
		t.Errorf("second apply changed objects:\n%s", got)
	}
	changed := append(home, "users: guest: acl: [\"read public/#\"]\n"...)
	if rs, err = a.ApplyAll(ctx, render(t, "home.cue", changed)); err != nil {
		t.Fatal(err)
	}
	want = `Namespace mqttgen unchanged
ConfigMap mqttgen/mqttgen-config unchanged
Secret mqttgen/mqttgen-secret applied
StatefulSet mqttgen/mqttgen unchanged
Service mqttgen/mqttgen unchanged`
	if got := summary(rs); got != want {
		t.Errorf("a new user:\n%s\nwant:\n%s", got, want)
	}
}
