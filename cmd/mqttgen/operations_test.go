package main

// Backup, restore, certificate renewal and status, through the CLI, on the
// real Docker engine and the real broker (Debian's Mosquitto in an image
// built by deploytest). Without an engine the test skips; under CI=true it
// fails. Each part has its own project and ports and removes its
// containers, networks and volumes; the image is removed at the end.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/mqttgen/mqttgen/backup/backuptest"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/deploy/deploytest"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/workspace"
)

// opsHome is a home on disk deployed by the test.
type opsHome struct {
	t       *testing.T
	dir     string
	file    string
	project string
	port    int
}

func newOpsHome(t *testing.T, cli *client.Client, name, text string, vars ...string) *opsHome {
	t.Helper()
	h := &opsHome{t: t, dir: t.TempDir(), project: fmt.Sprintf("mqttgen-ops-%d-%s", os.Getpid(), name), port: opsFreePort(t)}
	h.file = filepath.Join(h.dir, "home.cue")
	r := strings.NewReplacer(append([]string{"PROJECT", h.project, "PORT", fmt.Sprint(h.port)}, vars...)...)
	if err := os.WriteFile(h.file, []byte(r.Replace(text)), 0o644); err != nil {
		t.Fatal(err)
	}
	opsCleanup(t, cli, h.project)
	return h
}

// run runs mqttgen with the home's path appended and checks the exit
// status and that out holds want.
func (h *opsHome) run(wantCode int, want string, args ...string) string {
	h.t.Helper()
	start := time.Now()
	code, out := mqttgen(h.t, "", append(args, h.file)...)
	h.t.Logf("mqttgen %s: exit %d after %s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	if code != wantCode || !strings.Contains(out, want) {
		h.t.Fatalf("mqttgen %s: exit %d, want %d and %q in:\n%s", strings.Join(args, " "), code, wantCode, want, out)
	}
	return out
}

