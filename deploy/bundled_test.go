package deploy_test

// broker.engine "mqttgen" on the real Docker engine: apply builds the
// bundled broker's image FROM scratch from a static mqttgen binary (built
// here once with CGO_ENABLED=0, as `make build` does) and deploys it.
// Without an engine the tests skip; under CI=true they fail.

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// staticMqttgen builds cmd/mqttgen without cgo, once per run, and makes it
// the binary deploy builds the broker's image from.
func staticMqttgen(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if binDir, binErr = os.MkdirTemp("", "mqttgen-bundled-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mqttgen")
		start := time.Now()
		cmd := exec.Command(goTool, "build", "-o", binPath, "github.com/mqttgen/mqttgen/cmd/mqttgen")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("CGO_ENABLED=0 go build ./cmd/mqttgen: %v\n%s", err, out)
			return
		}
		t.Logf("built a static mqttgen in %s", time.Since(start).Round(time.Millisecond))
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	useBinary(t, binPath)
	return binPath
}

// useBinary makes path the mqttgen binary of deploy for this test.
func useBinary(t *testing.T, path string) {
	prev := deploy.BrokerBinary
	deploy.BrokerBinary = func() (string, error) { return path, nil }
	t.Cleanup(func() { deploy.BrokerBinary = prev })
}

// brokerImage is the tag of the bundled broker's image in a test: unique to
// the run, removed at the end with every image a build of the test left.
func brokerImage(t *testing.T, cli *client.Client) string {
	tag := deploytest.Tag("broker-" + strings.ToLower(t.Name()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		deploytest.RemoveImage(ctx, cli, tag)
		// Images of earlier binaries apply did not remove (it removes them
		// once their container is gone): untagged, with the label.
		f := client.Filters{}.Add("label", engine.LabelBinaryDigest).Add("dangling", "true")
		if l, err := cli.ImageList(ctx, client.ImageListOptions{Filters: f}); err == nil {
			for _, img := range l.Items {
				cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{PruneChildren: true})
			}
		}
	})
	return tag
}

const bundledHome = `package home
broker: {engine: "mqttgen", image: "BROKER_IMAGE"}
listeners: {
	mqtt: port: MQTT_PORT
	mqtts: {port: TLS_PORT, tls: true}
}
tls: server_names: ["localhost"]
users: {
	admin: acl: ["readwrite #"]
	exporter: acl: ["read $SYS/#"]
}
devices: sensor: publishes: ["temperature"]
persistence: enabled: true
monitoring: prometheus: {enabled: true, port: METRICS_PORT}
deploy: project: "PROJECT"
`

