package deploy_test

// Sites on real engines: the hub on the engine this machine runs, each
// satellite on an extra dockerd the test starts (deploytest.StartDockerd),
// one of them reached over ssh through a local sshd. Satellites reach the
// hub's published port at this host's address, as sites on one machine do.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// mainEngineHost is the docker_host of the engine this machine runs.
func mainEngineHost() string {
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		return h
	}
	return client.DefaultDockerHost
}

// satelliteEngine starts an extra engine with the Mosquitto stand-in image.
func satelliteEngine(t *testing.T) *deploytest.Dockerd {
	t.Helper()
	d := deploytest.StartDockerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := deploytest.MosquittoImage(ctx, d.Cli, imageTag); err != nil {
		t.Fatalf("build %s on %s: %v", imageTag, d.Host, err)
	}
	return d
}

type sitesHome struct {
	dir, project string
	hubPort      int
	ports        map[string]int
	h            *workspace.Home
}

// writeSitesHome writes a home whose hub runs on this machine's engine and
// whose satellites run on the given engines, a device on each site.
func writeSitesHome(t *testing.T, satellites map[string]string, extra string) *sitesHome {
	return writeSitesHomeBroker(t, fmt.Sprintf("broker: image: %q", imageTag), satellites, extra)
}

// writeSitesHomeBroker is writeSitesHome with the home's broker line.
func writeSitesHomeBroker(t *testing.T, broker string, satellites map[string]string, extra string) *sitesHome {
	t.Helper()
	addr := deploytest.HostAddress(t)
	s := &sitesHome{dir: t.TempDir(), project: fmt.Sprintf("mqttgen-sites-%d", time.Now().UnixNano()%1e6), hubPort: deploytest.FreePort(t), ports: map[string]int{}}
	var b strings.Builder
	fmt.Fprintf(&b, `package home

%s
deploy: project: %q
listeners: mqtt: port: %d
users: ha: preset: "homeassistant"
homeassistant: user: "ha"
devices: hall: {publishes: ["temp"], subscribes: ["set"]}
sites: house: {docker_host: %q, hostname: %q, hub: true}
`, broker, s.project, s.hubPort, mainEngineHost(), addr)
	for name, host := range satellites {
		s.ports[name] = deploytest.FreePort(t)
		fmt.Fprintf(&b, "sites: %s: {docker_host: %q, hostname: %q, listeners: mqtt: port: %d}\n", name, host, addr, s.ports[name])
		fmt.Fprintf(&b, "devices: %s_door: {site: %q, publishes: [\"state\"], subscribes: [\"set\"]}\n", name, name)
	}
	b.WriteString(extra)
	if err := os.WriteFile(filepath.Join(s.dir, "home.cue"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := workspace.Open(s.dir, filepath.Join(s.dir, ".mqttgen"))
	if err != nil {
		t.Fatal(err)
	}
	s.h = h
	return s
}

func applySites(t *testing.T, s *sitesHome, only string) ([]*deploy.Site, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sites, err := deploy.SitesFromHome(s.h, only, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	deploy.ConnectSites(ctx, sites)
	t.Cleanup(func() { deploy.CloseSites(sites) })
	for _, site := range sites {
		if site.Cli != nil {
			cli := site.Cli
			project := site.Desired.Project
			t.Cleanup(func() { deploytest.RemoveProject(cli, project) })
		}
	}
	var plan strings.Builder
	if err := deploy.WriteSitesText(&plan, sites); err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%s", plan.String())
	return sites, deploy.ApplySites(ctx, sites, deploy.Options{ReadyTimeout: 60 * time.Second})
}

type mqttClient struct {
	c    mqtt.Client
	mu   sync.Mutex
	got  map[string][]string
	seen chan string
}

// waitBridged publishes the garage door's state at the satellite every
// second until the hub's client has it: the bridge connects within its
// restart_timeout.
func waitBridged(t *testing.T, door, ha *mqttClient) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for ha.count("home/garage_door/state") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the satellite's state never reached the hub")
		}
		door.pub(t, "home/garage_door/state", "closed")
		time.Sleep(time.Second)
	}
}

