package deploy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/schema"
)

const sitesHome = `package home
broker: image: "eclipse-mosquitto:2.0.20"
listeners: mqtt: port: 1883
users: admin: acl: ["readwrite #"]
devices: {
	sensor: publishes: ["temperature"]
	door: {site: "garage", publishes: ["state"], subscribes: ["set"]}
	pump: {site: "shed", publishes: ["state"]}
}
deploy: project: "home"
sites: {
	house: {docker_host: "unix:///var/run/docker.sock", hostname: "192.0.2.2", hub: true}
	garage: {docker_host: "ssh://pi@garage.home.arpa", hostname: "garage.home.arpa"}
	shed: {docker_host: "tcp://shed.home.arpa:2376", docker_cert_path: "certs/shed", hostname: "shed.home.arpa"}
}
`

// TestSitesPlanText: one plan, a section per site naming its engine: the
// hub unchanged, the garage's bridge password rotated (the diff of
// mosquitto.conf with the password redacted), the shed's engine
// unreachable and skipped.
func TestSitesPlanText(t *testing.T) {
	p := filepath.Join(t.TempDir(), "home.cue")
	os.WriteFile(p, []byte(sitesHome), 0o644)
	cfg, diags := schema.Load(p)
	if diags.Errors() > 0 {
		t.Fatal(diags)
	}
	view := func(name string) *schema.Config {
		v, err := generators.SiteConfig(cfg, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	hub := desired(t, view("house"), "a")
	garage := desired(t, view("garage"), "a", "-rotated")
	sites := []*Site{
		{Name: "house", Hub: true, Endpoint: engine.Endpoint{Host: "unix:///var/run/docker.sock"}, Desired: hub, Plan: Reconcile(hub, deployed(hub))},
		{Name: "garage", Endpoint: engine.Endpoint{Host: "ssh://pi@garage.home.arpa"}, Desired: garage, Plan: Reconcile(garage, deployed(desired(t, view("garage"), "a")))},
		{Name: "shed", Endpoint: engine.Endpoint{Host: "tcp://shed.home.arpa:2376"}, Err: errors.New("no Docker engine answers at tcp://shed.home.arpa:2376: connection refused")},
	}
	var b bytes.Buffer
	if err := WriteSitesText(&b, sites); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "plans", "sites.txt")
	if *updatePlans {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (-update-plans)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("plan text differs from %s (review, then -update-plans):\n%s", golden, b.String())
	}
	if strings.Contains(b.String(), "BRIDGE-PASSWORD") || strings.Contains(b.String(), "HASH-OF-") {
		t.Errorf("the plan shows a secret:\n%s", b.String())
	}
	if SitesEmpty(sites) || SkippedSites(sites) != 1 {
		t.Errorf("SitesEmpty %v, SkippedSites %d", SitesEmpty(sites), SkippedSites(sites))
	}
}
