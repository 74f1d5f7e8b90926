package importer

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/mosquitto/passwd"
	"github.com/mqttgen/mqttgen/workspace"
)

// needTool returns the path of a Mosquitto program; missing, the test is
// skipped, or fails under CI=true.
func needTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); isFile(p) {
			return p
		}
	}
	msg := name + " is not installed (Debian: apt-get install mosquitto mosquitto-clients): the imported homes cannot be served"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// probeAdmin is added to the rendered files to publish every topic, so
// that what each account may read can be seen.
const probeAdmin = "mqttgen-probe-admin"

// served is an imported home rendered --local and run by Debian's Mosquitto.
type served struct {
	t        *testing.T
	out      string
	moved    map[int]int
	port     int
	tlsCA    string // set when the port serves TLS
	pub, sub string
	logf     string
}

var portRE = regexp.MustCompile(`(?m)^(\tport: )(\d+)$`)

// serve renders the home in dir with every listener moved to a free port
// (the map says where each original port went) and starts mosquitto on it.
func serve(t *testing.T, dir string, conn int) (*served, map[int]int) {
	bin := needTool(t, "mosquitto")
	s := &served{t: t, pub: needTool(t, "mosquitto_pub"), sub: needTool(t, "mosquitto_sub")}
	home := filepath.Join(dir, "home.cue")
	data, err := os.ReadFile(home)
	if err != nil {
		t.Fatal(err)
	}
	moved := map[int]int{}
	data = portRE.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := portRE.FindSubmatch(m)
		old, _ := strconv.Atoi(string(sub[2]))
		moved[old] = freePort(t)
		return fmt.Appendf(nil, "%s%d", sub[1], moved[old])
	})
	// The log goes to stderr, where the test reads it.
	data = regexp.MustCompile(`(?m)^\tdestinations: .*$`).ReplaceAll(data, []byte(`	destinations: ["stderr"]`))
	if err := os.WriteFile(home, data, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := workspace.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp("", "mqttgen-import-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	// Started as root, mosquitto drops to its own user, who must reach the files.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out")
	files, err := h.Render(workspace.RenderOptions{Local: true, Out: out, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		switch f.Path {
		case "config/passwd":
			h, _ := passwd.Hash("admin", 1)
			files[i].Data = append(slices.Clone(f.Data), []byte(probeAdmin+":"+h+"\n")...)
		case "config/acl":
			files[i].Data = append(slices.Clone(f.Data), []byte("\nuser "+probeAdmin+"\ntopic write #\n")...)
		}
	}
	if err := workspace.Write(out, files, true); err != nil {
		t.Fatal(err)
	}
	s.out, s.moved = out, moved
	s.use(conn)
	for _, l := range h.Config.Listeners {
		if l.Port == s.port && l.TLS {
			s.tlsCA = filepath.Join(out, "config", "certs", "server.crt")
		}
	}
	s.logf = filepath.Join(t.TempDir(), "log")
	logFile, err := os.Create(s.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-c", filepath.Join(out, "config", "mosquitto.conf"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(5 * time.Second); ; {
		select {
		case <-exited:
			t.Fatalf("mosquitto exited at start:\n%s", s.log())
		default:
		}
		if c, err := net.Dial("tcp", fmt.Sprint("127.0.0.1:", s.port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %d:\n%s", s.port, s.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s, moved
}

// use points the clients at the listener of the original port.
func (s *served) use(origPort int) { s.port = s.moved[origPort] }

func (s *served) log() string {
	data, _ := os.ReadFile(s.logf)
	return string(data)
}

func (s *served) args(user, password string) []string {
	host := "127.0.0.1"
	args := []string{"-p", strconv.Itoa(s.port), "-V", "5", "-q", "1", "-i", clientID(user)}
	if s.tlsCA != "" {
		args = append(args, "--cafile", s.tlsCA, "--insecure")
		host = "localhost"
	}
	args = append(args, "-h", host)
	if user != "" {
		args = append(args, "-u", user, "-P", password)
	}
	return args
}

// publish reports whether user may publish to topic: Mosquitto answers a
// denied MQTT 5 QoS 1 publish with PUBACK reason 135. A refused login is
// an error.
func (s *served) publish(user, password, topic string, retain bool) (bool, error) {
	args := append(s.args(user, password), "-d", "-t", topic, "-m", "x")
	if retain {
		args = append(args, "-r")
	}
	out, _ := exec.Command(s.pub, args...).CombinedOutput()
	switch {
	case strings.Contains(string(out), "RC:135)"):
		return false, nil
	case strings.Contains(string(out), "received PUBACK"):
		return true, nil
	}
	return false, fmt.Errorf("%s publishing to %q: %s", orAnon(user), topic, strings.TrimSpace(string(out)))
}

func orAnon(u string) string {
	if u == "" {
		return "anonymous"
	}
	return u
}

// readable are the retained topics user receives on '#' within a second.
func (s *served) readable(user, password string) (map[string]bool, error) {
	args := append(s.args(user, password), "-t", "#", "--retained-only", "-W", "1", "-F", "RX %t")
	cmd := exec.Command(s.sub, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	got := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if topic, ok := strings.CutPrefix(sc.Text(), "RX "); ok {
			got[topic] = true
		}
	}
	cmd.Wait()
	if strings.Contains(stderr.String(), "rror") {
		return nil, fmt.Errorf("%s subscribing: %s", orAnon(user), stderr.String())
	}
	return got, nil
}

// checkServed proves on the real broker that every account logs in with
// its original password and gets the original acl's decisions on every
// topic the rules name, for writes (every topic, $SYS included) and reads
// (retained messages on every topic not starting with '$').
func checkServed(t *testing.T, orig *loaded, s *served, origPort int, passwords map[string]string) {
	s.use(origPort)
	li := -1
	for i, l := range orig.listeners {
		if l.port == origPort {
			li = i
		}
	}
	if li < 0 {
		t.Fatalf("no original listener on %d", origPort)
	}
	f := orig.acls[li]
	sec := orig.securityOf(orig.listeners[li])
	users := slices.Sorted(maps.Keys(orig.logins[li]))
	who := users
	if sec.allowAnonymous != nil && *sec.allowAnonymous {
		who = append([]string{""}, users...)
	}
	var topics []string
	for _, tp := range topicSet(orig) {
		if strings.Contains(tp, "%u") || strings.Contains(tp, "%c") {
			for _, u := range who {
				topics = append(topics, strings.NewReplacer("%u", u, "%c", clientID(u)).Replace(tp))
			}
			continue
		}
		topics = append(topics, tp)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	want := func(u, tp string, a acl.Access) bool { return decide(f, u, tp, a) == "allowed" }

	// Reads: the admin retains a message on every plain topic first.
	for _, tp := range topics {
		if tp[0] == '$' {
			continue
		}
		if ok, err := s.publish(probeAdmin, "admin", tp, true); err != nil || !ok {
			t.Fatalf("the probe admin cannot publish %q: %v\n%s", tp, err, s.log())
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	checks := 0
	for _, u := range who {
		wg.Go(func() {
			got, err := s.readable(u, passwords[u])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			for _, tp := range topics {
				if tp[0] == '$' {
					continue
				}
				checks++
				if w := want(u, tp, acl.Read); got[tp] != w {
					t.Errorf("%s reads %q on the real broker: %v, originally %v", orAnon(u), tp, got[tp], w)
				}
			}
		})
	}
	wg.Wait()
	for _, u := range who {
		for _, tp := range topics {
			got, err := s.publish(u, passwords[u], tp, false)
			if err != nil {
				t.Fatalf("%v\n%s", err, s.log())
			}
			checks++
			if w := want(u, tp, acl.Write); got != w {
				t.Errorf("%s writes %q on the real broker: %v, originally %v", orAnon(u), tp, got, w)
			}
		}
	}
	t.Logf("%d accounts (anonymous included: %v) logged in with their original passwords; %d decisions on %d topics matched the original acl", len(who), len(who) > len(users), checks, len(topics))
}
