package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
)

// TestHealthcheckQuiet (issue 14, item 6): on both engines the container's
// healthcheck logs in as the probe account (schema.ProbeUser), whose
// password is a 0600 file of the broker's user in the container and
// nowhere in `docker inspect`; after several healthcheck runs the container
// is healthy and the broker's log holds no refused login, where the
// anonymous healthcheck logged "not authorised" at every run. The test
// shortens the healthcheck's interval to 1 s, in the test only.
func TestHealthcheckQuiet(t *testing.T) {
	for _, engineName := range []string{schema.EngineMosquitto, schema.EngineMqttgen} {
		t.Run(engineName, func(t *testing.T) {
			var cli *client.Client
			broker := `image: "IMAGE"`
			if engineName == schema.EngineMqttgen {
				cli = deploytest.Engine(t)
				staticMqttgen(t)
				broker = fmt.Sprintf(`{engine: "mqttgen", image: %q}`, brokerImage(t, cli))
			} else {
				cli = testEngine(t)
			}
			port, tlsPort := freePort(t), freePort(t)
			h := newHome(t, fmt.Sprintf(`package home
broker: %s
listeners: {
	mqtt: port: %d
	mqtts: {port: %d, tls: true}
}
tls: server_names: ["localhost"]
users: admin: acl: ["readwrite #"]
patterns: ["readwrite clients/%%c/#", "read users/%%u/#"]
logging: destinations: ["stderr"]
deploy: project: "PROJECT"
`, broker, port, tlsPort))
			cleanup(t, cli, h.project)
			d := h.desired()
			var hc *deploy.Health
			for i := range d.Services {
				if d.Services[i].Name == generators.BrokerService {
					hc = d.Services[i].Spec.Healthcheck
				}
			}
			if hc == nil || len(hc.Test) == 0 {
				t.Fatalf("the broker has no healthcheck: %+v", d.Services)
			}
			hc.Interval, hc.StartPeriod = time.Second, time.Second
			firstApply(t, cli, d)
			id, _ := brokerContainer(t, cli, h.project)
			ctx := context.Background()

			// Healthy after at least three runs, each exit 0.
			deadline := time.Now().Add(40 * time.Second)
			var runs int
			for {
				res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				st := res.Container.State.Health
				if st != nil {
					runs = len(st.Log)
					if st.Status == "healthy" && runs >= 3 {
						for _, r := range st.Log {
							if r.ExitCode != 0 {
								t.Errorf("a healthcheck run exited %d: %s", r.ExitCode, r.Output)
							}
						}
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("not healthy with 3 runs after 40 s: %+v", st)
				}
				time.Sleep(500 * time.Millisecond)
			}

			logs, err := engine.Logs(ctx, cli, id, time.Time{}, true)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(logs, "u'"+schema.ProbeUser+"'"); n < 3 {
				t.Errorf("the log shows %d logins of %s, want one per run (%d):\n%s", n, schema.ProbeUser, runs, logs)
			}
			for _, refusal := range []string{"not authorised", "not authorized", "refused", "Denied", "denied", "bad user name or password"} {
				if strings.Contains(logs, refusal) {
					t.Errorf("the broker's log holds %q:\n%s", refusal, logs)
				}
			}

			// The password: a 0600 file of 1883 in the container, in no
			// part of the container's configuration.
			pw := h.password(schema.ProbeUser)
			files, _, err := engine.ReadDir(ctx, cli, id, "/mosquitto/config/healthcheck")
			if err != nil || len(files) != 1 {
				t.Fatalf("the probe's login in the container: %v %+v", err, files)
			}
			if f := files[0]; f.Path != generators.ProbeLoginName || f.Mode.Perm() != 0o600 || f.UID != 1883 || f.GID != 1883 || !strings.Contains(string(f.Data), "-P "+pw+"\n") {
				t.Errorf("probe login file %s mode %o owner %d:%d", f.Path, f.Mode.Perm(), f.UID, f.GID)
			}
			res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			inspect, _ := json.Marshal(res.Container)
			if strings.Contains(string(inspect), pw) {
				t.Errorf("docker inspect holds the probe's password")
			}
			if !strings.Contains(strings.Join(res.Container.Config.Healthcheck.Test, " "), "/mosquitto/config/healthcheck") {
				t.Errorf("healthcheck %q does not use the probe's login", res.Container.Config.Healthcheck.Test)
			}
		})
	}
}

// TestExporter (issue 11): monitoring.prometheus beside Mosquitto runs
// `mqttgen exporter` from the bundled broker's image, built here from the
// mqttgen binary (no third-party image): /metrics answers with the names of
// the bundled broker's own metrics, and no container of the project holds
// the exporter's (or any) password in what `docker inspect` shows; the
// password is a 0600 file in the exporter's container. A second plan is
// empty.
func TestExporter(t *testing.T) {
	cli := testEngine(t)
	staticMqttgen(t)
	prev := generators.ExporterImage
	generators.ExporterImage = brokerImage(t, cli)
	t.Cleanup(func() { generators.ExporterImage = prev })
	port, metricsPort := freePort(t), freePort(t)
	h := newHome(t, fmt.Sprintf(`package home
broker: image: "IMAGE"
listeners: mqtt: port: %d
users: {
	admin: acl: ["readwrite #"]
	exporter: acl: ["read $SYS/#"]
}
monitoring: prometheus: {enabled: true, port: %d}
deploy: project: "PROJECT"
`, port, metricsPort))
	cleanup(t, cli, h.project)
	p, err := apply(t, cli, h.desired())
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, planText(t, p))
	}
	text := planText(t, p)
	for _, want := range []string{`+ entrypoint  = ["/usr/bin/mqttgen", "exporter"]`, `+ file "exporter_password" (mode 0600)`, "apply builds it, FROM scratch, from this mqttgen binary"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	body := ""
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(body, "broker_clients_connected ") || !strings.Contains(body, "# TYPE broker_bytes_received counter") {
		if time.Now().After(deadline) {
			ctx := context.Background()
			logs, _ := engine.Logs(ctx, cli, engine.ContainerName(h.project, generators.ExporterService), time.Time{}, true)
			t.Fatalf("/metrics on :%d after 30 s:\n%s\nexporter log:\n%s", metricsPort, body, logs)
		}
		time.Sleep(500 * time.Millisecond)
		body = httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	}
	for _, want := range []string{"broker_uptime ", "# TYPE broker_messages_received counter", "broker_subscriptions_count "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}

	ctx := context.Background()
	secrets := map[string]string{"exporter": h.password("exporter"), "admin": h.password("admin"), schema.ProbeUser: h.password(schema.ProbeUser)}
	for _, svc := range []string{generators.BrokerService, generators.ExporterService} {
		res, err := cli.ContainerInspect(ctx, engine.ContainerName(h.project, svc), client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		inspect, _ := json.Marshal(res.Container)
		for who, pw := range secrets {
			if strings.Contains(string(inspect), pw) {
				t.Errorf("docker inspect of %s holds the password of %s", svc, who)
			}
		}
		if svc == generators.ExporterService {
			// Root reads the password and binds, then it runs as 1883.
			top, err := cli.ContainerTop(ctx, res.Container.ID, client.ContainerTopOptions{Arguments: []string{"-o", "pid,uid,args"}})
			if err != nil || len(top.Processes) != 1 || top.Processes[0][1] != "1883" || !strings.Contains(top.Processes[0][2], "mqttgen exporter") {
				t.Errorf("the exporter's processes: %v %v", err, top.Processes)
			}
			if res.Container.Config.Image != generators.ExporterImage || len(res.Container.Config.Env) > 1 { // PATH only
				t.Errorf("exporter image %s env %v", res.Container.Config.Image, res.Container.Config.Env)
			}
			files, _, err := engine.ReadDir(ctx, cli, res.Container.ID, generators.ExporterSecretDir)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range files {
				if f.Path == generators.ExporterSecret {
					found = string(f.Data) == secrets["exporter"]+"\n" && f.Mode.Perm() == 0o600
				}
			}
			if !found {
				t.Errorf("no 0600 %s/%s with the password in the exporter: %+v", generators.ExporterSecretDir, generators.ExporterSecret, files)
			}
		}
	}
	if p, _ := plan(t, cli, h.desired()); !p.Empty() {
		t.Errorf("second plan is not empty:\n%s", planText(t, p))
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
