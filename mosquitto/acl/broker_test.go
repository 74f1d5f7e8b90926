package acl

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/mosquitto/passwd"
)

// needTool returns the path of a Mosquitto program. When it is missing the
// test is skipped, or fails when CI is "true", so that CI cannot pass
// without the cross-check.
func needTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	missing(t, name+" is not installed (Debian: apt-get install mosquitto mosquitto-clients)")
	return ""
}

// missing skips the test, or fails it when CI is "true".
func missing(t *testing.T, what string) {
	t.Helper()
	msg := what + "; the cross-check against the real broker cannot run"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// broker is a mosquitto started for one test.
type broker struct {
	t              *testing.T
	port           string
	pub, sub, logf string
}

// startBroker runs mosquitto on a free loopback port with the acl file f
// and a password file holding users (name: password), hashed by
// passwd.Hash, so that the broker also checks that it reads our hashes and
// our Format output.
func startBroker(t *testing.T, f *File, users map[string]string) *broker {
	bin := needTool(t, "mosquitto")
	b := &broker{t: t, pub: needTool(t, "mosquitto_pub"), sub: needTool(t, "mosquitto_sub")}

	// Running as root, mosquitto drops privileges to the user mosquitto,
	// which must be able to read the files.
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mosquitto")
		if err != nil {
			missing(t, "running as root without a user mosquitto for the broker to switch to")
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	dir, err := os.MkdirTemp("", "mqttgen-acl-broker-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	var entries []passwd.Entry
	iterations := []int{1, 101, 1000}
	for i, name := range slices.Sorted(maps.Keys(users)) {
		h, err := passwd.Hash(users[name], iterations[i%len(iterations)])
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, passwd.Entry{User: name, Hash: h})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, b.port, _ = net.SplitHostPort(ln.Addr().String())
	ln.Close()
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npassword_file %s\nacl_file %s\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type subscribe\n",
		b.port, filepath.Join(dir, "passwd"), filepath.Join(dir, "acl"))
	for name, data := range map[string][]byte{"passwd": passwd.Format(entries), "acl": f.Format(), "mosquitto.conf": []byte(conf)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if uid >= 0 {
		for _, name := range []string{"", "passwd", "acl", "mosquitto.conf"} {
			if err := os.Chown(filepath.Join(dir, name), uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.logf = filepath.Join(dir, "log")
	logFile, err := os.Create(b.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "mosquitto.conf"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		select {
		case <-exited:
			t.Fatalf("mosquitto exited at start:\n%s", b.log())
		default:
		}
		if c, err := net.Dial("tcp", "127.0.0.1:"+b.port); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %s:\n%s", b.port, b.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return b
}

func (b *broker) log() string {
	data, _ := os.ReadFile(b.logf)
	return string(data)
}

// identity is a client of the broker test.
type identity struct {
	Client
	password string
}

func (id identity) args(b *broker) []string {
	args := []string{"-h", "127.0.0.1", "-p", b.port, "-V", "5", "-q", "1", "-i", id.ClientID}
	if id.Username != "" {
		args = append(args, "-u", id.Username, "-P", id.password)
	}
	return args
}

// publish reports whether the broker let id publish to topic: mosquitto
// answers an MQTT 5 QoS 1 publish it denies with PUBACK reason 135.
func (b *broker) publish(id identity, topic string) (bool, error) {
	args := append(id.args(b), "-d", "-t", topic, "-m", "x")
	out, _ := exec.Command(b.pub, args...).CombinedOutput()
	switch {
	case strings.Contains(string(out), "received PUBACK (Mid: 1, RC:135)"):
		return false, nil
	case strings.Contains(string(out), "received PUBACK"):
		return true, nil
	}
	return false, fmt.Errorf("mosquitto_pub %s to %q: no PUBACK:\n%s", id.ClientID, topic, out)
}

// subscriber is a running mosquitto_sub printing "RX topic" per message.
// (mosquitto_sub flushes its output after each message, but not after its
// debug lines, so its SUBACK cannot be seen on a pipe: the broker's log of
// the subscription tells when it is ready.)
type subscriber struct {
	cmd  *exec.Cmd
	id   string
	last string // the last filter, which the broker logs last
	mu   sync.Mutex
	got  map[string]bool
	done chan struct{}
}

func (b *broker) subscribe(id identity, filters ...string) (*subscriber, error) {
	args := append(id.args(b), "-F", "RX %t")
	for _, f := range filters {
		args = append(args, "-t", f)
	}
	s := &subscriber{cmd: exec.Command(b.sub, args...), id: id.ClientID, last: filters[len(filters)-1], got: map[string]bool{}, done: make(chan struct{})}
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if topic, ok := strings.CutPrefix(sc.Text(), "RX "); ok {
				s.mu.Lock()
				s.got[topic] = true
				s.mu.Unlock()
			}
		}
	}()
	return s, nil
}

func (s *subscriber) received() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.got)
}

// TestBroker compares Check with mosquitto 2.0 itself on checkFile: every
// identity subscribes to everything and an admin publishes every topic
// (reads), then every identity publishes every topic (writes). It takes
// about two seconds.
func TestBroker(t *testing.T) {
	f := mustParse(t, checkFile+"user admin\ntopic write #\ntopic write $foo/#\n")
	users := map[string]string{"alice": "apw", "bob": "bpw", "carol": "cpw", "a+b": "xpw", "admin": "adm"}
	b := startBroker(t, f, users)
	ids := []identity{
		{anon, ""},
		{alice, "apw"},
		{Client{"alice", "c+x"}, "apw"},
		{bob, "bpw"},
		{carol, "cpw"},
		{plus, "xpw"},
	}
	admin := identity{Client{"admin", "admin"}, "adm"}
	topics := []string{
		"anon/1", "anon/secret", "a/x", "a/secret", "x/y", "m/1", "d/1", "z/1",
		"pc/anon1", "pc/c1", "pc/cb", "pc/cc", "pc/c2",
		"pu/alice/x", "pu/bob/x", "pu/bob/own", "pu/carol/x", "pu/a+b/x",
		"shared/x", "shared/locked", "pct/%c1", "$foo/a",
	}
	topics = slices.DeleteFunc(topics, func(s string) bool { return strings.ContainsAny(s, "+#") })

	// Reads. $SYS/broker/version is the broker's own retained message.
	subs := make([]*subscriber, len(ids))
	for i, id := range ids {
		s, err := b.subscribe(id, "#", "$SYS/broker/version", "$foo/#")
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
		defer func() {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}()
	}
	for i, s := range subs {
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(b.log(), ": "+s.id+" 1 "+s.last+"\n"); time.Sleep(10 * time.Millisecond) {
			select {
			case <-s.done:
				t.Fatalf("mosquitto_sub for %+v ended before subscribing:\n%s", ids[i].Client, b.log())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%+v did not subscribe:\n%s", ids[i].Client, b.log())
			}
		}
	}
	for _, topic := range topics {
		if !f.Check(admin.Client, topic, Write) {
			t.Fatalf("test setup: admin may not write %q", topic)
		}
		if ok, err := b.publish(admin, topic); err != nil || !ok {
			t.Fatalf("admin's publish to %q: %v, %v", topic, ok, err)
		}
	}
	want := make([]map[string]bool, len(ids))
	for i, id := range ids {
		want[i] = map[string]bool{}
		for _, topic := range append(slices.Clone(topics), "$SYS/broker/version") {
			if f.Check(id.Client, topic, Read) {
				want[i][topic] = true
			}
		}
	}
	// Deliveries are written before the publisher gets its PUBACK; give the
	// subscribers time to print them, and a little more for extras.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		all := true
		for i, s := range subs {
			got := s.received()
			for topic := range want[i] {
				all = all && got[topic]
			}
		}
		if all {
			break
		}
	}
	time.Sleep(200 * time.Millisecond)
	reads := 0
	for i, s := range subs {
		got := s.received()
		for _, topic := range append(slices.Clone(topics), "$SYS/broker/version") {
			reads++
			if got[topic] != want[i][topic] {
				t.Errorf("read %q by %+v: Check says %v, mosquitto delivered: %v", topic, ids[i].Client, want[i][topic], got[topic])
			}
		}
		if n := len(got); n > len(want[i]) && !t.Failed() {
			t.Errorf("%+v received unexpected topics: %v", ids[i].Client, got)
		}
	}

	// The subscribers go before the writes: they share the client ids, and a
	// mosquitto_sub taken over by a publisher's connection reconnects and
	// takes the id back, dropping the publisher before its PUBACK.
	for _, s := range subs {
		s.cmd.Process.Kill()
		<-s.done
	}

	// Writes, one identity after the other for each client id, identities
	// in parallel.
	writeTopics := append(slices.Clone(topics), "$SYS/foo", "$SYS/broker/connection/br/state", "$SYSX/a", "$share/g/t")
	var wg sync.WaitGroup
	var mu sync.Mutex
	writes := 0
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, topic := range writeTopics {
				ok, err := b.publish(id, topic)
				mu.Lock()
				writes++
				if err != nil {
					t.Error(err)
				} else if want := f.Check(id.Client, topic, Write); ok != want {
					t.Errorf("write %q by %+v: Check says %v, mosquitto says %v", topic, id.Client, want, ok)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if strings.Contains(b.log(), "Error") {
		t.Errorf("mosquitto logged errors:\n%s", b.log())
	}
	t.Logf("compared %d reads and %d writes with mosquitto", reads, writes)
}
