package kube_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/schema"
)

var updatePlans = flag.Bool("update-plans", false, "rewrite testdata/plans (review the diff!)")

// desired renders a home into the objects it asks of the cluster.
func desired(t *testing.T, src string) *kube.Desired {
	t.Helper()
	cfg, diags := schema.LoadSource("home.cue", []byte(src))
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	d, err := kube.NewDesired(cfg.Deploy.Project, cfg.Deploy.Kubernetes.Namespace, render(t, "home.cue", []byte(src)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// planOf observes the cluster for a home and reconciles.
func planOf(t *testing.T, a applier, d *kube.Desired) (*kube.Observed, *kube.Plan) {
	t.Helper()
	o, err := a.Observe(context.Background(), d.Project, d)
	if err != nil {
		t.Fatal(err)
	}
	return o, kube.Reconcile(d, o)
}

func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *updatePlans {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (go test -update-plans writes it: review it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("plan differs from %s (go test -update-plans, then read the diff):\n%s", file, got)
	}
}

// TestPlanApply walks a home through changes on a real API server: each
// plan's text is a golden file, applying it makes the cluster's objects
// the home's (the next plan is empty), and what the plan destroys is gone.
func TestPlanApply(t *testing.T) {
	a, cs := cluster(t)
	ctx := context.Background()
	home := `package home

broker: image: "eclipse-mosquitto:2.0.20"
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
deploy: {
	target: "kubernetes"
	kubernetes: {namespace: "mqtt", service_type: "LoadBalancer"}
}
`
	steps := []struct {
		name     string
		old, new string // a change of the home
		// check looks at the cluster after the apply.
		check func(t *testing.T)
	}{
		{name: "fresh"},
		{name: "new-user", new: "users: guest: acl: [\"read public/#\"]\n"},
		{name: "log-types", new: "logging: types: [\"error\", \"warning\"]\n"},
		{name: "image", old: "2.0.20", new: "2.0.21"},
		{name: "listener-port", old: "mqtt: port: 1883", new: "mqtt: port: 1885"},
		{name: "service-type", old: "LoadBalancer", new: "NodePort"},
		{name: "no-service", old: "mqtt: port: 1885", new: "mqtt: {port: 1885, bind: \"127.0.0.1\"}", check: func(t *testing.T) {
			if _, err := cs.CoreV1().Services("mqtt").Get(ctx, "mqttgen", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the Service is still there: %v", err)
			}
		}},
		// The claim template cannot change in place: the API server refuses
		// it, and the StatefulSet is deleted and created again.
		{name: "persistence-off", new: "persistence: enabled: false\n", check: func(t *testing.T) {
			sts, err := cs.AppsV1().StatefulSets("mqtt").Get(ctx, "mqttgen", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(sts.Spec.VolumeClaimTemplates) != 0 {
				t.Errorf("the StatefulSet still claims %d volumes", len(sts.Spec.VolumeClaimTemplates))
			}
		}},
		{name: "namespace", old: "namespace: \"mqtt\"", new: "namespace: \"broker\"", check: func(t *testing.T) {
			for _, get := range []func() error{
				func() error {
					_, err := cs.CoreV1().ConfigMaps("mqtt").Get(ctx, "mqttgen-config", metav1.GetOptions{})
					return err
				},
				func() error {
					_, err := cs.CoreV1().Secrets("mqtt").Get(ctx, "mqttgen-secret", metav1.GetOptions{})
					return err
				},
				func() error {
					_, err := cs.AppsV1().StatefulSets("mqtt").Get(ctx, "mqttgen", metav1.GetOptions{})
					return err
				},
			} {
				if err := get(); !apierrors.IsNotFound(err) {
					t.Errorf("an object of the old namespace is still there: %v", err)
				}
			}
			// No namespace controller runs: the old namespace waits,
			// terminating, and is no longer the project's.
			ns, err := cs.CoreV1().Namespaces().Get(ctx, "mqtt", metav1.GetOptions{})
			if err == nil && ns.DeletionTimestamp == nil {
				t.Errorf("namespace mqtt is not being deleted")
			}
		}},
	}
	for _, s := range steps {
		if s.old != "" || s.new != "" {
			if s.old == "" {
				home += s.new
			} else if next := strings.Replace(home, s.old, s.new, 1); next != home {
				home = next
			} else {
				t.Fatalf("%s: no %q in the home", s.name, s.old)
			}
		}
		t.Run(s.name, func(t *testing.T) {
			d := desired(t, home)
			o, p := planOf(t, a, d)
			var text bytes.Buffer
			if err := p.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join("testdata", "plans", s.name+".txt"), text.Bytes())
			for _, secret := range []string{"HASH-OF-", "PASSWORD-OF-", "$7$"} {
				if strings.Contains(text.String(), secret) {
					t.Errorf("the plan shows %q", secret)
				}
			}
			if p.Empty() {
				t.Fatal("nothing to do")
			}
			var done []string
			if err := a.Execute(ctx, d, o, p, func(l string) { done = append(done, l) }); err != nil {
				t.Fatal(err)
			}
			if len(done) != len(p.Ops) {
				t.Errorf("%d operations planned, %d done: %q", len(p.Ops), len(done), done)
			}
			if _, again := planOf(t, a, d); !again.Empty() {
				var b bytes.Buffer
				again.WriteText(&b)
				t.Errorf("after apply the plan is not empty:\n%s", b.String())
			}
			if s.check != nil {
				s.check(t)
			}
		})
	}
	_, p := planOf(t, a, desired(t, home))
	var text bytes.Buffer
	p.WriteText(&text)
	if want := "No changes. The project \"mqttgen\" in namespace \"broker\" of the cluster matches home.cue.\n"; text.String() != want {
		t.Errorf("no changes: got %q", text.String())
	}
}

// A namespace that exists without mqttgen's labels is used, never changed
// nor destroyed; the plan's JSON holds the same operations, redacted.
func TestNamespaceNotOurs(t *testing.T) {
	a, cs := cluster(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shared", Labels: map[string]string{"team": "home"}}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := desired(t, `package home

broker: image: "eclipse-mosquitto:2.0.20"
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
deploy: {
	target: "kubernetes"
	kubernetes: namespace: "shared"
}
`)
	o, p := planOf(t, a, d)
	for _, op := range p.Ops {
		if op.Kind == "Namespace" {
			t.Errorf("the plan touches the namespace: %+v", op)
		}
	}
	if len(p.Ops) != 4 {
		t.Errorf("%d operations, want 4 (ConfigMap, Secret, StatefulSet, Service)", len(p.Ops))
	}
	var js bytes.Buffer
	if err := p.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"summary": {`) || !strings.Contains(js.String(), `"add": 4`) || strings.Contains(js.String(), "HASH-OF") {
		t.Errorf("JSON plan:\n%s", js.String())
	}
	if err := a.Execute(ctx, d, o, p, func(string) {}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Namespaces().Get(ctx, "shared", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ours := got.Labels[kube.LabelProject]; ours || got.Labels["team"] != "home" {
		t.Errorf("the namespace's labels changed: %v", got.Labels)
	}
	o, err = a.Observe(ctx, "mqttgen", nil)
	if err != nil {
		t.Fatal(err)
	}
	destroy, _ := kube.PlanDestroy("mqttgen", "shared", o, true)
	if len(destroy.Ops) != 4 {
		t.Errorf("destroy plans %d operations, want 4", len(destroy.Ops))
	}
	for _, op := range destroy.Ops {
		if op.Kind == "Namespace" {
			t.Errorf("destroy would remove a namespace that is not mqttgen's")
		}
	}
}
