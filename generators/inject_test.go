package generators

import (
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/schema"
)

const injectHome = `package home
listeners: mqtt: port: 1883
users: {
	homeassistant: preset: "homeassistant"
	z2m: preset: "zigbee2mqtt"
	exporter: acl: ["read $SYS/#"]
}
homeassistant: {}
zigbee2mqtt: user: "z2m"
monitoring: prometheus: enabled: true
devices: sensor: {publishes: ["temp"], entities: temp: component: "sensor"}
backup: {dir: "b", schedule: "0 3 * * *"}
bridges: cloud: {
	address: "cloud.example.com:8883"
	username: "house"
	password: env: "CLOUD_PW"
	topics: [{pattern: "a/#", local_prefix: "cloud/", remote_prefix: "home/"}]
}
`

// TestWritersRefuseInjection: with vet bypassed (the values set on a loaded
// Config), every reproduction of issue 11's "Injection through strings"
// makes Render fail instead of writing a file that says more than the home.
func TestWritersRefuseInjection(t *testing.T) {
	const hidden = "\ncleansession false\ntopic x/# out 0\nconnection evil\naddress 127.0.0.1:40198\ntopic # both 0"
	for _, tc := range []struct {
		name   string
		change func(*schema.Config, *Inputs)
		want   string
	}{
		{"bridge username", func(c *schema.Config, _ *Inputs) {
			b := c.Bridges["cloud"]
			b.Username = "house" + hidden
			c.Bridges["cloud"] = b
		}, "mosquitto.conf: remote_username"},
		{"bridge client id", func(c *schema.Config, _ *Inputs) {
			b := c.Bridges["cloud"]
			b.ClientID = "id\nlistener 40102\nallow_anonymous true"
			c.Bridges["cloud"] = b
		}, "mosquitto.conf: remote_clientid"},
		{"bridge env password", func(_ *schema.Config, in *Inputs) { in.BridgePasswords["cloud"] = "pw" + hidden }, "mosquitto.conf: remote_password"},
		{"bridge password ending in a space", func(_ *schema.Config, in *Inputs) { in.BridgePasswords["cloud"] = "pw " }, "mosquitto.conf: remote_password"},
		{"bridge prefix", func(c *schema.Config, _ *Inputs) {
			b := c.Bridges["cloud"]
			b.Topics = []schema.BridgeTopic{{Pattern: "a/#", Direction: "both", LocalPrefix: "cloud/\ntopic # both 0\n", RemotePrefix: "x/"}}
			c.Bridges["cloud"] = b
		}, "mosquitto.conf: topic"},
		{"broker.image", func(c *schema.Config, _ *Inputs) {
			c.Broker.Image = "eclipse-mosquitto:2.0.20\nlistener 40102\nallow_anonymous true"
		}, "mosquitto.conf: comment"},
		{"devices_topic", func(c *schema.Config, _ *Inputs) { c.DevicesTopic = "home\nuser sensor\ntopic readwrite zigbee2mqtt" }, "acl:"},
		{"base_topic", func(c *schema.Config, _ *Inputs) { c.Zigbee2MQTT.BaseTopic = "zigbee2mqtt\ntopic readwrite #" }, "acl:"},
		{"entity name", func(c *schema.Config, _ *Inputs) {
			d := c.Devices["sensor"]
			d.Entities = map[string]schema.Entity{"temp": {Component: "sensor", Name: "Temp\u2028x"}}
			c.Devices["sensor"] = d
		}, "Home Assistant entity"},
		{"exporter password", func(_ *schema.Config, in *Inputs) { in.Passwords["exporter"] = "pw\nMQTT_USER=admin" }, "exporter.password"},
		{"z2m password", func(_ *schema.Config, in *Inputs) { in.Passwords["z2m"] = "pw\x00" }, "zigbee2mqtt/secret.yaml"},
		{"state dir in a unit", func(_ *schema.Config, in *Inputs) { in.StateDir = "/srv/x\nExecStartPre=/bin/evil" }, "backup schedule"},
		{"project", func(c *schema.Config, _ *Inputs) { c.Deploy.Project = "p\nx" }, "remote_clientid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := schema.LoadSource("home.cue", []byte(injectHome))
			if diags.Errors() > 0 {
				t.Fatal(diags)
			}
			in := fixedInputs(cfg, ContainerLayout)
			for name := range in.Hashes {
				in.Hashes[name] = "$7$1000$c2FsdA==$a2V5"
			}
			if _, err := Render(cfg, in); err != nil {
				t.Fatalf("the home itself does not render: %v", err)
			}
			tc.change(cfg, &in)
			files, err := Render(cfg, in)
			if err == nil {
				for _, f := range files {
					if f.Path == "config/mosquitto.conf" || f.Path == "config/acl" {
						t.Logf("%s:\n%s", f.Path, f.Data)
					}
				}
				t.Fatal("rendered")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// TestFormatChecks: the acl and passwd checks refuse what would change
// the files' sections.
func TestFormatChecks(t *testing.T) {
	f := &acl.File{Users: []acl.Section{{User: "a\nuser b", Rules: []acl.Rule{{Access: acl.Read, Topic: "x"}}}}}
	if f.Validate() == nil {
		t.Error("acl: a user name with a newline accepted")
	}
	f = &acl.File{Anonymous: []acl.Rule{{Access: acl.Read, Topic: " x"}}}
	if f.Validate() == nil {
		t.Error("acl: a topic with a leading space accepted")
	}
	for _, e := range []passwd.Entry{{User: "a:b", Hash: "$7$1$x$y"}, {User: "a\nb", Hash: "$7$1$x$y"}, {User: "a", Hash: "$7$1$x$y\nb:$7$"}} {
		if passwd.Check([]passwd.Entry{e}) == nil {
			t.Errorf("passwd: %q accepted", e)
		}
	}
}
