package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/mqttgen/mqttgen/kube/kubetest"
)

// plan, apply (the wait and its rollback, --wait=false) and destroy on a
// real API server, through a kubeconfig and the context the home names.
func TestApplyKubernetes(t *testing.T) {
	cfg := kubetest.Start(t)
	dir := t.TempDir()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["test"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["k3s"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "test"}
	kc.Contexts["other"] = &clientcmdapi.Context{Cluster: "nowhere", AuthInfo: "test"}
	kc.CurrentContext = "other"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	home := filepath.Join(dir, "home")
	os.MkdirAll(home, 0o755)
	src := `package home

broker: image: "eclipse-mosquitto:2.0.20"
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
deploy: {
	target: "kubernetes"
	kubernetes: {namespace: "mqtt", kube_context: "k3s", service_type: "ClusterIP"}
}
`
	if err := os.WriteFile(filepath.Join(home, "home.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	mqttgen := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		return code, out.String(), errb.String()
	}

	// plan shows what apply will do; apply asks.
	code, stdout, stderr := mqttgen("plan", "--detailed-exitcode", home)
	if code != 2 || !strings.Contains(stdout, `StatefulSet "mqtt/mqttgen" will be created`) || !strings.Contains(stdout, "Plan: 5 to add, 0 to change, 0 to destroy.") {
		t.Errorf("plan: exit %d:\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = mqttgen("apply", home)
	if code == 0 || !strings.Contains(stdout, "Apply cancelled.") {
		t.Errorf("apply without an answer: exit %d:\n%s", code, stdout)
	}

	code, stdout, stderr = mqttgen("apply", "--auto-approve", "--wait=false", home)
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	for _, want := range []string{`Namespace "mqtt": created`, `Secret "mqtt/mqttgen-secret": created`, `StatefulSet "mqtt/mqttgen": created`, `Service "mqtt/mqttgen": created`, "Apply complete! Resources: 5 added, 0 changed, 0 destroyed", "not waiting for the broker"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("first apply: no %q in:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = mqttgen("apply", "--auto-approve", "--wait=false", home)
	if code != 0 || !strings.Contains(stdout, "No changes.") {
		t.Errorf("second apply: exit %d:\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = mqttgen("plan", "--detailed-exitcode", home)
	if code != 0 {
		t.Errorf("plan after apply: exit %d:\n%s", code, stdout)
	}

	// No kubelet runs the pod: the wait times out, and the objects the
	// apply changed are as they were again.
	changed := strings.Replace(src, "2.0.20", "2.0.21", 1) + "users: guest: acl: [\"read public/#\"]\n"
	if err := os.WriteFile(filepath.Join(home, "home.cue"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = mqttgen("apply", "--auto-approve", "--timeout", "2s", home)
	if code != 1 || !strings.Contains(stderr, "the broker did not roll out within 2s") || !strings.Contains(stderr, "rolled back: the 3 objects it changed are as they were before") {
		t.Errorf("apply with a wait: exit %d:\n%s%s", code, stdout, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
		t.Errorf("the failure takes %d lines:\n%s", n+1, stderr)
	}
	code, stdout, _ = mqttgen("plan", "--detailed-exitcode", home)
	if code != 2 || !strings.Contains(stdout, "Plan: 1 to add, 2 to change, 1 to destroy.") {
		t.Errorf("after the rollback: exit %d:\n%s", code, stdout)
	}
	if err := os.WriteFile(filepath.Join(home, "home.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ = mqttgen("plan", "--detailed-exitcode", home); code != 0 {
		t.Errorf("the home before the change, after the rollback: exit %d:\n%s", code, stdout)
	}

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The StatefulSet's status written as its controller would: the wait
	// ends and apply completes.
	go func() {
		time.Sleep(2 * time.Second)
		if err := kubetest.RolledOut(ctx, cs, "mqtt", "mqttgen"); err != nil {
			t.Error(err)
		}
	}()
	guest := src + "users: guest: acl: [\"read public/#\"]\n"
	if err := os.WriteFile(filepath.Join(home, "home.cue"), []byte(guest), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = mqttgen("apply", "--auto-approve", "--timeout", "30s", home)
	if code != 0 || !strings.Contains(stdout, `Secret "mqtt/mqttgen-secret": updated in-place`) || !strings.Contains(stdout, "Apply complete! Resources: 0 added, 1 changed, 0 destroyed") || !strings.Contains(stdout, "rolled out).") ||
		!strings.Contains(stdout, "Rolled out; no login tried: a ClusterIP Service is not reachable from outside the cluster.") {
		t.Errorf("apply with a rollout: exit %d:\n%s%s", code, stdout, stderr)
	}

	// A volume claim the StatefulSet's controller would have made: destroy
	// keeps it, and its namespace, unless --volumes.
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-mqttgen-0", Namespace: "mqtt", Labels: map[string]string{"app.kubernetes.io/managed-by": "mqttgen", "mqttgen.io/project": "mqttgen"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("mqtt").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = mqttgen("destroy", "--auto-approve", home)
	if code != 0 || !strings.Contains(stdout, "Destroy complete! Resources: 4 destroyed.") || !strings.Contains(stdout, `Kept PersistentVolumeClaim "mqtt/data-mqttgen-0"`) || !strings.Contains(stdout, `Kept Namespace "mqtt" (it holds 1 kept volume claims)`) {
		t.Errorf("destroy: exit %d:\n%s%s", code, stdout, stderr)
	}
	if _, err := cs.AppsV1().StatefulSets("mqtt").Get(ctx, "mqttgen", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the StatefulSet is still there: %v", err)
	}
	if c, err := cs.CoreV1().PersistentVolumeClaims("mqtt").Get(ctx, claim.Name, metav1.GetOptions{}); err != nil || c.DeletionTimestamp != nil {
		t.Errorf("the claim was not kept: %v", err)
	}
	code, stdout, stderr = mqttgen("destroy", "--auto-approve", "--volumes", home)
	if code != 0 || !strings.Contains(stdout, "Destroy complete! Resources: 2 destroyed.") {
		t.Errorf("destroy --volumes: exit %d:\n%s%s", code, stdout, stderr)
	}
	// No controller finishes a deletion here: the claim and the namespace
	// are on their way out.
	if c, err := cs.CoreV1().PersistentVolumeClaims("mqtt").Get(ctx, claim.Name, metav1.GetOptions{}); err == nil && c.DeletionTimestamp == nil {
		t.Error("destroy --volumes kept the claim")
	}
	if strings.Contains(stdout+stderr, "HASH") || strings.Contains(stdout+stderr, "$7$") {
		t.Errorf("a hash in the output:\n%s", stdout)
	}
}
