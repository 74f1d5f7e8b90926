package importer

import (
	"testing"

	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// FuzzTranslate: any configuration text is read and translated without a
// panic (files it names are not read: no passwd, no acl).
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{
		"listener 1883\nallow_anonymous true\n",
		"persistent_client_expiration\nmax_keepalive\nlog_dest\nconnection b\naddress\ntopic x\n",
		"port 1883\nbind_address 1.2.3.4\nmax_connections 5\ncertfile a\nkeyfile b\nlistener 2\nprotocol websockets\n",
		"per_listener_settings true\nlistener 1\nallow_anonymous false\nlistener 2\nallow_anonymous true\nlog_type all\n",
		"persistent_client_expiration 1m\nmessage_size_limit 10M\nreconnect_delay 5\nmax_packet_size 100\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ds := conf.Read("m.conf", []byte(text)).Directives()
		s, err := readSetup(ds)
		if err != nil {
			return
		}
		l := &loaded{setup: s, src: &source{conf: "m.conf"}, lines: map[string]map[string]int{}, directives: ds}
		for range s.listeners {
			l.logins = append(l.logins, nil)
			l.acls = append(l.acls, nil)
			l.certs = append(l.certs, "")
			l.passwdAt = append(l.passwdAt, "")
			l.aclAt = append(l.aclAt, "")
		}
		tr := &translator{l: l, out: t.TempDir(), w: &cueWriter{base: "."}, bridgePW: map[string]string{}}
		tr.translate()
		l.effective(topicSet(l), usersOf(l))
	})
}
