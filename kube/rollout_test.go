package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/kube"
	"github.com/mqttgen/mqttgen/kube/kubetest"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

// snapshot is what a rollback must give back of the project's objects in
// a namespace: labels, annotations, data and spec, by object.
func snapshot(t *testing.T, cs kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	put := func(key string, parts ...any) {
		b, err := json.Marshal(parts)
		if err != nil {
			t.Fatal(err)
		}
		out[key] = string(b)
	}
	sel := metav1.ListOptions{LabelSelector: kube.Selector("mqttgen")}
	cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cms.Items {
		put("ConfigMap "+o.Name, o.Labels, o.Annotations, o.Data)
	}
	secrets, _ := cs.CoreV1().Secrets(ns).List(ctx, sel)
	for _, o := range secrets.Items {
		put("Secret "+o.Name, o.Labels, o.Annotations, o.Data)
	}
	sts, _ := cs.AppsV1().StatefulSets(ns).List(ctx, sel)
	for _, o := range sts.Items {
		put("StatefulSet "+o.Name, o.Labels, o.Annotations, o.Spec)
	}
	svcs, _ := cs.CoreV1().Services(ns).List(ctx, sel)
	for _, o := range svcs.Items {
		put("Service "+o.Name, o.Labels, o.Annotations, o.Spec)
	}
	return out
}

// mqttHome is a home on a cluster, in namespace mqtt.
const mqttHome = `package home

broker: image: "eclipse-mosquitto:2.0.20"
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
deploy: {
	target: "kubernetes"
	kubernetes: namespace: "mqtt"
}
`

