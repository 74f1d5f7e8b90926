package generators_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
)

var updateCompose = flag.Bool("update-compose", false, "rewrite the golden files of testdata/compose")

// composeHomes are the homes whose docker-compose.yml is kept in
// testdata/compose/NAME.yml. files are the rendered files the home has.
var composeHomes = []struct {
	name  string
	home  string // a path, or the text of a home
	files []generators.File
}{
	{name: "example", home: "../examples/home.cue", files: []generators.File{{Path: "config/certs/ca.crt"}, {Path: generators.ProbeLoginPath}}},
	{name: "minimal", home: "../examples/minimal/home.cue"},
	{name: "tls-only", home: `package home
listeners: mqtts: {port: 8883, tls: true}
tls: server_names: ["localhost"]
users: admin: acl: ["readwrite #"]
deploy: project: "tls-only"
`, files: []generators.File{{Path: "config/certs/ca.crt"}, {Path: generators.ProbeLoginPath}}},
	{name: "mqttgen", home: `package home
broker: engine: "mqttgen"
listeners: {
	mqtt: port: 1883
	mqtts: {port: 8883, tls: true}
}
tls: server_names: ["localhost"]
users: {
	admin: acl: ["readwrite #"]
	exporter: acl: ["read $SYS/#"]
}
monitoring: prometheus: enabled: true
deploy: project: "bundled"
`, files: []generators.File{{Path: "config/certs/ca.crt"}, {Path: generators.ProbeLoginPath}}},
	{name: "mqttgen-websockets", home: `package home
broker: engine: "mqttgen"
listeners: {
	wss: {port: 9443, protocol: "websockets", tls: true}
	ws: {port: 9001, protocol: "websockets"}
}
tls: server_names: ["localhost"]
users: admin: acl: ["readwrite #"]
deploy: project: "bundled-ws"
`, files: []generators.File{{Path: "config/certs/ca.crt"}}},
	{name: "mqttgen-client-certificates", home: `package home
broker: engine: "mqttgen"
listeners: mqtts: {port: 8883, tls: true}
tls: {server_names: ["localhost"], require_client_certificate: true}
users: admin: acl: ["readwrite #"]
deploy: project: "bundled-certs"
`, files: []generators.File{{Path: "config/certs/ca.crt"}}},
	{name: "bind-websockets", home: `package home
listeners: {
	ws: {port: 9001, protocol: "websockets"}
	lan: {port: 1884, bind: "192.168.1.10"}
}
users: admin: acl: ["readwrite #"]
deploy: project: "ws"
`},
}