// TestBundledEngine: a home with broker.engine "mqttgen" through its life
// on the engine: a fresh apply builds the image and serves logins and
// /metrics, the image's healthcheck works without a shell, the broker runs
// as 1883; a second plan is empty; a new device is a SIGHUP; a backup
// (SIGUSR1) and a restore round trip; a new mqttgen binary replaces the
// container and keeps the data; the same binary again changes nothing.
func TestBundledEngine(t *testing.T) {
	cli := deploytest.Engine(t)
	bin := staticMqttgen(t)
	ctx := context.Background()
	tag := brokerImage(t, cli)
	mqttPort, tlsPort, metricsPort := freePort(t), freePort(t), freePort(t)
	h := newHome(t, strings.NewReplacer("BROKER_IMAGE", tag, "MQTT_PORT", fmt.Sprint(mqttPort), "TLS_PORT", fmt.Sprint(tlsPort),
		"METRICS_PORT", fmt.Sprint(metricsPort)).Replace(bundledHome))
	cleanup(t, cli, h.project)

	// 1. A fresh apply builds the image, then creates everything.
	d := h.desired()
	p := firstApply(t, cli, d)
	text := planText(t, p)
	for _, want := range []string{`+ binary      = "mqttgen sha256 `, "is not on the Docker engine: apply builds it, FROM scratch, from this mqttgen binary",
		fmt.Sprintf(`"%d:%d/tcp"`, metricsPort, metricsPort), `"CMD", "/usr/bin/mqttgen", "broker", "--probe", "tcp://127.0.0.1:`} {
		if !strings.Contains(text, want) {
			t.Errorf("first plan does not show %q:\n%s", want, text)
		}
	}
	img, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	b, err := deploy.InspectBinary(bin)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Config.Labels[engine.LabelBinaryDigest]; got != b.Digest {
		t.Errorf("image label %s = %q, want the binary's %s", engine.LabelBinaryDigest, got, b.Digest)
	}
	if got := strings.Join(append(img.Config.Entrypoint, img.Config.Cmd...), " "); got != "/usr/bin/mqttgen broker -c /mosquitto/config/mosquitto.conf" {
		t.Errorf("image runs %q", got)
	}
	sensorPW := h.password("sensor")
	mustConnect(t, mqttPort, "sensor", sensorPW)
	if _, err := connect(t, mqttPort, "sensor", "wrong", nil); err == nil {
		t.Error("a wrong password logs in")
	}
	checkOwnership(t, cli, h.project)
	id, started := brokerContainer(t, cli, h.project)
	checkRunsAs(t, cli, id, "1883")
	checkProbe(t, cli, id, fmt.Sprintf("tcp://127.0.0.1:%d", mqttPort), 0)
	checkProbe(t, cli, id, fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort), 0)
	checkProbe(t, cli, id, "tcp://127.0.0.1:1", 1)
	checkMetrics(t, metricsPort, "broker_clients_connected", "# TYPE broker_bytes_received counter", "broker_uptime ")

	// 2. Nothing changed: no changes.
	if p, _ := plan(t, cli, h.desired()); !p.Empty() {
		t.Fatalf("second plan is not empty:\n%s", planText(t, p))
	}

	// 3. A new device: files and SIGHUP; a subscriber stays connected.
	var lost atomic.Value
	admin, err := connect(t, mqttPort, "admin", h.password("admin"), func(err error) { lost.Store(err) })
	if err != nil {
		t.Fatal(err)
	}
	msgs := subscribe(t, admin, "home/#")
	h.edit(`devices: sensor: publishes: ["temperature"]`, `devices: {sensor: publishes: ["temperature"], lamp: publishes: ["state"]}`)
	d = h.desired()
	p, err = apply(t, cli, d)
	if err != nil {
		t.Fatalf("apply the new device: %v", err)
	}
	if got := actions(p); got != "update container" || !strings.Contains(planText(t, p), "which the bundled broker reloads on SIGHUP") {
		t.Fatalf("add a device: %s, want one update by SIGHUP:\n%s", got, planText(t, p))
	}
	if id2, started2 := brokerContainer(t, cli, h.project); id2 != id || started2 != started {
		t.Error("the broker was restarted, not reloaded")
	}
	lamp := mustConnect(t, mqttPort, "lamp", h.password("lamp"))
	publish(t, lamp, "home/lamp/state", "on", true)
	receive(t, msgs, "on")
	if err, _ := lost.Load().(error); err != nil || !admin.IsConnectionOpen() {
		t.Errorf("the subscriber lost its connection at the reload: %v", err)
	}
	if p, _ := plan(t, cli, d); !p.Empty() {
		t.Fatalf("plan after the reload:\n%s", planText(t, p))
	}

	// 4. A backup (SIGUSR1 makes the broker write mqttgen-broker.db) and a
	// restore: a retained message published after the backup is gone, the
	// one before is back.
	start := time.Now()
	res, err := backup.Create(ctx, cli, backup.Options{Project: h.project, Dir: filepath.Join(h.dir, "backups"), Keep: 3, StateDir: filepath.Join(h.dir, ".mqttgen")})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	t.Logf("backup in %s (broker flushed in %s)", time.Since(start).Round(time.Millisecond), res.FlushTook.Round(time.Millisecond))
	a, err := backup.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Manifest.Broker.Engine != "mqttgen" || a.File("data/mqttgen-broker.db") == nil {
		t.Fatalf("the archive: engine %q, files %v; want mqttgen and data/mqttgen-broker.db", a.Manifest.Broker.Engine, a.Under("data/"))
	}
	publish(t, lamp, "home/lamp/state", "off", true)
	receive(t, msgs, "off")
	admin.Disconnect(100)
	rp := planRestore(t, cli, d, a)
	if _, err := deploy.Restore(ctx, cli, d, rp, deploy.Options{ReadyTimeout: 15 * time.Second}); err != nil {
		t.Fatalf("restore: %v", err)
	}
	reader := mustConnect(t, mqttPort, "admin", h.password("admin"))
	receive(t, subscribe(t, reader, "home/lamp/state"), "on")
	reader.Disconnect(100)

	// 5. Another mqttgen binary (the same program with bytes appended, as a
	// rebuild would differ): plan shows the replacement and why, apply
	// builds the image again, retained messages survive, the previous image
	// is removed.
	newBin := filepath.Join(t.TempDir(), "mqttgen")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newBin, append(data, "another build"...), 0o755); err != nil {
		t.Fatal(err)
	}
	useBinary(t, newBin)
	oldImage := img.ID
	d = h.desired()
	p, err = apply(t, cli, d)
	if err != nil {
		t.Fatalf("apply with a new binary: %v", err)
	}
	text = planText(t, p)
	if got := actions(p); got != "replace container" || !strings.Contains(text, "because the mqttgen binary changed: image "+tag+" holds sha256 "+b.Digest[:12]) ||
		!strings.Contains(text, "~ binary      = ") {
		t.Fatalf("new binary: %s, want one replacement that says why:\n%s", got, text)
	}
	t.Logf("the plan says:\n%s", text)
	receive(t, subscribe(t, mustConnect(t, mqttPort, "admin", h.password("admin")), "home/lamp/state"), "on")
	if _, err := cli.ImageInspect(ctx, oldImage); err == nil {
		t.Errorf("the image of the previous binary (%s) is still there", oldImage)
	}
	if p, _ := plan(t, cli, h.desired()); !p.Empty() {
		t.Fatalf("plan with the same binary again:\n%s", planText(t, p))
	}
}

