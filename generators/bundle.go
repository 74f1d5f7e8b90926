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

	homeAssistant bool
}

// BundleFormats are the formats FormatBundle writes.
var BundleFormats = []string{"text", "json", "yaml", "env", "esphome"}

// NewBundle gathers the login of user. caPEM may be nil.
func NewBundle(cfg *schema.Config, user, password string, caPEM []byte) Bundle {
	ep := ClientEndpoints(cfg)
	b := Bundle{Host: ep.Host, Port: ep.Port, TLSPort: ep.TLSPort, WebsocketsPort: ep.WebsocketsPort,
		WSSPort: ep.WSSPort, Username: user, Password: password}
	if ep.TLSPort != 0 || ep.WSSPort != 0 {
		b.CACertificate = string(caPEM)
	}
	b.homeAssistant = cfg.HomeAssistant != nil && cfg.HomeAssistant.User == user
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
		// A fragment of ESPHome's secrets.yaml. ESPHome's mqtt: speaks
		// MQTT over TCP (TLS on ESP32 with ESP-IDF), not WebSockets.
		m := map[string]any{
			"mqtt_broker":                 b.Host,
			"mqtt_username_" + b.Username: b.Username,
			"mqtt_password_" + b.Username: b.Password,
		}
		if b.Port != 0 {
			m["mqtt_port"] = b.Port
		}
		if b.TLSPort != 0 {
			m["mqtt_tls_port"] = b.TLSPort
		}
		encodeYAML(&out, m)
	default:
		return nil, fmt.Errorf("unknown format %q: use one of %s", format, strings.Join(BundleFormats, ", "))
	}
	return out.Bytes(), nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
