// Package kubetest starts a real Kubernetes API server for tests: etcd and
// kube-apiserver, built by `make kube-bin` into a cache outside the clone,
// on free loopback ports with their own temporary folders. There is no
// kubelet, scheduler or controller: objects are validated, admitted and
// stored, never run.
package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Version is the release of kube-apiserver the tests run, as the Makefile's
// KUBE_VERSION builds it.
const Version = "1.37.2"

// BinDir is where `make kube-bin` puts kube-apiserver and etcd:
// $MQTTGEN_KUBE_BIN, or $XDG_CACHE_HOME/mqttgen/kube/v<Version>
// ($HOME/.cache when XDG_CACHE_HOME is unset).
func BinDir() string {
	if d := os.Getenv("MQTTGEN_KUBE_BIN"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	return filepath.Join(cache, "mqttgen", "kube", "v"+Version)
}

// token is the static bearer token of the tests' user, in group
// system:masters.
const token = "mqttgen-test-token"

// Start runs etcd and kube-apiserver until the test ends and returns a
// client configuration for the API server. Without the binaries the test
// is skipped, and fails under CI=true.
func Start(t testing.TB) *rest.Config {
	t.Helper()
	bin := BinDir()
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			msg := fmt.Sprintf("no %s in %s: run `make kube-bin` (it builds kube-apiserver and etcd once)", b, bin)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	dir := t.TempDir()
	ports := freePorts(t, 3)
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	start(t, dir, "etcd", filepath.Join(bin, "etcd"),
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", "--log-level=warn",
	)

	key := filepath.Join(dir, "sa.key")
	writeKey(t, key)
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",mqttgen-test,1,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "certs")
	exited := start(t, dir, "kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+certDir,
		"--token-auth-file="+tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://mqttgen.test",
		"--service-account-key-file="+key, "--service-account-signing-key-file="+key,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=false",
		// No endpoint of its own in the default Service: it serves on loopback.
		"--endpoint-reconciler-type=none",
	)
	cfg := &rest.Config{Host: "https://127.0.0.1:" + strconv.Itoa(ports[2]), BearerToken: token}
	waitReady(t, cfg, certDir, exited)
	return cfg
}

func freePorts(t testing.TB, n int) []int {
	var out []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// start runs a server in its own process group, its output in dir, and
// stops it (and waits for it) when the test ends. The channel is closed
// when it exits.
func start(t testing.TB, dir, name, path string, args ...string) <-chan struct{} {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s's log (last 4 KiB):\n%s", name, tail(b, 4096))
			}
		}
	})
	return done
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func writeKey(t testing.TB, path string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// kube-apiserver reads the public key from the same file only in
	// SEC1 or PKCS#1 form, not PKCS#8.
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits for /readyz and trusts the self-signed certificate the
// API server wrote into certDir (it names 127.0.0.1).
func waitReady(t testing.TB, cfg *rest.Config, certDir string, exited <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		select {
		case <-exited:
			t.Fatal("kube-apiserver exited (its log follows)")
		default:
		}
		if ca, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt")); err == nil && cfg.CAData == nil {
			cfg.CAData = ca
		}
		if cfg.CAData != nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(cfg.CAData)
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			req, _ := http.NewRequestWithContext(ctx, "GET", cfg.Host+"/readyz", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := c.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
				last = fmt.Sprintf("%s: %s", resp.Status, tail(b, 300))
			} else {
				last = err.Error()
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("kube-apiserver not ready in 90s: %s", last)
}

// RolledOut writes the status of StatefulSet namespace/name as its
// controller would once every replica runs the current revision: there is
// no controller here to write it.
func RolledOut(ctx context.Context, cs kubernetes.Interface, namespace, name string) error {
	sts, err := cs.AppsV1().StatefulSets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	sts.Status = appsv1.StatefulSetStatus{ObservedGeneration: sts.Generation, Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1,
		AvailableReplicas: 1, CurrentRevision: name + "-1", UpdateRevision: name + "-1"}
	_, err = cs.AppsV1().StatefulSets(namespace).UpdateStatus(ctx, sts, metav1.UpdateOptions{})
	return err
}
