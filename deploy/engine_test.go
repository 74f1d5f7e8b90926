package deploy_test

// Tests against the real Docker engine. Without one they are skipped, and
// under CI=true they fail. They build their Mosquitto image from this host's
// Debian mosquitto (deploytest), once per run, and remove it at the end; each
// test uses its own project name and free ports and removes its containers,
// networks and volumes.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/workspace"
)

var (
	imageOnce sync.Once
	imageErr  error
	imageTag  = deploytest.Tag("mosquitto")
	imageCli  *client.Client
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir) // the static mqttgen of bundled_test.go
	}
	if imageCli != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := deploytest.RemoveImage(ctx, imageCli, imageTag); err != nil {
			fmt.Fprintf(os.Stderr, "remove test image %s: %v\n", imageTag, err)
		}
		cancel()
	}
	os.Exit(code)
}

// testEngine connects and builds the test image once per run.
func testEngine(t *testing.T) *client.Client {
	t.Helper()
	cli := deploytest.Engine(t)
	imageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		imageErr = deploytest.MosquittoImage(ctx, cli, imageTag)
		imageCli = cli
		t.Logf("built %s in %s", imageTag, time.Since(start).Round(time.Millisecond))
	})
	if imageErr != nil {
		t.Fatalf("build the test image: %v", imageErr)
	}
	return cli
}

func freePort(t *testing.T) int { return deploytest.FreePort(t) }

// testHome is a home on disk with its state directory.
type testHome struct {
	t       *testing.T
	dir     string
	project string
	text    string
}