func (h *opsHome) password(user string) string {
	h.t.Helper()
	w, err := workspace.Open(h.file, "")
	if err != nil {
		h.t.Fatal(err)
	}
	pw, err := w.Secrets.Password(user, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return pw
}

func (h *opsHome) archives(dir string) []backup.Info {
	h.t.Helper()
	list, err := backup.List(dir, h.project)
	if err != nil {
		h.t.Fatal(err)
	}
	return list
}

// archivesOf lists the project's archives in dir of one kind (a deliberate
// backup or apply's and restore's own), newest first.
func (h *opsHome) archivesOf(dir, kind string) []backup.Info {
	h.t.Helper()
	var out []backup.Info
	for _, info := range h.archives(dir) {
		m, err := backup.ReadManifest(info.Path)
		if err != nil {
			h.t.Fatal(err)
		}
		if backup.KindOf(m) == kind {
			out = append(out, info)
		}
	}
	return out
}

func opsFreePort(t *testing.T) int { return deploytest.FreePort(t) }

func opsCleanup(t *testing.T, cli *client.Client, project string) {
	deploytest.CleanupProject(t, cli, project)
}

type clientOpts struct {
	id     string
	clean  bool
	tls    *tls.Config
	onLost func(error)
	onMsg  mqtt.MessageHandler
}

func opsConnect(t *testing.T, port int, user, password string, o clientOpts) mqtt.Client {
	t.Helper()
	scheme := "tcp"
	if o.tls != nil {
		scheme = "ssl"
	}
	if o.id == "" {
		o.id = fmt.Sprintf("ops-%s-%d", user, time.Now().UnixNano())
	}
	opts := mqtt.NewClientOptions().AddBroker(fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)).
		SetClientID(o.id).SetUsername(user).SetPassword(password).SetCleanSession(o.clean).
		SetAutoReconnect(false).SetConnectTimeout(3 * time.Second).SetOrderMatters(false)
	if o.tls != nil {
		opts.SetTLSConfig(o.tls)
	}
	if o.onLost != nil {
		opts.SetConnectionLostHandler(func(_ mqtt.Client, err error) { o.onLost(err) })
	}
	if o.onMsg != nil {
		opts.SetDefaultPublishHandler(o.onMsg)
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s cannot log in on %d: %v", user, port, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func opsPublish(t *testing.T, c mqtt.Client, topic, payload string, retained bool) {
	t.Helper()
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// collector gathers the payloads a client receives.
type collector struct {
	mu  sync.Mutex
	got map[string]string
}

func newCollector() *collector { return &collector{got: map[string]string{}} }

func (c *collector) handler(_ mqtt.Client, m mqtt.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got[m.Topic()] = string(m.Payload())
}

// wait waits until every topic of want was received with its payload.
func (c *collector) wait(t *testing.T, what string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		var missing []string
		for k, v := range want {
			if c.got[k] != v {
				missing = append(missing, k)
			}
		}
		c.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d messages missing, e.g. %s", what, len(missing), len(want), missing[0])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func brokerID(t *testing.T, cli *client.Client, project string) (id, started string) {
	t.Helper()
	res, err := cli.ContainerInspect(context.Background(), engine.ContainerName(project, "broker"), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container.ID, res.Container.State.StartedAt
}

// TestOperations: backup while a client publishes, destroy the data,
// restore; corrupt archives refused; retention; certificate renewal;
// status.
func TestOperations(t *testing.T) {
	cli := deploytest.Engine(t)
	t.Setenv(workspace.StateEnv, "")
	t.Setenv(backup.PassphraseEnv, "")
	ctx := context.Background()
	tag := deploytest.MosquittoTag("ops-mosquitto")
	start := time.Now()
	if err := deploytest.MosquittoImage(ctx, cli, tag); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s in %s", tag, time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { deploytest.RemoveImage(context.Background(), cli, tag) })

	t.Run("BackupRestore", func(t *testing.T) { testBackupRestore(t, cli, tag) })
	t.Run("Certificates", func(t *testing.T) { testCertificates(t, cli, tag) })
	t.Run("LostStateDirectory", func(t *testing.T) { testLostState(t, cli, tag) })
}

const opsHomeText = `package home
broker: image: "IMAGE"
listeners: mqtt: port: PORT
users: {
	admin: acl: ["readwrite #"]
	phone: acl: ["read home/#"]
}
devices: sensor: publishes: ["temperature"]
backup: {dir: "backups", keep: 2}
deploy: project: "PROJECT"
`

func testBackupRestore(t *testing.T, cli *client.Client, tag string) {
	h := newOpsHome(t, cli, "backup", opsHomeText, "IMAGE", tag)
	backups := filepath.Join(h.dir, "backups")
	h.run(0, "Apply complete!", "apply", "--auto-approve")
	adminPW, phonePW := h.password("admin"), h.password("phone")

	// Retained messages, and QoS 1 messages queued for a persistent
	// session whose client is offline.
	admin := opsConnect(t, h.port, "admin", adminPW, clientOpts{clean: true})
	retained, queued := map[string]string{}, map[string]string{}
	phone := opsConnect(t, h.port, "phone", phonePW, clientOpts{id: "phone-1", clean: false})
	if tok := phone.Subscribe("home/queue/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	phone.Disconnect(100)
	for i := range 20 {
		topic, payload := fmt.Sprintf("home/retained/%d", i), fmt.Sprintf("state %d", i)
		opsPublish(t, admin, topic, payload, true)
		retained[topic] = payload
	}
	for i := range 30 {
		topic, payload := fmt.Sprintf("home/queue/%d", i), fmt.Sprintf("queued %d", i)
		opsPublish(t, admin, topic, payload, false)
		queued[topic] = payload
	}

	// A client keeps publishing QoS 1 during the backup: it is never
	// disconnected and every message is acknowledged.
	var lost atomic.Value
	pub := opsConnect(t, h.port, "admin", adminPW, clientOpts{clean: true, onLost: func(err error) { lost.Store(err) }})
	var sent, acked, during atomic.Int64
	var backingUp atomic.Bool
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			sent.Add(1)
			if backingUp.Load() {
				during.Add(1)
			}
			tok := pub.Publish(fmt.Sprintf("load/%d", i%10), 1, false, fmt.Sprintf("reading %d", i))
			if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
				acked.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	backingUp.Store(true)
	start := time.Now()
	out := h.run(0, "The broker wrote /mosquitto/data/mosquitto.db", "backup")
	took := time.Since(start)
	backingUp.Store(false)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	<-done
	t.Logf("backup took %s while the client published %d messages (%d in all, %d acknowledged):\n%s", took.Round(time.Millisecond), during.Load(), sent.Load(), acked.Load(), out)
	if err, _ := lost.Load().(error); err != nil || !pub.IsConnectionOpen() {
		t.Fatalf("the publishing client lost its connection during the backup: %v", err)
	}
	if during.Load() == 0 || acked.Load() != sent.Load() {
		t.Fatalf("published %d during the backup, %d of %d acknowledged", during.Load(), acked.Load(), sent.Load())
	}
	list := h.archives(backups)
	if len(list) != 1 {
		t.Fatalf("%d archives in %s, want 1", len(list), backups)
	}
	archive := list[0].Path
	a, err := backup.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Manifest.Broker.Flushed || a.File("data/mosquitto.db") == nil || a.File("config/passwd") == nil {
		t.Fatalf("manifest: %+v", a.Manifest)
	}
	if st, _ := os.Stat(archive); st.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v, want 0600", st.Mode().Perm())
	}
	for _, f := range a.Files {
		if bytes.Contains(f.Data, []byte("PRIVATE KEY")) || strings.Contains(f.Path, "passwords/") || bytes.Contains(f.Data, []byte(adminPW)) {
			t.Errorf("%s: a secret in an archive made without --with-secrets", f.Path)
		}
	}
	h.run(1, "needs a passphrase", "backup", "--with-secrets")
	admin.Disconnect(0)
	pub.Disconnect(0)

	// Corrupt archives are refused before anything is touched.
	testCorrupt(t, cli, h, archive, backups)
	testCancelledRestore(t, cli, h, archive, adminPW)

	// The data volume is destroyed with everything else.
	h.run(0, "Destroy complete!", "destroy", "--volumes", "--auto-approve")
	if o, err := deploy.Observe(context.Background(), cli, h.project, nil); err != nil || len(o.Volumes)+len(o.Containers) != 0 {
		t.Fatalf("after destroy --volumes: %v %+v", err, o)
	}

	// Restore creates the project again with the archive's data.
	start = time.Now()
	out = h.run(0, "Restore complete!", "restore", archive, "--auto-approve")
	t.Logf("restore took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	for _, want := range []string{`+ volume "` + h.project + `_data"`, `+ data "/mosquitto/data/mosquitto.db"`, "The broker accepts logins on every listener", "mqttgen plan: No changes"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q", want)
		}
	}

	// Every queued message reaches the persistent session, and every
	// retained message a new subscriber.
	queue := newCollector()
	opsConnect(t, h.port, "phone", phonePW, clientOpts{id: "phone-1", clean: false, onMsg: queue.handler})
	queue.wait(t, "queued messages after the restore", queued)
	ret := newCollector()
	reader := opsConnect(t, h.port, "admin", adminPW, clientOpts{clean: true})
	if tok := reader.Subscribe("home/retained/#", 1, ret.handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	ret.wait(t, "retained messages after the restore", retained)

	// Restoring over a running broker takes a backup of what it replaces
	// first; a new retained message is then gone, the archive's are back.
	opsPublish(t, reader, "home/retained/new", "after the backup", true)
	out = h.run(0, "Restore complete!", "restore", archive, "--auto-approve")
	// The broker is not asked to write its database before the question:
	// the data is compared with what it last wrote, and said so.
	if !strings.Contains(out, "What it replaced is in") || !strings.Contains(out, "data compared with the database the running broker last wrote") {
		t.Errorf("restore over a running broker:\n%s", out)
	}
	ret2 := newCollector()
	reader = opsConnect(t, h.port, "admin", adminPW, clientOpts{clean: true})
	if tok := reader.Subscribe("home/retained/#", 1, ret2.handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	ret2.wait(t, "retained messages after the second restore", retained)
	time.Sleep(200 * time.Millisecond)
	ret2.mu.Lock()
	if _, ok := ret2.got["home/retained/new"]; ok {
		t.Error("a message newer than the archive survived its restore")
	}
	ret2.mu.Unlock()

	// Retention: keep 2 deliberate archives of this project, the newest;
	// restore's own (automatic) archive is not counted and stays, as does
	// another project's archive in the folder.
	other := filepath.Join(backups, backup.Name(h.project+"-other", time.Now().Add(-time.Hour)))
	os.WriteFile(other, []byte("x"), 0o600)
	automatic := h.archivesOf(backups, backup.KindAutomatic)
	if len(automatic) != 1 {
		t.Fatalf("%d automatic archives after the restore over a running broker, want its safety backup", len(automatic))
	}
	for range 3 {
		h.run(0, "Wrote ", "backup")
	}
	list = h.archivesOf(backups, backup.KindManual)
	if len(list) != 2 {
		t.Fatalf("%d deliberate archives after 3 more backups, want backup.keep = 2", len(list))
	}
	if time.Since(list[1].Time) > time.Minute {
		t.Errorf("the archives kept are not the newest: %+v", list)
	}
	if got := h.archivesOf(backups, backup.KindAutomatic); len(got) != 1 || got[0].Path != automatic[0].Path {
		t.Errorf("deliberate backups removed restore's own archive: %+v", got)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another project's archive was removed: %v", err)
	}
	h.run(0, "Removed 2 older archives (keep 1)", "backup", "--keep", "1", "--dir", backups)
	if n := len(h.archivesOf(backups, backup.KindManual)); n != 1 {
		t.Errorf("--keep 1 left %d deliberate archives", n)
	}

	// An apply that replaces the broker takes a backup first, an automatic
	// one, which removes no deliberate archive.
	newPort := opsFreePort(t)
	text, _ := os.ReadFile(h.file)
	os.WriteFile(h.file, bytes.Replace(text, []byte(fmt.Sprintf("port: %d", h.port)), []byte(fmt.Sprintf("port: %d", newPort)), 1), 0o644)
	out = h.run(2, "a backup of its data and config is taken first", "plan", "--detailed-exitcode")
	out = h.run(0, "Backup written: ", "apply", "--auto-approve")
	if n := len(h.archivesOf(backups, backup.KindManual)); n != 1 {
		t.Fatalf("%d deliberate archives after the apply, want 1", n)
	}
	list = h.archivesOf(backups, backup.KindAutomatic)
	if len(list) != 2 {
		t.Fatalf("%d automatic archives after the apply, want 2 (restore's and apply's)", len(list))
	}
	if a, err := backup.Open(list[0].Path); err != nil || !strings.Contains(a.Manifest.Reason, "before replacing the broker") {
		t.Errorf("the newest archive is not apply's: %v %+v", err, a)
	}
	h.port = newPort

	// status: the running broker, no account may read $SYS here (and it
	// says so), the newest backup, no drift.
	out = h.run(0, "matches home.cue", "status")
	for _, want := range []string{"running", "no account may read $SYS/#", "last backup", "(1 manual or scheduled, keep 2; 2 automatic, keep 5)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
}

// testCorrupt: a truncated archive, one with a byte changed, one whose
// entry was altered and repacked, and one of another project are refused
// before anything changes: same container, same start, same data, no new
// archive.
func testCorrupt(t *testing.T, cli *client.Client, h *opsHome, archive, backups string) {
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.tar.gz")
	os.WriteFile(truncated, data[:len(data)*2/3], 0o600)
	// One bit flipped, somewhere that changes what the archive holds (a
	// flip in a back-reference into tar's zero padding may not).
	flipped := filepath.Join(dir, "flipped.tar.gz")
	orig := gunzipAll(data)
	var bad []byte
	for i := len(data) / 2; i < len(data); i++ {
		bad = bytes.Clone(data)
		bad[i] ^= 0x01
		if got := gunzipAll(bad); !bytes.Equal(got, orig) {
			break
		}
	}
	os.WriteFile(flipped, bad, 0o600)
	altered := filepath.Join(dir, "altered.tar.gz")
	os.WriteFile(altered, repackArchive(t, data, "data/mosquitto.db"), 0o600)
	// Entries a backup never writes, in a manifest rewritten to match: a
	// password for a device home.cue does not have yet, a 2 GiB entry (cut
	// short: it is refused from the manifest), a file beside its folder.
	planted := filepath.Join(dir, "planted.tar.gz")
	os.WriteFile(planted, backuptest.AddEntry(t, data, "state/passwords/future-device", []byte("chosen by whoever rewrote the archive"), 37), 0o600)
	huge := filepath.Join(dir, "huge.tar.gz")
	os.WriteFile(huge, backuptest.AddEntry(t, data, "data/huge", make([]byte, 1<<20), 2<<30), 0o600)
	beside := filepath.Join(dir, "beside.tar.gz")
	os.WriteFile(beside, backuptest.AddEntry(t, data, "config/passwd/x", []byte("x"), 1), 0o600)

	id, started := brokerID(t, cli, h.project)
	before, _, err := engine.ReadDir(context.Background(), cli, id, "/mosquitto/data")
	if err != nil {
		t.Fatal(err)
	}
	n := len(h.archives(backups))
	for _, c := range []struct{ file, want string }{
		{truncated, "truncated"},
		{flipped, "not a sound backup"},
		{altered, "data/mosquitto.db has SHA-256"},
		{planted, "entry state/passwords/future-device is not a file a backup writes in clear"},
		{huge, "entry data/huge has 2.0 GiB, more than the 256.0 MiB an archive entry may hold"},
		{beside, "entry config/passwd is a file and the folder of config/passwd/x"},
	} {
		out := h.run(1, "refusing to restore, nothing was changed", "restore", c.file, "--auto-approve")
		if !strings.Contains(out, c.want) {
			t.Errorf("restore %s: %q not in\n%s", filepath.Base(c.file), c.want, out)
		}
	}
	// Another project's archive.
	otherHome := filepath.Join(t.TempDir(), "home.cue")
	text, _ := os.ReadFile(h.file)
	os.WriteFile(otherHome, bytes.Replace(text, []byte(h.project), []byte(h.project+"-elsewhere"), 1), 0o644)
	code, out := mqttgen(t, "", "restore", archive, otherHome, "--auto-approve")
	if code != 1 || !strings.Contains(out, "is a backup of project") || !strings.Contains(out, "--force") {
		t.Errorf("an archive of another project: exit %d\n%s", code, out)
	}

	id2, started2 := brokerID(t, cli, h.project)
	after, _, err := engine.ReadDir(context.Background(), cli, id2, "/mosquitto/data")
	if err != nil {
		t.Fatal(err)
	}
	if id2 != id || started2 != started {
		t.Errorf("the broker was replaced or restarted by a refused restore")
	}
	if len(after) != len(before) || !bytes.Equal(after[0].Data, before[0].Data) {
		t.Errorf("the data volume changed")
	}
	if m := len(h.archives(backups)); m != n {
		t.Errorf("a refused restore wrote %d archives", m-n)
	}
	if _, err := os.Stat(filepath.Join(h.dir, ".mqttgen", "passwords", "future-device")); !os.IsNotExist(err) {
		t.Errorf("the planted password reached the state directory: %v", err)
	}
}

// repackArchive flips the last byte of one entry and packs a valid tar.gz
// again: only the manifest's digest tells.
func repackArchive(t *testing.T, data []byte, entry string) []byte {
	return backuptest.Repack(t, data, func(name string, body []byte) ([]byte, bool) {
		if name == entry {
			body[len(body)-1] ^= 0xff
		}
		return body, true
	})
}

const certHomeText = `package home
broker: {image: "IMAGE", hostname: "localhost"}
listeners: {
	mqtt: port: PORT
	mqtts: {port: TLSPORT, tls: true}
}
tls: server_names: ["127.0.0.1"]
users: {
	admin: acl: ["readwrite #"]
	monitor: acl: ["read $SYS/#"]
}
deploy: project: "PROJECT"
`

// testCertificates: a certificate that expires in 10 days is shown by
// plan, renewed by apply with SIGHUP; a client trusting the CA connects, a
// client connected before stays connected; a mismatched pair never reaches
// the broker; status reads $SYS as the account that may.
func testCertificates(t *testing.T, cli *client.Client, tag string) {
	tlsPort := opsFreePort(t)
	h := newOpsHome(t, cli, "certs", certHomeText, "IMAGE", tag, "TLSPORT", fmt.Sprint(tlsPort))
	h.run(0, "Apply complete!", "apply", "--auto-approve")
	certs := filepath.Join(h.dir, ".mqttgen", "certs")

	// The broker has served, for a year, a certificate that now expires in
	// 10 days: signed by the state's CA, in the state directory and in the
	// container.
	caPEM, _ := os.ReadFile(filepath.Join(certs, "ca.crt"))
	caKeyPEM, _ := os.ReadFile(filepath.Join(certs, "ca.key"))
	crt, key := issue(t, caPEM, caKeyPEM, time.Now().Add(-387*24*time.Hour), time.Now().Add(10*24*time.Hour), "localhost", "127.0.0.1")
	w, err := workspace.Open(h.file, "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := deploy.FromHome(w, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old := withBrokerFiles(d, map[string][]byte{"certs/server.crt": crt, "certs/server.key": key})
	applyDesired(t, cli, old)
	os.WriteFile(filepath.Join(certs, "server.key"), key, 0o600)
	os.WriteFile(filepath.Join(certs, "server.crt"), crt, 0o644)
	if got := servedNotAfter(t, tlsPort); time.Until(got) > 11*24*time.Hour {
		t.Fatalf("the broker serves a certificate valid until %s, not the 10-day one", got)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	trust := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	var lost atomic.Value
	msgs := newCollector()
	before := opsConnect(t, tlsPort, "admin", h.password("admin"), clientOpts{clean: true, tls: trust, onLost: func(err error) { lost.Store(err) }})
	if tok := before.Subscribe("home/#", 1, msgs.handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	out := h.run(2, "Plan: 0 to add, 1 to change, 0 to destroy.", "plan", "--detailed-exitcode")
	for _, want := range []string{"because certificate certs/server.crt expires on", "in 10 days, fewer than the 30 days", "~ file \"certs/server.crt\""} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	t.Logf("plan:\n%s", out)

	// A renewed certificate whose key is another's never reaches the
	// broker: apply refuses before it copies anything.
	w, _ = workspace.Open(h.file, "")
	renewed, err := deploy.FromHome(w, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey := issue(t, caPEM, caKeyPEM, time.Now(), time.Now().Add(300*24*time.Hour), "localhost")
	mismatched := withBrokerFiles(renewed, map[string][]byte{"certs/server.key": otherKey})
	if err := applyDesiredErr(t, cli, mismatched); err == nil || !strings.Contains(err.Error(), "refusing to deploy, nothing was changed") {
		t.Fatalf("apply of a mismatched pair: %v", err)
	}
	if got := servedNotAfter(t, tlsPort); time.Until(got) > 11*24*time.Hour {
		t.Fatal("the mismatched certificate reached the broker")
	}

	out = h.run(0, "Sending SIGHUP", "apply", "--auto-approve")
	if got := servedNotAfter(t, tlsPort); time.Until(got) < 390*24*time.Hour {
		t.Fatalf("after apply the broker serves a certificate valid until %s", got)
	}
	// A new client trusting the CA connects and checks the name.
	after := opsConnect(t, tlsPort, "admin", h.password("admin"), clientOpts{clean: true, tls: trust})
	opsPublish(t, after, "home/after", "renewed", false)
	msgs.wait(t, "the client connected before the renewal", map[string]string{"home/after": "renewed"})
	if err, _ := lost.Load().(error); err != nil || !before.IsConnectionOpen() {
		t.Fatalf("the client connected before the renewal lost its connection: %v", err)
	}
	h.run(0, "No changes.", "plan")

	// status reads $SYS as monitor, the one account that may, and sees the
	// two clients once the broker updated $SYS (every 10 s).
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, out := mqttgen(t, "", "status", "--json", h.file)
		var r struct {
			Engine struct{ Version string }
			Broker struct {
				State     string
				UptimeSec int64 `json:"uptime_seconds"`
			}
			Stats struct {
				User      string
				Error     string
				Connected *int64 `json:"clients_connected"`
			}
			Certificates []struct {
				File     string
				DaysLeft int `json:"days_left"`
			}
			Config struct{ Matches bool }
		}
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("status --json: exit %d\n%s", code, out)
		}
		if r.Engine.Version == "" || r.Broker.State != "running" || r.Stats.User != "monitor" || r.Stats.Error != "" || !r.Config.Matches || len(r.Certificates) != 2 {
			t.Fatalf("status --json:\n%s", out)
		}
		for _, c := range r.Certificates {
			if c.File == "certs/server.crt" && c.DaysLeft < 390 {
				t.Errorf("status: server certificate %d days left", c.DaysLeft)
			}
		}
		if r.Stats.Connected != nil && *r.Stats.Connected >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never saw the 2 clients connected:\n%s", out)
		}
		time.Sleep(time.Second)
	}
	out = h.run(0, "from $SYS as monitor", "status")
	t.Logf("status:\n%s", out)
}

// issue makes a server certificate and key signed by the CA.
func issue(t *testing.T, caPEM, caKeyPEM []byte, notBefore, notAfter time.Time, names ...string) (crt, key []byte) {
	t.Helper()
	cb, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(caKeyPEM)
	caKey, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// withBrokerFiles returns a copy of d whose broker has the given files.
func withBrokerFiles(d *deploy.Desired, files map[string][]byte) *deploy.Desired {
	c := *d
	c.Services = append([]deploy.Service(nil), d.Services...)
	for i, s := range c.Services {
		if s.Name != "broker" {
			continue
		}
		fs := append(s.Files[:0:0], s.Files...)
		for j := range fs {
			if data, ok := files[fs[j].Path]; ok {
				fs[j].Data = data
			}
		}
		c.Services[i].Files = fs
	}
	return &c
}

func applyDesiredErr(t *testing.T, cli *client.Client, d *deploy.Desired) error {
	t.Helper()
	ctx := context.Background()
	o, err := deploy.Observe(ctx, cli, d.Project, d)
	if err != nil {
		t.Fatal(err)
	}
	return deploy.Apply(ctx, cli, d, o, deploy.Reconcile(d, o), deploy.Options{ReadyTimeout: 15 * time.Second})
}

func applyDesired(t *testing.T, cli *client.Client, d *deploy.Desired) {
	t.Helper()
	if err := applyDesiredErr(t, cli, d); err != nil {
		t.Fatal(err)
	}
}

func servedNotAfter(t *testing.T, port int) time.Time {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].NotAfter
}

const secretHomeText = `package home
broker: {image: "IMAGE", hostname: "localhost"}
listeners: {
	mqtt: port: PORT
	mqtts: {port: TLSPORT, tls: true}
}
tls: server_names: ["localhost"]
users: admin: acl: ["readwrite #"]
bridges: cloud: {
	address: "127.0.0.1:9"
	username: "home"
	password: env: "MQTTGEN_TEST_BRIDGE_PASSWORD"
	topics: [{pattern: "cloud/#", direction: "out"}]
}
deploy: project: "PROJECT"
`

// testLostState: a backup --with-secrets holds keys and passwords only
// encrypted; after the volumes and the whole state directory are lost,
// restore without the passphrase is refused (the server key is nowhere),
// and with it brings back the data, the config, the passwords and the CA:
// clients log in with their old passwords, trust the old CA, and plan has
// nothing to change.
func testLostState(t *testing.T, cli *client.Client, tag string) {
	const bridgePW, passphrase = "bridge-secret-4242", "correct horse battery staple"
	t.Setenv("MQTTGEN_TEST_BRIDGE_PASSWORD", bridgePW)
	tlsPort := opsFreePort(t)
	h := newOpsHome(t, cli, "lost", secretHomeText, "IMAGE", tag, "TLSPORT", fmt.Sprint(tlsPort))
	h.run(0, "Apply complete!", "apply", "--auto-approve")
	state := filepath.Join(h.dir, ".mqttgen")
	adminPW := h.password("admin")
	caPEM, _ := os.ReadFile(filepath.Join(state, "certs", "ca.crt"))
	admin := opsConnect(t, h.port, "admin", adminPW, clientOpts{clean: true})
	opsPublish(t, admin, "home/kept", "across the disaster", true)
	admin.Disconnect(0)

	passFile := filepath.Join(t.TempDir(), "passphrase")
	os.WriteFile(passFile, []byte(passphrase+"\n"), 0o600)
	out := h.run(0, "are in secrets.enc, encrypted with AES-256-GCM", "backup", "--with-secrets", "--passphrase-file", passFile)
	list := h.archives(filepath.Join(state, "backups"))
	if len(list) != 1 {
		t.Fatalf("%d archives in the state directory's backups/, want 1:\n%s", len(list), out)
	}
	archive := filepath.Join(t.TempDir(), filepath.Base(list[0].Path))
	data, _ := os.ReadFile(list[0].Path)
	os.WriteFile(archive, data, 0o600)
	zr, _ := gzip.NewReader(bytes.NewReader(data))
	raw, _ := io.ReadAll(zr)
	for _, secret := range []string{adminPW, bridgePW, "PRIVATE KEY"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("the archive holds %q in plain text", secret)
		}
	}

	h.run(0, "Destroy complete!", "destroy", "--volumes", "--auto-approve")
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	out = h.run(1, "refusing to restore, nothing was changed", "restore", archive, "--auto-approve")
	t.Logf("restore without the passphrase:\n%s", out)
	if !strings.Contains(out, "certs/server.key") || !strings.Contains(out, "give the archive's passphrase") {
		t.Errorf("restore without the passphrase:\n%s", out)
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("a refused restore wrote the state directory")
	}

	out = h.run(0, "Restore complete!", "restore", archive, "--auto-approve", "--passphrase-file", passFile)
	t.Logf("restore:\n%s", out)
	if pw, err := os.ReadFile(filepath.Join(state, "passwords", "admin")); err != nil || strings.TrimSpace(string(pw)) != adminPW {
		t.Errorf("the admin password was not restored into the state directory: %v", err)
	}
	if ca, _ := os.ReadFile(filepath.Join(state, "certs", "ca.crt")); !bytes.Equal(ca, caPEM) {
		t.Error("the CA was not restored")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	got := newCollector()
	c := opsConnect(t, tlsPort, "admin", adminPW, clientOpts{clean: true, tls: &tls.Config{RootCAs: pool, ServerName: "localhost"}})
	if tok := c.Subscribe("home/#", 1, got.handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	got.wait(t, "the retained message after losing everything", map[string]string{"home/kept": "across the disaster"})
	h.run(0, "No changes.", "plan")
}

// gunzipAll is the content of a gzip stream, nil when it does not read to
// its end.
func gunzipAll(data []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil
	}
	return out
}

// testCancelledRestore: a restore answered "no" signals nothing. It asked
// the broker to write its database (SIGUSR1) before the question, so a
// message received since the last write was in the database afterwards.
func testCancelledRestore(t *testing.T, cli *client.Client, h *opsHome, archive, adminPW string) {
	admin := opsConnect(t, h.port, "admin", adminPW, clientOpts{clean: true})
	opsPublish(t, admin, "home/after-the-backup", "only in memory", true)
	admin.Disconnect(0)
	id, started := brokerID(t, cli, h.project)
	before, _, err := engine.ReadDir(context.Background(), cli, id, "/mosquitto/data")
	if err != nil {
		t.Fatal(err)
	}
	out := h.run(1, "Restore cancelled.", "restore", archive)
	if !strings.Contains(out, "data compared with the database the running broker last wrote") {
		t.Errorf("restore does not say what it compared the data with:\n%s", out)
	}
	after, _, err := engine.ReadDir(context.Background(), cli, id, "/mosquitto/data")
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || len(before) == 0 {
		t.Fatalf("data files %d -> %d", len(before), len(after))
	}
	for i := range before {
		if !bytes.Equal(before[i].Data, after[i].Data) || !before[i].ModTime.Equal(after[i].ModTime) {
			t.Errorf("%s was written by a cancelled restore (%s -> %s)", before[i].Path, before[i].ModTime, after[i].ModTime)
		}
	}
	if id2, started2 := brokerID(t, cli, h.project); id2 != id || started2 != started {
		t.Error("a cancelled restore restarted the broker")
	}
}
