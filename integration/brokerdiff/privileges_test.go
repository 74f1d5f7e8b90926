package brokerdiff

import (
	"fmt"
	"os"
	osuser "os/user"
	"strings"
	"testing"
	"time"
)

// TestPrivileges: `mqttgen broker` started as root runs as the `user` of
// mosquitto.conf (mosquitto, which render writes), as Mosquitto does, for
// both engines; the bundled broker still reads its files and answers.
func TestPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs to start as root")
	}
	want, err := osuser.Lookup("mosquitto")
	if err != nil {
		t.Fatalf("the mosquitto user does not exist: %v", err)
	}
	engines := []string{mqttgenEngine}
	if mosquittoPath(t) != "" {
		engines = append(engines, mosquittoEngine)
	}
	for _, e := range engines {
		h := renderHome(t, stdHome, stdPasswords)
		p := start(t, e, h)
		uid := ""
		for deadline := time.Now().Add(5 * time.Second); uid != want.Uid && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
					uid = strings.Join(f[1:], " ")
				}
			}
		}
		// Real, effective, saved and file system uid: none stays root.
		if w := strings.Repeat(want.Uid+" ", 4); uid+" " != w {
			t.Errorf("%s started as root runs with uids %q, want %s's %s", e, uid, want.Username, want.Uid)
		}
		c, ack, err := dialMQTT(h.addr("mqtt"), 4, user("admin", "admin-pw", "priv"))
		if err != nil || c == nil {
			t.Fatalf("%s after dropping privileges: %v (connack 0x%02x)\n%s", e, err, ack.ReasonCode, p.log)
		}
		c.disconnect()
		p.stop()
	}
}