// TestEngineSwitch: a project on Mosquitto switched to the bundled broker
// is replaced, says that retained messages do not carry over (the
// databases differ), and serves the same logins.
func TestEngineSwitch(t *testing.T) {
	cli := testEngine(t)
	staticMqttgen(t)
	ctx := context.Background()
	tag := brokerImage(t, cli)
	port := freePort(t)
	h := newHome(t, fmt.Sprintf(`package home
broker: image: "IMAGE"
listeners: mqtt: port: %d
users: admin: acl: ["readwrite #"]
persistence: enabled: true
deploy: project: "PROJECT"
`, port))
	cleanup(t, cli, h.project)
	if _, err := apply(t, cli, h.desired()); err != nil {
		t.Fatalf("apply on Mosquitto: %v", err)
	}
	c := mustConnect(t, port, "admin", h.password("admin"))
	publish(t, c, "home/state", "kept by Mosquitto", true)
	c.Disconnect(100)

	h.edit(`broker: image: "`+imageTag+`"`, `broker: {engine: "mqttgen", image: "`+tag+`"}`)
	d := h.desired()
	p, err := apply(t, cli, d)
	if err != nil {
		t.Fatalf("switch to the bundled broker: %v\n%s", err, planText(t, p))
	}
	text := planText(t, p)
	if got := actions(p); got != "replace container" || !strings.Contains(text, "because broker.engine changes from mosquitto to mqttgen") ||
		!strings.Contains(text, "do NOT carry over") {
		t.Fatalf("engine switch: %s, want one replacement that says the data does not carry over:\n%s", got, text)
	}
	t.Logf("the plan says:\n%s", text)
	id, _ := brokerContainer(t, cli, h.project)
	if st, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err != nil || st.Container.Config.Image != tag {
		t.Fatalf("the broker runs %v (%v), want %s", st.Container.Config.Image, err, tag)
	}
	c = mustConnect(t, port, "admin", h.password("admin"))
	got := make(chan string, 1)
	c.Subscribe("home/state", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }).Wait()
	select {
	case m := <-got:
		t.Errorf("a retained message of Mosquitto carried over (%q): the docs say it does not", m)
	case <-time.After(time.Second):
	}
	// Mosquitto's database stays in the volume, beside the bundled one.
	names := dataFiles(t, cli, id)
	if !names["mosquitto.db"] {
		t.Errorf("mosquitto.db is not in the data volume any more: %v", names)
	}
	if p, _ := plan(t, cli, d); !p.Empty() {
		t.Fatalf("plan after the switch:\n%s", planText(t, p))
	}
}

// checkRunsAs: the broker process runs as uid.
func checkRunsAs(t *testing.T, cli *client.Client, id, uid string) {
	t.Helper()
	top, err := cli.ContainerTop(context.Background(), id, client.ContainerTopOptions{Arguments: []string{"-o", "pid,uid,args"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range top.Processes {
		if strings.Contains(strings.Join(p, " "), "broker -c") {
			if p[1] != uid {
				t.Errorf("the broker runs as uid %s, want %s", p[1], uid)
			}
			return
		}
	}
	t.Errorf("no broker process in %v", top.Processes)
}

// checkProbe runs the image's healthcheck command in the container: exit 0
// when a broker answers, 1 when none does.
func checkProbe(t *testing.T, cli *client.Client, id, url string, want int) {
	t.Helper()
	ctx := context.Background()
	cmd := []string{generators.BrokerBinaryPath, "broker", "--probe", url}
	ex, err := cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(att.Reader)
	att.Close()
	var st client.ExecInspectResult
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st, err = cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{}); err != nil {
			t.Fatal(err)
		}
		if !st.Running || time.Now().After(end) {
			break
		}
	}
	if st.ExitCode != want {
		t.Errorf("%s: exit %d, want %d: %s", strings.Join(cmd, " "), st.ExitCode, want, out)
	}
}

// checkMetrics reads /metrics from the published port.
func checkMetrics(t *testing.T, port int, want ...string) {
	t.Helper()
	var body []byte
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err == nil {
			body, _ = io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
			err = fmt.Errorf("status %s", res.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics on %d: %v", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range want {
		if !bytes.Contains(body, []byte(w)) {
			t.Errorf("/metrics has no %q:\n%s", w, body)
		}
	}
}

// dataFiles lists the files of the broker's data volume.
func dataFiles(t *testing.T, cli *client.Client, id string) map[string]bool {
	t.Helper()
	res, err := cli.CopyFromContainer(context.Background(), id, client.CopyFromContainerOptions{SourcePath: "/mosquitto/data"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Content.Close()
	names := map[string]bool{}
	tr := tar.NewReader(res.Content)
	for {
		hd, err := tr.Next()
		if err != nil {
			break
		}
		names[filepath.Base(hd.Name)] = true
	}
	return names
}