func login(t *testing.T, s *sitesHome, port int, user, clientID string, clean bool) *mqttClient {
	t.Helper()
	pw, err := s.h.AccountPassword(user)
	if err != nil {
		t.Fatal(err)
	}
	m := &mqttClient{got: map[string][]string{}, seen: make(chan string, 1000)}
	o := mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).SetClientID(clientID).
		SetUsername(user).SetPassword(pw).SetCleanSession(clean).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	o.SetDefaultPublishHandler(func(_ mqtt.Client, msg mqtt.Message) {
		m.mu.Lock()
		m.got[msg.Topic()] = append(m.got[msg.Topic()], string(msg.Payload()))
		m.mu.Unlock()
		m.seen <- msg.Topic()
	})
	m.c = mqtt.NewClient(o)
	var tokErr error
	for i := 0; i < 30; i++ {
		tok := m.c.Connect()
		tok.WaitTimeout(6 * time.Second)
		if tokErr = tok.Error(); tokErr == nil && m.c.IsConnected() {
			t.Cleanup(func() { m.c.Disconnect(100) })
			return m
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s cannot log in at port %d: %v", user, port, tokErr)
	return nil
}

func (m *mqttClient) sub(t *testing.T, filter string) {
	t.Helper()
	tok := m.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

func (m *mqttClient) pub(t *testing.T, topic, payload string) {
	t.Helper()
	tok := m.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func (m *mqttClient) count(topic string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.got[topic])
}

// waitFor waits until topic has n messages.
func (m *mqttClient) waitFor(t *testing.T, topic string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for m.count(topic) < n {
		if time.Now().After(deadline) {
			m.mu.Lock()
			defer m.mu.Unlock()
			t.Fatalf("%s: %d of %d messages after %s (got %v)", topic, len(m.got[topic]), n, d, m.got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSitesBridge: a two-site home deploys with one apply (hub on this
// machine's engine, the garage on an extra dockerd); a device on the
// satellite publishes and Home Assistant's user on the hub receives; a
// command from the hub reaches it; commands of the hub's own device do
// not; then the link is lost (the hub's broker stops), the satellite keeps
// serving, queues QoS 1 states and delivers every one when the hub returns.
// On both engines: Mosquitto on both sites, a bundled satellite of a
// Mosquitto hub, and a Mosquitto satellite of a bundled hub.
func TestSitesBridge(t *testing.T) {
	for _, c := range []struct{ name, broker, extra string }{
		{"mosquitto", fmt.Sprintf("broker: image: %q", imageTag), ""},
		{"bundled-satellite", fmt.Sprintf("broker: image: %q", imageTag), `sites: garage: engine: "mqttgen"` + "\n"},
		{"bundled-hub", `broker: {engine: "mqttgen", image: "mqttgen-test/sites-broker:1"}`, fmt.Sprintf("sites: garage: {engine: \"mosquitto\", image: %q}\n", imageTag)},
	} {
		t.Run(c.name, func(t *testing.T) { testSitesBridge(t, c.broker, c.extra) })
	}
}

func testSitesBridge(t *testing.T, broker, extra string) {
	hubCli := testEngine(t)
	if strings.Contains(broker+extra, "mqttgen") {
		staticMqttgen(t)
		t.Cleanup(func() {
			// Only the test's own tag: a bundled satellite's image is on its
			// extra engine, removed with it.
			deploytest.RemoveImage(context.Background(), hubCli, "mqttgen-test/sites-broker:1")
		})
	}
	garage := satelliteEngine(t)
	s := writeSitesHomeBroker(t, broker, map[string]string{"garage": garage.Host}, extra)
	if _, err := applySites(t, s, ""); err != nil {
		t.Fatalf("apply: %v", err)
	}

	// Home Assistant keeps a session on the hub across the outage.
	ha := login(t, s, s.hubPort, "ha", "ha-test", false)
	ha.sub(t, "home/#")
	door := login(t, s, s.ports["garage"], "garage_door", "door", true)
	door.sub(t, "home/+/set")
	hall := login(t, s, s.hubPort, "hall", "hall", true)
	hall.sub(t, "home/+/set")

	waitBridged(t, door, ha)
	ha.pub(t, "home/garage_door/set", "open")
	door.waitFor(t, "home/garage_door/set", 1, 20*time.Second)
	ha.pub(t, "home/hall/set", "on")
	hall.waitFor(t, "home/hall/set", 1, 10*time.Second)
	time.Sleep(2 * time.Second)
	if n := door.count("home/hall/set"); n != 0 {
		t.Errorf("the garage's door received %d commands of the hall, on another site", n)
	}
	if n := hall.count("home/garage_door/set"); n != 0 {
		t.Errorf("the hall received %d commands of the garage's door", n)
	}

	// Link loss: the hub's broker stops.
	ctx := context.Background()
	hubContainer := engine.ContainerName(s.project, generators.BrokerService)
	ha.c.Disconnect(100)
	if _, err := hubCli.ContainerStop(ctx, hubContainer, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	const queued = 25
	for i := range queued {
		door.pub(t, "home/garage_door/state", fmt.Sprintf("outage-%d", i))
	}
	if !door.c.IsConnected() {
		t.Fatal("the satellite stopped serving its device while the hub was down")
	}
	if _, err := hubCli.ContainerStart(ctx, hubContainer, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	ha = login(t, s, s.hubPort, "ha", "ha-test", false)
	ha.sub(t, "home/#")
	ha.waitFor(t, "home/garage_door/state", queued, 90*time.Second)
	ha.mu.Lock()
	got := ha.got["home/garage_door/state"]
	ha.mu.Unlock()
	n := 0
	for _, p := range got {
		if strings.HasPrefix(p, "outage-") {
			n++
		}
	}
	if n != queued {
		t.Errorf("the hub received %d of the %d states queued during the outage: %v", n, queued, got)
	}
	t.Logf("the hub received all %d states queued on the satellite during the outage", n)
}

// TestSitesUnreachable: a satellite whose engine does not answer is
// reported and skipped; the hub still converges.
func TestSitesUnreachable(t *testing.T) {
	testEngine(t)
	s := writeSitesHome(t, map[string]string{"shed": "unix:///nonexistent/docker.sock"}, "")
	sites, err := applySites(t, s, "")
	var se *deploy.SiteError
	if !errors.As(err, &se) || len(se.Order) != 1 || se.Order[0] != "shed" {
		t.Fatalf("want the shed reported, got %v", err)
	}
	if !strings.Contains(err.Error(), "no Docker engine answers at unix:///nonexistent/docker.sock") {
		t.Errorf("error does not name the engine: %v", err)
	}
	hub := sites[0]
	o, oerr := deploy.Observe(context.Background(), hub.Cli, hub.Desired.Project, hub.Desired)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if p := deploy.Reconcile(hub.Desired, o); !p.Empty() {
		t.Errorf("the hub did not converge: %+v", p.Ops)
	}
	login(t, s, s.hubPort, "ha", "ha", true)
}

// sshd starts a local sshd on a free port that lets root in with a key of
// the test's, and returns an ssh_config for it (MQTTGEN_SSH_CONFIG).
func sshd(t *testing.T) (port int) {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no sshd (apt-get install openssh-server): %v", err)
		}
		t.Skipf("no sshd: %v", err)
	}
	dir := t.TempDir()
	for _, k := range []string{"host", "user"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "user.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	port = deploytest.FreePort(t)
	conf := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nPidFile %s\nUsePAM no\n",
		port, filepath.Join(dir, "host"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"))
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	cmd := exec.Command(bin, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	client := fmt.Sprintf("Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  BatchMode yes\n", filepath.Join(dir, "user"))
	os.WriteFile(filepath.Join(dir, "ssh_config"), []byte(client), 0o600)
	t.Setenv(engine.SSHConfigEnv, filepath.Join(dir, "ssh_config"))
	for i := 0; i < 50; i++ {
		if out, err := exec.Command("ssh", "-F", filepath.Join(dir, "ssh_config"), "-p", fmt.Sprint(port), "root@127.0.0.1", "true").CombinedOutput(); err == nil {
			return port
		} else if i == 49 {
			t.Fatalf("sshd does not let the test in: %v %s\n%s", err, out, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return port
}

// TestSitesThree: three sites with one apply, the third satellite's engine
// reached over ssh (docker's connection helper through a local sshd that
// forwards to the extra engine's socket) and running the bundled broker:
// each satellite's device hears its own commands and never the other's.
func TestSitesThree(t *testing.T) {
	testEngine(t)
	staticMqttgen(t)
	garage := satelliteEngine(t)
	shed := deploytest.StartDockerd(t)
	port := sshd(t)
	shedHost := fmt.Sprintf("ssh://root@127.0.0.1:%d%s", port, shed.Socket)
	s := writeSitesHome(t, map[string]string{"garage": garage.Host, "shed": shedHost}, "sites: shed: engine: \"mqttgen\"\n")
	sites, err := applySites(t, s, "")
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(sites) != 3 || sites[0].Name != "house" {
		t.Fatalf("sites in order: %v", sites)
	}
	ha := login(t, s, s.hubPort, "ha", "ha", true)
	ha.sub(t, "home/#")
	doors := map[string]*mqttClient{}
	for _, name := range []string{"garage", "shed"} {
		doors[name] = login(t, s, s.ports[name], name+"_door", name+"-door", true)
		doors[name].sub(t, "home/+/set")
	}
	for _, name := range []string{"garage", "shed"} {
		topic := "home/" + name + "_door/state"
		deadline := time.Now().Add(60 * time.Second)
		for ha.count(topic) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("site %s's state never reached the hub", name)
			}
			doors[name].pub(t, topic, "closed")
			time.Sleep(time.Second)
		}
		ha.pub(t, "home/"+name+"_door/set", "open")
	}
	doors["garage"].waitFor(t, "home/garage_door/set", 1, 20*time.Second)
	doors["shed"].waitFor(t, "home/shed_door/set", 1, 20*time.Second)
	time.Sleep(2 * time.Second)
	if n := doors["garage"].count("home/shed_door/set"); n != 0 {
		t.Errorf("the garage's door received %d commands of the shed's", n)
	}
	if n := doors["shed"].count("home/garage_door/set"); n != 0 {
		t.Errorf("the shed's door received %d commands of the garage's", n)
	}

	// A second apply changes nothing on any site.
	again, err := deploy.SitesFromHome(s.h, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deploy.ConnectSites(ctx, again)
	defer deploy.CloseSites(again)
	if !deploy.SitesEmpty(again) {
		var b strings.Builder
		deploy.WriteSitesText(&b, again)
		t.Errorf("a second plan is not empty:\n%s", b.String())
	}
}

// TestSitesTCP: a satellite's engine reached by tcp:// with TLS files in
// DOCKER_CERT_PATH's layout (docker_cert_path): refused without them,
// deployed and bridged with them.
func TestSitesTCP(t *testing.T) {
	testEngine(t)
	d, host, certs := deploytest.StartDockerdTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := deploytest.MosquittoImage(ctx, d.Cli, imageTag); err != nil {
		t.Fatal(err)
	}
	if cli, err := engine.ConnectEndpoint(ctx, engine.Endpoint{Host: host}); err == nil {
		cli.Close()
		t.Fatal("the engine answered a client without its certificate")
	}
	s := writeSitesHome(t, map[string]string{"garage": host}, fmt.Sprintf("sites: garage: docker_cert_path: %q\n", certs))
	if _, err := applySites(t, s, ""); err != nil {
		t.Fatalf("apply: %v", err)
	}
	ha := login(t, s, s.hubPort, "ha", "ha", true)
	ha.sub(t, "home/#")
	door := login(t, s, s.ports["garage"], "garage_door", "door", true)
	waitBridged(t, door, ha)
}

// TestSitesZigbee2MQTT: Zigbee2MQTT's user logs in at the garage, next to
// its coordinator (users: z2m: site: "garage"): its states reach Home
// Assistant's user on the hub once (no loop brings them back), Home
// Assistant's /set reaches it on the garage, it has no login on the hub,
// and with the hub's broker stopped it still logs in at the garage.
func TestSitesZigbee2MQTT(t *testing.T) {
	hubCli := testEngine(t)
	garage := satelliteEngine(t)
	s := writeSitesHome(t, map[string]string{"garage": garage.Host},
		"users: z2m: {preset: \"zigbee2mqtt\", site: \"garage\"}\nzigbee2mqtt: user: \"z2m\"\n")
	if _, err := applySites(t, s, ""); err != nil {
		t.Fatalf("apply: %v", err)
	}
	ha := login(t, s, s.hubPort, "ha", "ha-test", true)
	ha.sub(t, "zigbee2mqtt/#")
	ha.sub(t, "homeassistant/+/+/+/config")
	z2m := login(t, s, s.ports["garage"], "z2m", "zigbee2mqtt", true)
	z2m.sub(t, "zigbee2mqtt/+/set")
	z2m.sub(t, "zigbee2mqtt/bridge/request/#")

	deadline := time.Now().Add(60 * time.Second)
	for ha.count("zigbee2mqtt/lamp") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Zigbee2MQTT's state on the garage never reached Home Assistant on the hub")
		}
		z2m.pub(t, "zigbee2mqtt/lamp", `{"state":"OFF"}`)
		time.Sleep(time.Second)
	}
	z2m.pub(t, "homeassistant/light/0x01/light/config", `{"name":"lamp"}`)
	ha.waitFor(t, "homeassistant/light/0x01/light/config", 1, 20*time.Second)
	ha.pub(t, "zigbee2mqtt/lamp/set", `{"state":"ON"}`)
	z2m.waitFor(t, "zigbee2mqtt/lamp/set", 1, 20*time.Second)
	ha.pub(t, "zigbee2mqtt/bridge/request/permit_join", `{"value":true}`)
	z2m.waitFor(t, "zigbee2mqtt/bridge/request/permit_join", 1, 20*time.Second)
	time.Sleep(3 * time.Second)
	if n := ha.count("zigbee2mqtt/lamp/set"); n != 1 {
		t.Errorf("Home Assistant saw its command %d times, want once (a loop brings it back)", n)
	}
	if n := z2m.count("zigbee2mqtt/lamp/set"); n != 1 {
		t.Errorf("Zigbee2MQTT received the command %d times, want once", n)
	}

	// Its login is the garage's alone.
	pw, err := s.h.AccountPassword("z2m")
	if err != nil {
		t.Fatal(err)
	}
	connect := func(port int) error {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).
			SetClientID(fmt.Sprintf("z2m-probe-%d", time.Now().UnixNano())).SetUsername("z2m").SetPassword(pw).
			SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
		tok := c.Connect()
		tok.WaitTimeout(6 * time.Second)
		if tok.Error() == nil && c.IsConnected() {
			c.Disconnect(100)
			return nil
		}
		return fmt.Errorf("not connected: %v", tok.Error())
	}
	if err := connect(s.hubPort); err == nil {
		t.Error("Zigbee2MQTT's user logged in at the hub, whose passwd should not have it")
	}

	// The link is down: Zigbee2MQTT keeps its broker.
	ctx := context.Background()
	hubContainer := engine.ContainerName(s.project, generators.BrokerService)
	if _, err := hubCli.ContainerStop(ctx, hubContainer, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := connect(s.ports["garage"]); err != nil {
		t.Errorf("with the hub's broker stopped, Zigbee2MQTT cannot log in at the garage: %v", err)
	}
	z2m.pub(t, "zigbee2mqtt/lamp", `{"state":"ON"}`)
}
