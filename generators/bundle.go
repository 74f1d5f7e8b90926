package generators

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mqttgen/mqttgen/schema"
)

// Bundle is what a client needs to log in to the broker.
type Bundle struct {
	Host           string `json:"host" yaml:"host"`
	Port           int    `json:"port,omitempty" yaml:"port,omitempty"`
	TLSPort        int    `json:"tls_port,omitempty" yaml:"tls_port,omitempty"`
	WebsocketsPort int    `json:"websockets_port,omitempty" yaml:"websockets_port,omitempty"`
	WSSPort        int    `json:"websockets_tls_port,omitempty" yaml:"websockets_tls_port,omitempty"`
	Username       string `json:"username" yaml:"username"`
	Password       string `json:"password" yaml:"password"`
	// CACertificate (PEM) verifies the broker's TLS certificate.
	CACertificate string `json:"ca_certificate,omitempty" yaml:"ca_certificate,omitempty"`
	// Protocol is the MQTT version the client should speak: "5" for Home
	// Assistant (it drops 3.x in 2027.1; vet makes sure it can).
	Protocol string `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	// TopicPrefix is a device's topic root (ESPHome's topic_prefix,
	// Shelly's topic_prefix, Tasmota's FullTopic before %prefix%).
	TopicPrefix string `json:"topic_prefix,omitempty" yaml:"topic_prefix,omitempty"`

	homeAssistant bool
	kind          string
}

// BundleFormats are the formats FormatBundle writes.
var BundleFormats = []string{"text", "json", "yaml", "env", "esphome", "shelly", "tasmota"}

// NewBundle gathers the login of user. caPEM may be nil.
func NewBundle(cfg *schema.Config, user, password string, caPEM []byte) Bundle {
	ep := ClientEndpoints(cfg)
	b := Bundle{Host: ep.Host, Port: ep.Port, TLSPort: ep.TLSPort, WebsocketsPort: ep.WebsocketsPort,
		WSSPort: ep.WSSPort, Username: user, Password: password}
	if ep.TLSPort != 0 || ep.WSSPort != 0 {
		b.CACertificate = string(caPEM)
	}
	b.homeAssistant = cfg.HomeAssistant != nil && cfg.HomeAssistant.User == user
	if b.homeAssistant {
		b.Protocol = "5"
	}
	if d, ok := cfg.Devices[user]; ok {
		b.TopicPrefix = DevicePrefix(cfg, user)
		b.kind = d.Kind
	}
	return b
}

// FormatBundle writes the bundle in one of BundleFormats.
func FormatBundle(b Bundle, format string) ([]byte, error) {
	var out bytes.Buffer
	switch format {
	case "text":
		if b.homeAssistant {
			out.WriteString("In Home Assistant: Settings > Devices & services > Add integration > MQTT.\n\n")
		}
		fmt.Fprintf(&out, "Broker:   %s\n", b.Host)
		if b.Port != 0 {
			fmt.Fprintf(&out, "Port:     %d\n", b.Port)
		}
		if b.TLSPort != 0 {
			fmt.Fprintf(&out, "TLS port: %d\n", b.TLSPort)
		}
		if b.WebsocketsPort != 0 {
			fmt.Fprintf(&out, "WebSockets port: %d\n", b.WebsocketsPort)
		}
		if b.WSSPort != 0 {
			fmt.Fprintf(&out, "WebSockets TLS port: %d\n", b.WSSPort)
		}
		fmt.Fprintf(&out, "Username: %s\nPassword: %s\n", b.Username, b.Password)
		if b.homeAssistant {
			out.WriteString("MQTT protocol: 5 (under Advanced options; Home Assistant drops 3.x in 2027.1)\n")
		}
		if b.CACertificate != "" {
			if b.homeAssistant {
				out.WriteString("\nFor TLS: under Advanced options, use the TLS port, set \"Broker certificate\n" +
					"validation\" to Custom and upload this CA certificate (saved as ca.crt):\n")
			} else {
				out.WriteString("\nCA certificate (PEM) for TLS:\n")
			}
			out.WriteString(b.CACertificate)
		}
	case "json":
		enc := json.NewEncoder(&out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(b); err != nil {
			return nil, err
		}
	case "yaml":
		encodeYAML(&out, b)
	case "env":
		fmt.Fprintf(&out, "MQTT_HOST=%s\n", b.Host)
		if b.Port != 0 {
			fmt.Fprintf(&out, "MQTT_PORT=%d\n", b.Port)
		}
		if b.TLSPort != 0 {
			fmt.Fprintf(&out, "MQTT_TLS_PORT=%d\n", b.TLSPort)
		}
		if b.WebsocketsPort != 0 {
			fmt.Fprintf(&out, "MQTT_WEBSOCKETS_PORT=%d\n", b.WebsocketsPort)
		}
		if b.WSSPort != 0 {
			fmt.Fprintf(&out, "MQTT_WEBSOCKETS_TLS_PORT=%d\n", b.WSSPort)
		}
		fmt.Fprintf(&out, "MQTT_USERNAME=%s\nMQTT_PASSWORD=%s\n", shellQuote(b.Username), shellQuote(b.Password))
		if b.CACertificate != "" {
			fmt.Fprintf(&out, "MQTT_CA_CERT=%s\n", shellQuote(b.CACertificate))
		}
	case "esphome":
		// ESPHome's mqtt: component. topic_prefix puts its topics where
		// the device's login may publish (kind: "esphome").
		m := map[string]any{"broker": b.Host, "username": b.Username, "password": b.Password, "client_id": b.Username}
		switch {
		case b.Port != 0:
			m["port"] = b.Port
		case b.TLSPort != 0:
			m["port"] = b.TLSPort
		}
		if b.TopicPrefix != "" {
			m["topic_prefix"] = b.TopicPrefix
		}
		if b.kind != "" && b.kind != schema.KindESPHome {
			return nil, fmt.Errorf("%s is a %s device: ESPHome publishes on <topic_prefix>/<component>/<object_id>/state, which its login may not; declare it kind: \"esphome\"", b.Username, b.kind)
		}
		out.WriteString("# ESPHome's MQTT settings for " + b.Username + ": paste under the device's YAML (or keep the password in secrets.yaml).\n")
		encodeYAML(&out, map[string]any{"mqtt": m})
	case "shelly":
		// The params of Shelly Gen2+'s RPC MQTT.SetConfig (then Shelly.Reboot).
		if b.kind != schema.KindShelly {
			return nil, fmt.Errorf("%s is not a Shelly device (kind: \"shelly\")", b.Username)
		}
		port := b.Port
		c := map[string]any{"enable": true, "client_id": b.Username, "user": b.Username, "pass": b.Password,
			"topic_prefix": b.TopicPrefix, "rpc_ntf": true, "status_ntf": true, "enable_control": true}
		if port == 0 {
			port = b.TLSPort
			c["ssl_ca"] = "user_ca.pem"
		}
		c["server"] = fmt.Sprintf("%s:%d", b.Host, port)
		enc := json.NewEncoder(&out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"id": 1, "method": "MQTT.SetConfig", "params": map[string]any{"config": c}}); err != nil {
			return nil, err
		}
	case "tasmota":
		// One Backlog command for Tasmota's console: its FullTopic puts
		// cmnd/stat/tele under the device's prefix.
		if b.kind != schema.KindTasmota {
			return nil, fmt.Errorf("%s is not a Tasmota device (kind: \"tasmota\")", b.Username)
		}
		port := b.Port
		if port == 0 {
			port = b.TLSPort
		}
		fmt.Fprintf(&out, "Backlog MqttHost %s; MqttPort %d; MqttUser %s; MqttPassword %s; MqttClient %s; Topic %s; FullTopic %s/%%prefix%%/\n",
			b.Host, port, b.Username, b.Password, b.Username, b.Username, b.TopicPrefix)
	default:
		return nil, fmt.Errorf("unknown format %q: use one of %s", format, strings.Join(BundleFormats, ", "))
	}
	return out.Bytes(), nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