// Without a kubelet no pod ever runs: the wait for the rollout times out,
// and the rollback leaves the objects as they were before the apply (or
// removes those it created).
func TestRollbackOnTimeout(t *testing.T) {
	a, cs := cluster(t)
	ctx := context.Background()
	home := mqttHome
	applyAndFail := func(t *testing.T, src string) *kube.Plan {
		t.Helper()
		d := desired(t, src)
		o, p := planOf(t, a, d)
		if p.Empty() {
			t.Fatal("nothing to apply")
		}
		if err := a.Execute(ctx, d, o, p, func(string) {}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := a.WaitRollout(ctx, d, 2*time.Second)
		if err == nil || !strings.Contains(err.Error(), "did not roll out within 2s") || !strings.Contains(err.Error(), "controller has not seen generation") {
			t.Fatalf("wait: %v", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("a 2s wait took %s", took)
		}
		n, err := a.Rollback(ctx, o, p)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(p.Ops) {
			t.Errorf("rolled back %d objects of %d", n, len(p.Ops))
		}
		return p
	}

	t.Run("created", func(t *testing.T) {
		applyAndFail(t, home)
		if _, err := cs.AppsV1().StatefulSets("mqtt").Get(ctx, "mqttgen", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the StatefulSet the apply created is still there: %v", err)
		}
		if got := snapshot(t, cs, "mqtt"); len(got) != 0 {
			t.Errorf("objects left: %v", got)
		}
	})

	t.Run("changed", func(t *testing.T) {
		// The namespace of the first case is terminating (no controller
		// empties it): this one has its own.
		base := strings.Replace(home, `namespace: "mqtt"`, `namespace: "mqtt2"`, 1)
		d := desired(t, base)
		o, p := planOf(t, a, d)
		if err := a.Execute(ctx, d, o, p, func(string) {}); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, cs, "mqtt2")
		if len(before) != 4 {
			t.Fatalf("%d objects applied: %v", len(before), before)
		}
		// A new user (the Secret), a new image (the pod template), a new
		// listener (ConfigMap, StatefulSet, Service).
		changed := strings.Replace(base, "2.0.20", "2.0.21", 1) +
			"users: guest: acl: [\"read public/#\"]\nlisteners: ws: {port: 9001, protocol: \"websockets\"}\n"
		p = applyAndFail(t, changed)
		actions := map[string]deploy.Action{}
		for _, op := range p.Ops {
			actions[op.Kind] = op.Action
		}
		if actions["Secret"] != deploy.Update || actions["StatefulSet"] != deploy.Replace || actions["Service"] != deploy.Update {
			t.Errorf("planned %v", actions)
		}
		after := snapshot(t, cs, "mqtt2")
		for k, v := range before {
			if after[k] != v {
				t.Errorf("%s after the rollback:\n%s\nbefore the apply:\n%s", k, after[k], v)
			}
		}
		if len(after) != len(before) {
			t.Errorf("%d objects after the rollback, %d before", len(after), len(before))
		}
		if _, p := planOf(t, a, desired(t, base)); !p.Empty() {
			t.Errorf("the previous home's plan is not empty after the rollback: %+v", p.Ops)
		}
	})
}

// The wait reads the StatefulSet's status as a controller and a kubelet
// would write it (here the test writes it): rolled out ends the wait; a
// pod whose broker crash-loops ends it early with the kubelet's reason.
func TestWaitRollout(t *testing.T) {
	a, cs := cluster(t)
	ctx := context.Background()
	home := mqttHome
	apply := func(src string) *kube.Desired {
		d := desired(t, src)
		o, p := planOf(t, a, d)
		if err := a.Execute(ctx, d, o, p, func(string) {}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := apply(home)

	t.Run("rolled out", func(t *testing.T) {
		go func() {
			time.Sleep(time.Second)
			if err := kubetest.RolledOut(ctx, cs, "mqtt", "mqttgen"); err != nil {
				t.Error(err)
			}
		}()
		start := time.Now()
		if err := a.WaitRollout(ctx, d, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < time.Second || took > 10*time.Second {
			t.Errorf("the wait took %s", took)
		}
	})

	t.Run("crash loop", func(t *testing.T) {
		d := apply(strings.Replace(home, "2.0.20", "2.0.21", 1)) // a new generation
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "mqttgen-0", Namespace: "mqtt", Labels: map[string]string{"app.kubernetes.io/name": "mosquitto", "app.kubernetes.io/instance": "mqttgen"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "broker", Image: "eclipse-mosquitto:2.0.21"}}},
		}
		pod, err := cs.CoreV1().Pods("mqtt").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "broker", Image: "eclipse-mosquitto:2.0.21",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container=broker"}}}}
		if _, err := cs.CoreV1().Pods("mqtt").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = a.WaitRollout(ctx, d, time.Minute)
		if err == nil || !strings.Contains(err.Error(), "the broker does not come up") || !strings.Contains(err.Error(), "pod mqttgen-0, container broker: CrashLoopBackOff: back-off 40s") {
			t.Fatalf("wait: %v", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("a crash loop was seen after %s", took)
		}
	})
}

// The login through the Service, on a real Mosquitto standing in for the
// pod behind a load balancer whose address the test writes as the cloud
// controller (k3s's servicelb) would.
func TestWaitLogin(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true: mosquitto is not on PATH")
		}
		t.Skip("mosquitto is not on PATH")
	}
	a, cs := cluster(t)
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	d := desired(t, fmt.Sprintf(`package home

broker: image: "eclipse-mosquitto:2.0.20"
listeners: mqtt: port: %d
users: admin: acl: ["readwrite #"]
deploy: {
	target: "kubernetes"
	kubernetes: {namespace: "mqtt", service_type: "LoadBalancer"}
}
`, port))
	o, p := planOf(t, a, d)
	if err := a.Execute(ctx, d, o, p, func(string) {}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	h, err := passwd.Hash("admin-pw", 1000)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "passwd"), []byte("admin:"+h+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(fmt.Sprintf("user root\nallow_anonymous false\npassword_file %s/passwd\nlistener %d 127.0.0.1\n", dir, port)), 0o600)
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "mosquitto.conf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	right := deploy.Credentials{Username: "admin", Password: "admin-pw"}
	if _, err := a.WaitLogin(ctx, d, right, 2*time.Second); err == nil || !strings.Contains(err.Error(), "the Service has no address yet") {
		t.Errorf("before the load balancer has an address: %v", err)
	}
	svc, err := cs.CoreV1().Services("mqtt").Get(ctx, "mqttgen", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}
	if _, err := cs.CoreV1().Services("mqtt").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	said, err := a.WaitLogin(ctx, d, right, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("logged in as admin through the Service at 127.0.0.1:%d", port); said != want {
		t.Errorf("got %q, want %q", said, want)
	}
	wrong := deploy.Credentials{Username: "admin", Password: "not-it"}
	if _, err := a.WaitLogin(ctx, d, wrong, 2*time.Second); err == nil || !strings.Contains(err.Error(), "accepts no login through the Service within 2s") {
		t.Errorf("a refused login: %v", err)
	}
}