func loadHome(t *testing.T, home string) *schema.Config {
	t.Helper()
	p := home
	if strings.HasPrefix(home, "package ") {
		p = filepath.Join(t.TempDir(), "home.cue")
		if err := os.WriteFile(p, []byte(home), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, diags := schema.Load(p)
	if diags.Errors() > 0 {
		t.Fatalf("load %s: %v", p, diags)
	}
	return cfg
}

func composeFiles(t *testing.T, cfg *schema.Config, files []generators.File) (yml, env []byte) {
	t.Helper()
	out := generators.Compose(cfg, files)
	if len(out) != 2 || out[0].Path != generators.ComposePath || out[1].Path != generators.ComposeEnvPath {
		t.Fatalf("Compose returned %v, want docker-compose.yml and .env", out)
	}
	return out[0].Data, out[1].Data
}

func TestComposeGolden(t *testing.T) {
	for _, h := range composeHomes {
		t.Run(h.name, func(t *testing.T) {
			cfg := loadHome(t, h.home)
			yml, env := composeFiles(t, cfg, h.files)
			again, _ := composeFiles(t, cfg, h.files)
			if !bytes.Equal(yml, again) {
				t.Fatal("two renders differ")
			}
			if want := "COMPOSE_PROJECT_NAME=" + cfg.Deploy.Project + "\n"; string(env) != want {
				t.Errorf(".env = %q, want %q", env, want)
			}
			golden := filepath.Join("testdata", "compose", h.name+".yml")
			if *updateCompose {
				if err := os.WriteFile(golden, yml, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./generators -run TestComposeGolden -update-compose)", err)
			}
			if !bytes.Equal(yml, want) {
				t.Errorf("docker-compose.yml differs from %s (review, then -update-compose):\n%s", golden, yml)
			}
		})
	}
}

// writeOutput writes the compose files as render does, with the config
// folder beside them.
func writeOutput(t *testing.T, cfg *schema.Config, files []generators.File) string {
	t.Helper()
	dir := t.TempDir()
	yml, env := composeFiles(t, cfg, files)
	exporterPW, err := generators.ExporterPassword(cfg, "secret")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		generators.ComposePath:          yml,
		generators.ComposeEnvPath:       env,
		generators.ExporterPasswordPath: exporterPW.Data,
		"config/mosquitto.conf":         []byte("listener 1883\n"),
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestComposeLoads loads the file back with compose-go as `docker compose`
// does in the output folder, the project name coming from .env.
func TestComposeLoads(t *testing.T) {
	cfg := loadHome(t, "../examples/home.cue")
	dir := writeOutput(t, cfg, []generators.File{{Path: "config/certs/ca.crt"}})
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, generators.ComposePath)},
		cli.WithWorkingDirectory(dir), cli.WithEnvFiles(), cli.WithDotEnv, cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go cannot load the file: %v", err)
	}
	if p.Name != "home-mqtt" {
		t.Errorf("project name %q, want home-mqtt (from .env)", p.Name)
	}
	broker := p.Services["broker"]
	if broker.Image != "eclipse-mosquitto:2.0.20" || broker.Restart != types.RestartPolicyUnlessStopped {
		t.Errorf("broker image %q restart %q", broker.Image, broker.Restart)
	}
	var ports []string
	for _, pc := range broker.Ports {
		ports = append(ports, fmt.Sprintf("%s:%s:%d", pc.HostIP, pc.Published, pc.Target))
	}
	if got, want := strings.Join(ports, " "), "0.0.0.0:1883:1883 :8883:8883 :9001:9001"; got != want {
		t.Errorf("ports %s, want %s", got, want)
	}
	var mounts []string
	for _, v := range broker.Volumes {
		mounts = append(mounts, v.Type+" "+v.Source+" "+v.Target+" "+map[bool]string{true: "ro", false: "rw"}[v.ReadOnly])
	}
	wantMounts := []string{"bind " + filepath.Join(dir, "config") + " /mosquitto/config ro", "volume data /mosquitto/data rw", "volume log /mosquitto/log rw"}
	if strings.Join(mounts, "\n") != strings.Join(wantMounts, "\n") {
		t.Errorf("volumes:\n%s\nwant:\n%s", strings.Join(mounts, "\n"), strings.Join(wantMounts, "\n"))
	}
	if hc := broker.HealthCheck; hc == nil || len(hc.Test) != 2 || !strings.Contains(hc.Test[1], "case $? in 0|5)") {
		t.Errorf("healthcheck %v: want $$ read back as $", hc)
	}
	if len(p.Networks) != 1 || len(p.Volumes) != 2 {
		t.Errorf("networks %v volumes %v, want one network and data, log", p.Networks, p.Volumes)
	}
	ex, ok := p.Services["exporter"]
	if !ok {
		t.Fatal("no exporter service with monitoring.prometheus on")
	}
	// mqttgen's own exporter, from the bundled broker's image: the
	// password is a compose secret, a file, never in the environment.
	if ex.Image != generators.ExporterImage || len(ex.Environment) != 0 {
		t.Errorf("exporter image %s env %v", ex.Image, ex.Environment)
	}
	if got, want := strings.Join(append(append([]string{}, ex.Entrypoint...), ex.Command...), " "),
		"/usr/bin/mqttgen exporter --broker tcp://broker:1883 --user exporter --password-file /run/secrets/exporter_password --listen 0.0.0.0:9234"; got != want {
		t.Errorf("exporter runs %q, want %q", got, want)
	}
	if len(ex.Secrets) != 1 || ex.Secrets[0].Source != generators.ExporterSecret || p.Secrets[generators.ExporterSecret].File != filepath.Join(dir, generators.ExporterPasswordPath) {
		t.Errorf("exporter secrets %+v, project secrets %+v", ex.Secrets, p.Secrets)
	}
}

// TestComposeDockerCompose runs Debian's Compose tool on the file.
func TestComposeDockerCompose(t *testing.T) {
	tool, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and no docker-compose on PATH")
		}
		t.Skip("no docker-compose on PATH")
	}
	for _, h := range composeHomes {
		t.Run(h.name, func(t *testing.T) {
			cfg := loadHome(t, h.home)
			dir := writeOutput(t, cfg, h.files)
			cmd := exec.Command(tool, "-f", filepath.Join(dir, generators.ComposePath), "config")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("docker-compose config: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "image: "+cfg.Broker.ImageRef()) {
				t.Errorf("docker-compose config shows no broker image:\n%s", out)
			}
			// The project's name comes from .env, which v1 reads too.
			cmd = exec.Command(tool, "-f", filepath.Join(dir, generators.ComposePath), "config", "--volumes")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "data") {
				t.Errorf("docker-compose config --volumes: %v\n%s", err, out)
			}
		})
	}
}