func newHome(t *testing.T, text string) *testHome {
	project := fmt.Sprintf("mqttgen-test-%d-%s", os.Getpid(), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	h := &testHome{t: t, dir: t.TempDir(), project: project}
	h.write(text)
	return h
}

func (h *testHome) write(text string) {
	h.t.Helper()
	text = strings.ReplaceAll(text, "IMAGE", imageTag)
	text = strings.ReplaceAll(text, "PROJECT", h.project)
	h.text = text
	if err := os.WriteFile(filepath.Join(h.dir, "home.cue"), []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *testHome) edit(old, new string) {
	h.t.Helper()
	if !strings.Contains(h.text, old) {
		h.t.Fatalf("edit: %q not in the home", old)
	}
	h.write(strings.Replace(h.text, old, new, 1))
}

func (h *testHome) open() *workspace.Home {
	h.t.Helper()
	w, err := workspace.Open(filepath.Join(h.dir, "home.cue"), filepath.Join(h.dir, ".mqttgen"))
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

func (h *testHome) desired() *deploy.Desired {
	h.t.Helper()
	d, err := deploy.FromHome(h.open(), time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *testHome) password(account string) string {
	h.t.Helper()
	pw, err := h.open().Secrets.Password(account, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return pw
}

// cleanup removes everything of the project from the engine.
func cleanup(t *testing.T, cli *client.Client, project string) {
	deploytest.CleanupProject(t, cli, project)
}

func plan(t *testing.T, cli *client.Client, d *deploy.Desired) (*deploy.Plan, *deploy.Observed) {
	t.Helper()
	o, err := deploy.Observe(context.Background(), cli, d.Project, d)
	if err != nil {
		t.Fatal(err)
	}
	return deploy.Reconcile(d, o), o
}

func planText(t *testing.T, p *deploy.Plan) string {
	var b bytes.Buffer
	p.WriteText(&b)
	return b.String()
}

func apply(t *testing.T, cli *client.Client, d *deploy.Desired) (*deploy.Plan, error) {
	t.Helper()
	p, o := plan(t, cli, d)
	start := time.Now()
	err := deploy.Apply(context.Background(), cli, d, o, p, deploy.Options{
		ReadyTimeout: 15 * time.Second,
		Events:       func(e deploy.Event) { t.Logf("%s: %s %s", e.Resource, e.Message, e.Error) },
	})
	t.Logf("apply took %s", time.Since(start).Round(time.Millisecond))
	return p, err
}

// firstApply applies d to an engine where the project has nothing yet:
// it must create the network, both volumes and the broker.
func firstApply(t *testing.T, cli *client.Client, d *deploy.Desired) *deploy.Plan {
	t.Helper()
	p, err := apply(t, cli, d)
	if err != nil {
		t.Fatalf("first apply: %v\n%s", err, planText(t, p))
	}
	if got, want := actions(p), "create network, create volume, create volume, create container"; got != want {
		t.Fatalf("first plan: %s, want %s", got, want)
	}
	return p
}

func actions(p *deploy.Plan) string {
	var out []string
	for _, op := range p.Ops {
		out = append(out, string(op.Action)+" "+op.Kind)
	}
	return strings.Join(out, ", ")
}

func connect(t *testing.T, port int, user, password string, onLost func(error)) (mqtt.Client, error) {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).
		SetClientID(fmt.Sprintf("test-%s-%d", user, time.Now().UnixNano())).
		SetUsername(user).SetPassword(password).
		SetAutoReconnect(false).SetConnectTimeout(3 * time.Second).SetCleanSession(true)
	if onLost != nil {
		opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) { onLost(err) })
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

func mustConnect(t *testing.T, port int, user, password string) mqtt.Client {
	t.Helper()
	c, err := connect(t, port, user, password, nil)
	if err != nil {
		t.Fatalf("%s cannot log in on %d: %v", user, port, err)
	}
	return c
}

func publish(t *testing.T, c mqtt.Client, topic, payload string, retained bool) {
	t.Helper()
	tok := c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func receive(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("did not receive %q", want)
	}
}

func subscribe(t *testing.T, c mqtt.Client, topic string) <-chan string {
	t.Helper()
	ch := make(chan string, 16)
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { ch <- string(m.Payload()) })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	return ch
}

func brokerContainer(t *testing.T, cli *client.Client, project string) (id string, started string) {
	t.Helper()
	res, err := cli.ContainerInspect(context.Background(), engine.ContainerName(project, "broker"), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container.ID, res.Container.State.StartedAt
}

// servedCert is the leaf certificate a TLS port presents.
func servedCert(t *testing.T, port int) []byte {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS on %d: %v", port, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

// weakCertificate is a certificate with a 1024-bit RSA key: Go accepts it,
// the OpenSSL of Debian's Mosquitto refuses it ("ee key too small").
func weakCertificate(t *testing.T) (crt, key []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weak"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

// replaceFile returns a copy of d whose broker has data at path.
func replaceFile(d *deploy.Desired, path string, data []byte) *deploy.Desired {
	c := *d
	c.Services = append([]deploy.Service(nil), d.Services...)
	for i, s := range c.Services {
		if s.Name != "broker" {
			continue
		}
		files := append([]generators.File(nil), s.Files...)
		for j := range files {
			if files[j].Path == path {
				files[j].Data = data
			}
		}
		c.Services[i].Files = files
	}
	return &c
}

func brokerFile(d *deploy.Desired, path string) []byte {
	for _, s := range d.Services {
		for _, f := range s.Files {
			if s.Name == "broker" && f.Path == path {
				return f.Data
			}
		}
	}
	return nil
}

// composePS lists the project's containers with Debian's docker-compose, as
// a user would: from the rendered docker-compose.yml, with -p.
func composePS(t *testing.T, h *testHome) string {
	t.Helper()
	tool, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no docker-compose")
		}
		t.Log("no docker-compose: skipping the compose ps check")
		return ""
	}
	dir := t.TempDir()
	for _, f := range generators.Compose(h.open().Config, nil) {
		os.WriteFile(filepath.Join(dir, f.Path), f.Data, 0o644)
	}
	os.Mkdir(filepath.Join(dir, "config"), 0o755)
	cmd := exec.Command(tool, "-f", filepath.Join(dir, generators.ComposePath), "-p", h.project, "ps")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose ps: %v\n%s", err, out)
	}
	return string(out)
}

const lifecycleHome = `package home
broker: image: "IMAGE"
listeners: {
	mqtt: port: MQTT_PORT
	mqtts: {port: TLS_PORT, tls: true}
}
tls: server_names: ["localhost"]
users: admin: acl: ["readwrite #"]
devices: sensor: publishes: ["temperature"]
persistence: enabled: true
deploy: project: "PROJECT"
`

// TestLifecycle runs a home through the changes a household makes, on the
// real engine: first apply, no-op, a new device (reload), a new port
// (replacement), two changes the broker refuses (rollbacks), destroy.
func TestLifecycle(t *testing.T) {
	cli := testEngine(t)
	ctx := context.Background()
	mqttPort, tlsPort := freePort(t), freePort(t)
	text := strings.NewReplacer("MQTT_PORT", fmt.Sprint(mqttPort), "TLS_PORT", fmt.Sprint(tlsPort)).Replace(lifecycleHome)
	h := newHome(t, text)
	cleanup(t, cli, h.project)

	// 1. A fresh apply creates the network, the volumes and the broker.
	d := h.desired()
	p := firstApply(t, cli, d)
	if ps := composePS(t, h); ps != "" && (!strings.Contains(ps, engine.ContainerName(h.project, "broker")) || !strings.Contains(ps, "Up")) {
		t.Errorf("docker-compose ps does not list the running broker:\n%s", ps)
	}
	sensorPW := h.password("sensor")
	mustConnect(t, mqttPort, "sensor", sensorPW)
	if _, err := connect(t, mqttPort, "sensor", "wrong", nil); err == nil {
		t.Error("a wrong password logs in")
	}
	checkOwnership(t, cli, h.project)

	// 2. Nothing changed: the plan says so.
	p, _ = plan(t, cli, h.desired())
	if !p.Empty() || !strings.HasPrefix(planText(t, p), "No changes.") {
		t.Fatalf("second plan is not empty:\n%s", planText(t, p))
	}

	// 3. A new device: files and SIGHUP; a subscriber stays connected.
	var lost atomic.Value
	admin, err := connect(t, mqttPort, "admin", h.password("admin"), func(err error) { lost.Store(err) })
	if err != nil {
		t.Fatal(err)
	}
	msgs := subscribe(t, admin, "home/#")
	sensor := mustConnect(t, mqttPort, "sensor", sensorPW)
	publish(t, sensor, "home/sensor/temperature", "20.0", false)
	receive(t, msgs, "20.0")
	idBefore, startedBefore := brokerContainer(t, cli, h.project)

	h.edit(`devices: sensor: publishes: ["temperature"]`, `devices: {sensor: publishes: ["temperature"], lamp: publishes: ["state"]}`)
	d = h.desired()
	p, o := plan(t, cli, d)
	if got := actions(p); got != "update container" {
		t.Fatalf("add a device: %s, want one update:\n%s", got, planText(t, p))
	}
	text3 := planText(t, p)
	if !strings.Contains(text3, "~ container") || !strings.Contains(text3, "+lamp:(hash redacted") || !strings.Contains(text3, "Plan: 0 to add, 1 to change, 0 to destroy.") {
		t.Errorf("plan text:\n%s", text3)
	}
	// A saved plan applies to this state only.
	planFile := filepath.Join(t.TempDir(), "home.plan")
	if err := deploy.Save(planFile, p, d, "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(planFile); st.Mode().Perm() != 0o600 {
		t.Errorf("plan file mode %v, want 0600", st.Mode().Perm())
	}
	saved, err := deploy.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := saved.CheckFresh(o); err != nil {
		t.Fatalf("fresh plan refused: %v", err)
	}
	if _, err := apply(t, cli, d); err != nil {
		t.Fatalf("apply the new device: %v", err)
	}
	idAfter, startedAfter := brokerContainer(t, cli, h.project)
	if idAfter != idBefore || startedAfter != startedBefore {
		t.Errorf("the broker was restarted (%s %s -> %s %s), not reloaded", idBefore[:12], startedBefore, idAfter[:12], startedAfter)
	}
	lamp := mustConnect(t, mqttPort, "lamp", h.password("lamp"))
	publish(t, lamp, "home/lamp/state", "on", false)
	receive(t, msgs, "on")
	publish(t, sensor, "home/sensor/temperature", "20.5", false)
	receive(t, msgs, "20.5")
	if err, _ := lost.Load().(error); err != nil || !admin.IsConnectionOpen() {
		t.Errorf("the subscriber lost its connection at the reload: %v", err)
	}
	if o2, err := deploy.Observe(ctx, cli, d.Project, d); err != nil {
		t.Fatal(err)
	} else if err := saved.CheckFresh(o2); !errors.As(err, new(*deploy.ErrStale)) {
		t.Errorf("a saved plan of a changed state: %v, want stale", err)
	}

	// 4. A new port: the container is replaced; retained messages survive.
	publish(t, sensor, "home/sensor/temperature", "21.5", true)
	admin.Disconnect(100)
	newPort := freePort(t)
	h.edit(fmt.Sprintf("mqtt: port: %d", mqttPort), fmt.Sprintf("mqtt: port: %d", newPort))
	d = h.desired()
	p, err = apply(t, cli, d)
	if err != nil {
		t.Fatalf("apply the new port: %v", err)
	}
	if got := actions(p); got != "replace container" || !strings.Contains(planText(t, p), "-/+ container") {
		t.Fatalf("new port: %s, want one replacement:\n%s", got, planText(t, p))
	}
	if id, _ := brokerContainer(t, cli, h.project); id == idAfter {
		t.Error("the container was not replaced")
	}
	reader := mustConnect(t, newPort, "admin", h.password("admin"))
	receive(t, subscribe(t, reader, "home/sensor/temperature"), "21.5")
	if _, err := connect(t, mqttPort, "admin", h.password("admin"), nil); err == nil {
		t.Error("the old port still serves")
	}
	mqttPort = newPort

	// 5. A certificate the broker cannot load, changed in place: the broker
	// keeps the old one at SIGHUP; apply notices, writes back the previous
	// files, and fails.
	oldCert := servedCert(t, tlsPort)
	crt, key := weakCertificate(t)
	bad := replaceFile(replaceFile(d, "certs/server.crt", crt), "certs/server.key", key)
	p, err = apply(t, cli, bad)
	if got := actions(p); got != "update container" {
		t.Fatalf("new certificate: %s, want one update", got)
	}
	var ae *deploy.ApplyError
	// Mosquitto logs errors of a reload to stderr even when it logs to
	// stdout otherwise: apply quotes them, or else notices the old
	// certificate on the listener.
	if !errors.As(err, &ae) || !ae.RolledBack || !(strings.Contains(err.Error(), "ee key too small") || strings.Contains(err.Error(), "previous certificate")) {
		t.Fatalf("apply of a certificate the broker refuses: %v, want a rolled back error about the certificate", err)
	}
	t.Logf("the error says: %v", err)
	if !bytes.Equal(servedCert(t, tlsPort), oldCert) {
		t.Error("the broker does not serve the previous certificate")
	}
	if p, _ := plan(t, cli, d); !p.Empty() {
		t.Errorf("after the rollback the deployed files differ from the previous ones:\n%s", planText(t, p))
	}
	mustConnect(t, mqttPort, "sensor", sensorPW)

	// 6. The same with a replacement: the new container exits at start, the
	// previous one comes back.
	conf := brokerFile(d, "mosquitto.conf")
	bad = replaceFile(d, "mosquitto.conf", append(append([]byte(nil), conf...), "reconnect_delay 5\n"...))
	idBefore, _ = brokerContainer(t, cli, h.project)
	p, err = apply(t, cli, bad)
	if got := actions(p); got != "replace container" {
		t.Fatalf("unknown option: %s, want one replacement", got)
	}
	if !errors.As(err, &ae) || !ae.RolledBack || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("apply of a conf the broker refuses: %v, want a rolled back error", err)
	}
	t.Logf("the error says: %v", err)
	if id, _ := brokerContainer(t, cli, h.project); id != idBefore {
		t.Error("the previous container was not restored")
	}
	if p, _ := plan(t, cli, d); !p.Empty() {
		t.Errorf("after the rollback:\n%s", planText(t, p))
	}
	receive(t, subscribe(t, mustConnect(t, mqttPort, "admin", h.password("admin")), "home/sensor/temperature"), "21.5")

	// 7. destroy keeps the volumes; with volumes it removes them.
	o, err = deploy.Observe(ctx, cli, h.project, nil)
	if err != nil {
		t.Fatal(err)
	}
	p = deploy.PlanDestroy(o, false)
	if got := actions(p); got != "delete container, delete network" {
		t.Fatalf("destroy: %s", got)
	}
	if err := deploy.Destroy(ctx, cli, o, p, deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	o, _ = deploy.Observe(ctx, cli, h.project, nil)
	if len(o.Containers) != 0 || len(o.Networks) != 0 || len(o.Volumes) != 2 {
		t.Fatalf("after destroy: %d containers, %d networks, %d volumes; want 0, 0, 2", len(o.Containers), len(o.Networks), len(o.Volumes))
	}
	if err := deploy.Destroy(ctx, cli, o, deploy.PlanDestroy(o, true), deploy.Options{}); err != nil {
		t.Fatal(err)
	}
	if o, _ = deploy.Observe(ctx, cli, h.project, nil); len(o.Volumes) != 0 {
		t.Fatalf("destroy --volumes left %d volumes", len(o.Volumes))
	}
}

// checkOwnership reads the deployed files back: owned by 1883 with the
// modes the generators gave them.
func checkOwnership(t *testing.T, cli *client.Client, project string) {
	t.Helper()
	res, err := cli.CopyFromContainer(context.Background(), engine.ContainerName(project, "broker"), client.CopyFromContainerOptions{SourcePath: "/mosquitto/config"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Content.Close()
	want := map[string]int64{"config/passwd": 0o600, "config/acl": 0o600, "config/mosquitto.conf": 0o644, "config/certs/server.key": 0o600}
	tr := tar.NewReader(res.Content)
	for {
		hd, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hd.Uid != 1883 || hd.Gid != 1883 {
			t.Errorf("%s owned by %d:%d, want 1883:1883", hd.Name, hd.Uid, hd.Gid)
		}
		if m, ok := want[hd.Name]; ok {
			if hd.Mode&0o777 != m {
				t.Errorf("%s mode %o, want %o", hd.Name, hd.Mode&0o777, m)
			}
			delete(want, hd.Name)
		}
	}
	for name := range want {
		t.Errorf("%s not deployed", name)
	}
}

// TestReloadErrorsFromLog: when Mosquitto logs to the container (stderr;
// its stdout is block-buffered under Docker), apply reads the errors of a
// reload from the log, and reports them.
func TestReloadErrorsFromLog(t *testing.T) {
	cli := testEngine(t)
	port, tlsPort := freePort(t), freePort(t)
	h := newHome(t, fmt.Sprintf(`package home
broker: image: "IMAGE"
listeners: {
	mqtt: port: %d
	mqtts: {port: %d, tls: true}
}
tls: server_names: ["localhost"]
users: admin: acl: ["readwrite #"]
logging: destinations: ["stderr"]
deploy: project: "PROJECT"
`, port, tlsPort))
	cleanup(t, cli, h.project)
	d := h.desired()
	if _, err := apply(t, cli, d); err != nil {
		t.Fatal(err)
	}
	crt, key := weakCertificate(t)
	_, err := apply(t, cli, replaceFile(replaceFile(d, "certs/server.crt", crt), "certs/server.key", key))
	var ae *deploy.ApplyError
	if !errors.As(err, &ae) || !ae.RolledBack || !strings.Contains(err.Error(), "ee key too small") {
		t.Fatalf("apply: %v, want a rolled back error quoting Mosquitto's log", err)
	}
	if p, _ := plan(t, cli, d); !p.Empty() {
		t.Errorf("after the rollback:\n%s", planText(t, p))
	}
}

// TestMissingImage: an image the engine does not have and cannot pull stops
// apply before it changes anything.
func TestMissingImage(t *testing.T) {
	cli := testEngine(t)
	h := newHome(t, fmt.Sprintf(`package home
broker: image: "mqttgen-test/absent:%d"
listeners: mqtt: port: %d
users: admin: acl: ["readwrite #"]
deploy: project: "PROJECT"
`, os.Getpid(), freePort(t)))
	cleanup(t, cli, h.project)
	_, err := apply(t, cli, h.desired())
	if err == nil || !strings.Contains(err.Error(), "not on the Docker engine") {
		t.Fatalf("apply with a missing image: %v", err)
	}
	o, _ := deploy.Observe(context.Background(), cli, h.project, nil)
	if len(o.Containers)+len(o.Networks)+len(o.Volumes) != 0 {
		t.Errorf("apply changed the engine before failing: %+v", o)
	}
}
