package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/mqttgen/mqttgen/kube/kubetest"
)

// apply --auto-approve --wait=false on a real API server, through a
// kubeconfig and the context the home names.
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
	kubernetes: {namespace: "mqtt", kube_context: "k3s"}
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

	code, _, stderr := mqttgen("apply", home)
	if code == 0 || !strings.Contains(stderr, "--auto-approve --wait=false") {
		t.Errorf("apply without --wait=false: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := mqttgen("apply", "--auto-approve", "--wait=false", home)
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Namespace mqtt applied", "Secret mqtt/mqttgen-secret applied", "StatefulSet mqtt/mqttgen applied", "Service mqtt/mqttgen applied", "5 of 5 objects changed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("first apply: no %q in:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = mqttgen("apply", "--auto-approve", "--wait=false", home)
	if code != 0 || !strings.Contains(stdout, "0 of 5 objects changed") {
		t.Errorf("second apply: exit %d:\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "HASH") || strings.Contains(stdout+stderr, "$7$") {
		t.Errorf("a hash in apply's output:\n%s", stdout)
	}
}
