package conf_test

import (
	"strings"
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// FuzzParse: no input panics, and every accepted file has a listener and
// security options that make sense.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"listener 1883\n",
		"per_listener_settings true\nlistener 1883 127.0.0.1\nallow_anonymous true\npassword_file /p\nacl_file /a\n",
		"listener 8883\ncertfile /c\nkeyfile /k\ncafile /ca\nrequire_certificate true\ntls_version tlsv1.3\n",
		"listener 1883\nconnection c\naddress h:1 h2:2\ntopic a/# both 2 \"\" r/\nremote_password a b\ncleansession true\n",
		"persistence true\npersistence_location /d\nautosave_interval 0\nlistener 1\nlog_dest file /l\nlog_type all\nlog_timestamp_format %Y\n",
		"listener 1883\npersistent_client_expiration 2m\nmax_packet_size 20\nmax_keepalive 0\n",
		"#\n \n\tlistener\t1883\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := conf.Parse("f.conf", strings.NewReader(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.conf:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		if len(c.Listeners) == 0 {
			t.Fatal("accepted without a listener")
		}
		for _, l := range c.Listeners {
			if l.Port < 1 || l.Port > 65535 {
				t.Fatalf("port %d accepted", l.Port)
			}
			if l.RequireCertificate && (l.CAFile == "" || l.CertFile == "") {
				t.Fatal("require_certificate accepted without cafile and certfile")
			}
		}
		if c.MaxPacketSize != 0 && c.MaxPacketSize < 20 {
			t.Fatalf("max_packet_size %d accepted", c.MaxPacketSize)
		}
	})
}
