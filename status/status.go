// Package status tells what runs for a home: the Docker engine, the
// broker's container, its clients and message rates as its $SYS tree reports
// them, the certificates it serves, the last backup, and whether what runs
// is what home.cue asks for (deploy's plan).
package status

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/moby/moby/client"

	"github.com/mqttgen/mqttgen/backup"
	"github.com/mqttgen/mqttgen/deploy"
	"github.com/mqttgen/mqttgen/engine"
	"github.com/mqttgen/mqttgen/generators"
	"github.com/mqttgen/mqttgen/internal/human"
	"github.com/mqttgen/mqttgen/mosquitto/acl"
	"github.com/mqttgen/mqttgen/pki"
	"github.com/mqttgen/mqttgen/workspace"
)

// Report is the status of one home's deployment.
type Report struct {
	// State is one of the State constants, Exit the exit code of mqttgen
	// status that goes with it (the Exit constants), Summary one line
	// saying it.
	State   string    `json:"state"`
	Exit    int       `json:"exit_code"`
	Summary string    `json:"summary"`
	Project string    `json:"project"`
	Home    string    `json:"home"`
	Time    time.Time `json:"time"`
	Engine  *Engine   `json:"engine,omitempty"`
	Broker  *Broker   `json:"broker,omitempty"`
	// Stats are read from the broker's $SYS tree.
	Stats        *Stats        `json:"stats,omitempty"`
	Certificates []Certificate `json:"certificates,omitempty"`
	Backup       Backup        `json:"backup"`
	// Verified is when mqttgen verify --live last passed against the
	// project; nil when it never did.
	Verified *Verified `json:"verified,omitempty"`
	Config   Config    `json:"config"`
}

// Verified is the last passing run of verify --live. Current says whether
// it was against the broker's current container (it started before the
// run), not an earlier deployment.
type Verified struct {
	workspace.Verified
	Current bool `json:"current"`
}

// Engine is the Docker engine.
type Engine struct {
	Host       string `json:"host"`
	Version    string `json:"version,omitempty"`
	APIVersion string `json:"api_version,omitempty"`
	Platform   string `json:"platform,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Broker is the broker's container.
type Broker struct {
	Container    string    `json:"container"`
	ID           string    `json:"id,omitempty"`
	Exists       bool      `json:"exists"`
	State        string    `json:"state,omitempty"`
	Health       string    `json:"health,omitempty"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	UptimeSec    int64     `json:"uptime_seconds,omitempty"`
	RestartCount int       `json:"restart_count"`
	Image        string    `json:"image,omitempty"`
	ImageID      string    `json:"image_id,omitempty"`
	// WantImage is the image home.cue asks for.
	WantImage string   `json:"want_image,omitempty"`
	Ports     []string `json:"ports,omitempty"`
	// AccessControl says, when the deployed acl or passwd does not parse,
	// what the broker does about it; "" when both parse.
	AccessControl string `json:"access_control_error,omitempty"`
}

// Stats are the broker's figures from $SYS, as of its last $SYS update
// (sys_interval, 10 s by default).
type Stats struct {
	// User is the account status read $SYS as, URL the listener.
	User string `json:"user,omitempty"`
	URL  string `json:"url,omitempty"`
	// Error explains why there are no figures.
	Error   string `json:"error,omitempty"`
	Version string `json:"version,omitempty"`
	Uptime  string `json:"uptime,omitempty"`
	// AsOf is when the broker published these values: its start plus the
	// uptime it reported (it updates $SYS every sys_interval, 10 s by
	// default, and only the values that changed).
	AsOf             time.Time `json:"as_of,omitzero"`
	Connected        *int64    `json:"clients_connected,omitempty"`
	Disconnected     *int64    `json:"clients_disconnected,omitempty"`
	ReceivedPerMin   *float64  `json:"messages_received_per_min,omitempty"`
	SentPerMin       *float64  `json:"messages_sent_per_min,omitempty"`
	Retained         *int64    `json:"retained_messages,omitempty"`
	Subscriptions    *int64    `json:"subscriptions,omitempty"`
	MessagesReceived *int64    `json:"messages_received,omitempty"`
	MessagesSent     *int64    `json:"messages_sent,omitempty"`
	// Stored is what the broker holds for clients and bridges that are
	// not connected, and retained messages ($SYS/broker/store/messages/count).
	Stored *int64 `json:"stored_messages,omitempty"`
	// Bridges maps each bridge's client id (Options.Bridges) to
	// "connected", "disconnected" or "never connected".
	Bridges map[string]string `json:"bridges,omitempty"`
}

// Certificate is one certificate the broker serves (or would).
type Certificate struct {
	File     string    `json:"file"`
	Subject  string    `json:"subject"`
	Names    []string  `json:"names,omitempty"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	Note     string    `json:"note,omitempty"`
}

// Backup is the newest archive of the project.
type Backup struct {
	Dir  string `json:"dir"`
	Keep int    `json:"keep"`
	// Count is every archive of the project; Manual (by hand or on
	// backup.schedule, kept by Keep) and Automatic (apply's and restore's,
	// kept by KeepAutomatic) are its two kinds, each with its own
	// retention.
	Count         int       `json:"count"`
	Manual        int       `json:"manual"`
	Automatic     int       `json:"automatic"`
	KeepAutomatic int       `json:"keep_automatic"`
	Newest        string    `json:"newest,omitempty"`
	Time          time.Time `json:"time,omitzero"`
	AgeSec        int64     `json:"age_seconds,omitempty"`
	Error         string    `json:"error,omitempty"`
}

// Config says whether what runs is what home.cue asks for.
type Config struct {
	Matches bool     `json:"matches"`
	Add     int      `json:"add"`
	Change  int      `json:"change"`
	Destroy int      `json:"destroy"`
	Ops     []string `json:"ops,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Options tune Gather.
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Timeout bounds the $SYS read (default 3s).
	Timeout time.Duration
	// Host is where the broker's published ports are reached; "" asks the
	// engine (a site's is its hostname).
	Host string
	// Bridges are the client ids of bridges whose connection state
	// ($SYS/broker/connection/<id>/state) the report shows.
	Bridges []string
}

// Gather builds the report. cli may be nil when no engine answers (connErr
// says why); the report then holds what can be known without one.
func Gather(ctx context.Context, cli *client.Client, connErr error, h *workspace.Home, opts Options) *Report {
	r := gather(ctx, cli, connErr, h, opts)
	r.verdict()
	return r
}

func gather(ctx context.Context, cli *client.Client, connErr error, h *workspace.Home, opts Options) *Report {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout == 0 {
		opts.Timeout = 3 * time.Second
	}
	now := opts.Now()
	r := &Report{Project: h.Config.Deploy.Project, Home: h.Dir, Time: now.UTC()}
	r.Backup = lastBackup(h, now)
	if v, ok, err := h.LastVerified(); err == nil && ok {
		r.Verified = &Verified{Verified: v}
	}

	d, derr := deploy.FromHome(h, now)
	if derr != nil {
		r.Config.Error = derr.Error()
	}
	if cli == nil {
		r.Engine = &Engine{Host: engineHost(nil), Error: fmt.Sprint(connErr)}
		if d != nil {
			r.Certificates = certificates(brokerFiles(d, nil), now, nil, false)
		}
		return r
	}
	r.Engine = engineInfo(ctx, cli)
	o, err := deploy.Observe(ctx, cli, r.Project, d)
	if err != nil {
		r.Engine.Error = err.Error()
		return r
	}
	var cur *deploy.Container
	for i, c := range o.Containers {
		if c.Service == generators.BrokerService && (cur == nil || c.Name == engine.ContainerName(r.Project, c.Service)) {
			cur = &o.Containers[i]
		}
	}
	r.Broker = brokerInfo(ctx, cli, r.Project, cur, d, now)
	if v := r.Verified; v != nil && r.Broker.Exists {
		v.Current = !r.Broker.StartedAt.IsZero() && v.PassedAt.After(r.Broker.StartedAt)
	}
	r.Broker.AccessControl = accessControl(cur)
	r.Certificates = certificates(brokerFiles(d, cur), now, cur, true)
	if cur != nil && cur.State == "running" {
		r.Stats = readStats(cli, h, cur, opts)
		if sec := parseInt(r.Stats.Uptime); sec != nil && !r.Broker.StartedAt.IsZero() {
			r.Stats.AsOf = r.Broker.StartedAt.Add(time.Duration(*sec) * time.Second)
		}
	}
	if d != nil {
		p := deploy.Reconcile(d, o)
		r.Config.Add, r.Config.Change, r.Config.Destroy = p.Summary()
		r.Config.Matches = p.Empty()

		for _, op := range p.Ops {
			line := fmt.Sprintf("%s %s %q", op.Action.Symbol(), op.Kind, op.Name)
			if len(op.Reasons) > 0 {
				line += ": " + op.Reasons[0]
			}
			r.Config.Ops = append(r.Config.Ops, line)
		}
	}
	return r
}

func engineHost(cli *client.Client) string {
	if cli != nil {
		return cli.DaemonHost()
	}
	if h := os.Getenv(client.EnvOverrideHost); h != "" {
		return h
	}
	return client.DefaultDockerHost
}

func engineInfo(ctx context.Context, cli *client.Client) *Engine {
	e := &Engine{Host: engineHost(cli)}
	v, err := cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		e.Error = err.Error()
		return e
	}
	e.Version, e.APIVersion = v.Version, cli.ClientVersion()
	e.Platform = strings.TrimSpace(v.Platform.Name + " " + v.Os + "/" + v.Arch)
	return e
}

func brokerInfo(ctx context.Context, cli *client.Client, project string, cur *deploy.Container, d *deploy.Desired, now time.Time) *Broker {
	b := &Broker{Container: engine.ContainerName(project, generators.BrokerService)}
	if d != nil {
		if s := d.Service(generators.BrokerService); s != nil {
			b.WantImage = s.Spec.Image
		}
	}
	if cur == nil {
		return b
	}
	b.Exists, b.Container, b.ID, b.State, b.Image, b.ImageID = true, cur.Name, cur.ID, cur.State, cur.Image, cur.ImageID
	if cur.Spec != nil {
		b.Image = cur.Spec.Image
		for _, p := range cur.Spec.Ports {
			b.Ports = append(b.Ports, p.String())
		}
	}
	res, err := cli.ContainerInspect(ctx, cur.ID, client.ContainerInspectOptions{})
	if err != nil {
		return b
	}
	c := res.Container
	b.RestartCount = c.RestartCount
	if st := c.State; st != nil {
		b.State = string(st.Status)
		if st.Health != nil {
			b.Health = string(st.Health.Status)
		}
		if t, err := time.Parse(time.RFC3339Nano, st.StartedAt); err == nil && st.Running {
			b.StartedAt = t.UTC()
			b.UptimeSec = int64(now.Sub(t).Seconds())
		}
	}
	return b
}

// brokerFiles are the broker's deployed files, or those home.cue renders
// when none are deployed.
func brokerFiles(d *deploy.Desired, cur *deploy.Container) []generators.File {
	if cur != nil && len(cur.Files) > 0 {
		return cur.Files
	}
	if d != nil {
		if s := d.Service(generators.BrokerService); s != nil {
			return s.Files
		}
	}
	return nil
}

func certificates(files []generators.File, now time.Time, cur *deploy.Container, engineAsked bool) []Certificate {
	var out []Certificate
	for _, f := range files {
		if !strings.HasPrefix(f.Path, "certs/") || !strings.HasSuffix(f.Path, ".crt") || len(f.Data) == 0 {
			continue
		}
		c, err := pki.ParseCert(f.Data)
		if err != nil {
			out = append(out, Certificate{File: f.Path, Note: "does not parse: " + err.Error()})
			continue
		}
		ct := Certificate{File: f.Path, Subject: c.Subject.String(), NotAfter: c.NotAfter.UTC(), DaysLeft: int(c.NotAfter.Sub(now).Hours() / 24)}
		ct.Names = append(ct.Names, c.DNSNames...)
		for _, ip := range c.IPAddresses {
			ct.Names = append(ct.Names, ip.String())
		}
		switch left := c.NotAfter.Sub(now); {
		case left <= 0:
			ct.Note = "EXPIRED: mqttgen apply renews it"
		case left < pki.RenewBefore:
			ct.Note = fmt.Sprintf("fewer than %d days left: mqttgen apply renews it", int(pki.RenewBefore.Hours()/24))
		}
		switch {
		case !engineAsked:
			ct.Note = strings.TrimSpace("what home.cue renders; whether it is deployed is unknown (the engine cannot be asked); " + ct.Note)
		case cur == nil:
			ct.Note = strings.TrimSpace("not deployed; " + ct.Note)
		}
		out = append(out, ct)
	}
	return out
}

func lastBackup(h *workspace.Home, now time.Time) Backup {
	dir, keep := h.BackupLocation()
	b := Backup{Dir: dir, Keep: keep, KeepAutomatic: backup.AutomaticKeep}
	list, err := backup.List(dir, h.Config.Deploy.Project)
	if err != nil {
		b.Error = err.Error()
		return b
	}
	b.Count = len(list)
	for _, info := range list {
		// As retention counts them: an unreadable manifest is deliberate.
		if m, err := backup.ReadManifest(info.Path); err == nil && backup.KindOf(m) == backup.KindAutomatic {
			b.Automatic++
		} else {
			b.Manual++
		}
	}
	if len(list) > 0 {
		b.Newest, b.Time = list[0].Path, list[0].Time
		b.AgeSec = int64(now.Sub(list[0].Time).Seconds())
	}
	return b
}

// sysReader picks the account that reads $SYS: monitoring.prometheus.user
// when it exists and may, else the first account whose rules grant reading
// $SYS/#, as the deployed acl says.
func sysReader(h *workspace.Home, files []generators.File) (user, password, why string) {
	cfg := h.Config
	var aclData []byte
	for _, f := range files {
		if f.Path == "acl" {
			aclData = f.Data
		}
	}
	af, err := acl.Parse(bytes.NewReader(aclData))
	if err != nil {
		return "", "", "the deployed acl does not parse: " + err.Error()
	}
	mayRead := func(name string) bool {
		for _, topic := range []string{"$SYS/broker/clients/connected", "$SYS/broker/load/messages/received/1min"} {
			if !af.Check(acl.Client{Username: name, ClientID: "mqttgen-status"}, topic, acl.Read) {
				return false
			}
		}
		return true
	}
	var candidates []string
	if pr := cfg.Monitoring.Prometheus; pr.User != "" {
		if _, ok := cfg.Users[pr.User]; ok {
			candidates = append(candidates, pr.User)
		}
	}
	for _, a := range cfg.Accounts() {
		candidates = append(candidates, a.Name)
	}
	for _, name := range candidates {
		if !mayRead(name) {
			continue
		}
		pw, err := h.AccountPassword(name)
		if errors.Is(err, workspace.ErrUnknownPassword) {
			continue // an imported hash: try the next account
		}
		if err != nil {
			return "", "", fmt.Sprintf("%s may read $SYS, but its password: %v", name, err)
		}
		return name, pw, ""
	}
	return "", "", `no account may read $SYS/#, so clients and message rates cannot be read: add users: monitor: acl: ["read $SYS/#"] (or monitoring.prometheus and its user) to home.cue, then mqttgen apply`
}

// sysTopics are the $SYS figures status reads.
var sysTopics = []string{
	"$SYS/broker/version", "$SYS/broker/uptime",
	"$SYS/broker/clients/connected", "$SYS/broker/clients/disconnected",
	"$SYS/broker/load/messages/received/1min", "$SYS/broker/load/messages/sent/1min",
	"$SYS/broker/retained messages/count", "$SYS/broker/subscriptions/count",
	"$SYS/broker/messages/received", "$SYS/broker/messages/sent",
}

// readStats logs in as the $SYS reader and collects the retained $SYS
// values the broker published at its last update.
func readStats(cli *client.Client, h *workspace.Home, cur *deploy.Container, o Options) *Stats {
	timeout := o.Timeout
	st := &Stats{}
	user, pw, why := sysReader(h, cur.Files)
	if user == "" {
		st.Error = why
		return st
	}
	st.User = user
	var target *deploy.ProbeTarget
	for _, t := range deploy.ProbeTargets(cur.Files, cur.Spec) {
		if t.ClientCert {
			continue
		}
		if target == nil || (target.TLS || target.Websockets) && !t.TLS && !t.Websockets {
			t := t
			target = &t
		}
	}
	if target == nil {
		st.Error = "no published listener this host can log in on (a listener that requires client certificates cannot be used)"
		return st
	}
	host := o.Host
	if host == "" {
		host = engine.PublishHost(cli)
	}
	if target.HostIP != "" && target.HostIP != "0.0.0.0" && target.HostIP != "::" {
		host = target.HostIP
	}
	scheme := map[[2]bool]string{{false, false}: "tcp", {true, false}: "ssl", {false, true}: "ws", {true, true}: "wss"}[[2]bool{target.TLS, target.Websockets}]
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(target.Port))
	if target.Websockets {
		url += "/mqtt"
	}
	st.URL = url
	id := make([]byte, 6)
	rand.Read(id)
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID("mqttgen-status-" + hex.EncodeToString(id)).
		SetUsername(user).SetPassword(pw).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(timeout)
	if target.TLS {
		opts.SetTLSConfig(tlsConfig(h, cur.Files))
	}
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(timeout) || tok.Error() != nil {
		st.Error = fmt.Sprintf("cannot log in as %s on %s: %v", user, url, tokErr(tok.Error()))
		return st
	}
	defer c.Disconnect(50)
	var mu sync.Mutex
	got := map[string]string{}
	all := make(chan struct{})
	filters := map[string]byte{}
	for _, t := range sysTopics {
		filters[t] = 0
	}
	// Retained, so there at once when they exist: read beside the others.
	extra := map[string]string{}
	filters[storedTopic] = 0
	for _, id := range o.Bridges {
		filters[bridgeTopic(id)] = 0
	}
	tok := c.SubscribeMultiple(filters, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(sysTopics, m.Topic()) {
			extra[m.Topic()] = string(m.Payload())
			return
		}
		got[m.Topic()] = string(m.Payload())
		if len(got) == len(sysTopics) {
			select {
			case <-all:
			default:
				close(all)
			}
		}
	})
	if !tok.WaitTimeout(timeout) || tok.Error() != nil {
		st.Error = fmt.Sprintf("subscribe to $SYS: %v", tokErr(tok.Error()))
		return st
	}
	select {
	case <-all:
	case <-time.After(timeout):
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		st.Error = fmt.Sprintf("the broker sent no $SYS values to %s within %s (sys_interval 0 turns them off)", user, timeout)
		return st
	}
	st.Version, st.Uptime = got["$SYS/broker/version"], got["$SYS/broker/uptime"]
	st.Connected = parseInt(got["$SYS/broker/clients/connected"])
	st.Disconnected = parseInt(got["$SYS/broker/clients/disconnected"])
	st.ReceivedPerMin = parseFloat(got["$SYS/broker/load/messages/received/1min"])
	st.SentPerMin = parseFloat(got["$SYS/broker/load/messages/sent/1min"])
	st.Retained = parseInt(got["$SYS/broker/retained messages/count"])
	st.Subscriptions = parseInt(got["$SYS/broker/subscriptions/count"])
	st.MessagesReceived = parseInt(got["$SYS/broker/messages/received"])
	st.MessagesSent = parseInt(got["$SYS/broker/messages/sent"])
	st.Stored = parseInt(extra[storedTopic])
	if len(o.Bridges) > 0 {
		st.Bridges = map[string]string{}
		for _, id := range o.Bridges {
			switch extra[bridgeTopic(id)] {
			case "1":
				st.Bridges[id] = "connected"
			case "0":
				st.Bridges[id] = "disconnected"
			default:
				st.Bridges[id] = "never connected"
			}
		}
	}
	return st
}

// storedTopic counts what a broker holds: queued messages of clients and
// bridges that are not connected, and retained ones.
const storedTopic = "$SYS/broker/store/messages/count"

// bridgeTopic is where a bridge's connection state is kept (retained), on
// both of its ends: Mosquitto's notification topic, which the bundled
// broker keeps too.
func bridgeTopic(clientID string) string { return "$SYS/broker/connection/" + clientID + "/state" }

func tokErr(err error) error {
	if err == nil {
		return fmt.Errorf("no answer")
	}
	return err
}

// tlsConfig trusts the deployed CA and checks the broker's name.
func tlsConfig(h *workspace.Home, files []generators.File) *tls.Config {
	pool := x509.NewCertPool()
	for _, f := range files {
		if f.Path == "certs/ca.crt" {
			pool.AppendCertsFromPEM(f.Data)
		}
	}
	return &tls.Config{RootCAs: pool, ServerName: h.Config.Broker.Hostname, MinVersion: tls.VersionTLS12}
}

func parseInt(s string) *int64 {
	n, err := strconv.ParseInt(strings.Fields(s + " x")[0], 10, 64)
	if err != nil || s == "" {
		return nil
	}
	return &n
}

func parseFloat(s string) *float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return nil
	}
	return &f
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-13s %s\n", label, fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(&b, "Project %q (home %s), %s\n\n", r.Project, r.Home, r.Time.Format("2006-01-02 15:04:05 UTC"))
	if r.Summary != "" {
		line("status", "%s (exit %d)", r.Summary, r.Exit)
	}
	if e := r.Engine; e != nil {
		if e.Version != "" {
			line("engine", "Docker %s (API %s, %s) at %s", e.Version, e.APIVersion, e.Platform, e.Host)
		}
		if e.Error != "" {
			line("engine", "%s: %s", e.Host, e.Error)
		}
	}
	if r.Broker == nil && r.State == StateUnknown {
		line("broker", "unknown: the Docker engine cannot be asked")
	}
	if br := r.Broker; br != nil {
		if br.AccessControl != "" {
			line("ACCESS", "!!! %s", br.AccessControl)
		}
		switch {
		case !br.Exists:
			line("broker", "%s does not exist (mqttgen apply creates it)", br.Container)
		default:
			state := br.State
			if br.Health != "" {
				state += " (" + br.Health + ")"
			}
			if br.State == "running" {
				state += ", up " + human.Duration(time.Duration(br.UptimeSec)*time.Second)
			}
			line("broker", "%s: %s, %d restarts", br.Container, state, br.RestartCount)
			img := fmt.Sprintf("%s (%s)", br.Image, engine.ShortID(br.ImageID))
			if br.WantImage != "" && br.WantImage != br.Image {
				img += ", home.cue asks for " + br.WantImage
			}
			line("image", "%s", img)
			if len(br.Ports) > 0 {
				line("ports", "%s", strings.Join(br.Ports, ", "))
			}
		}
	}
	if st := r.Stats; st != nil {
		if st.Error != "" {
			line("clients", "unknown: %s", st.Error)
		} else {
			line("clients", "%s connected, %s disconnected with a persistent session", intOr(st.Connected), intOr(st.Disconnected))
			line("messages", "%s received/min, %s sent/min (1-minute averages); %s retained, %s subscriptions",
				floatOr(st.ReceivedPerMin), floatOr(st.SentPerMin), intOr(st.Retained), intOr(st.Subscriptions))
			asOf := "as of the broker's last $SYS update"
			if !st.AsOf.IsZero() {
				asOf = fmt.Sprintf("as the broker published them %s ago (it updates $SYS every 10 s)", human.Duration(max(0, r.Time.Sub(st.AsOf))))
			}
			line("", "from $SYS as %s on %s (%s), %s", st.User, st.URL, st.Version, asOf)
			if st.Stored != nil {
				line("held", "%d messages (queued for disconnected clients and bridges, and retained)", *st.Stored)
			}
			for _, id := range slices.Sorted(maps.Keys(st.Bridges)) {
				line("bridge", "%s: %s", id, st.Bridges[id])
			}
		}
	}
	for i, c := range r.Certificates {
		label := ""
		if i == 0 {
			label = "certificates"
		}
		text := fmt.Sprintf("%s %q valid until %s (%d days)", c.File, c.Subject, c.NotAfter.Format("2006-01-02"), c.DaysLeft)
		if c.Note != "" {
			text += ": " + c.Note
		}
		line(label, "%s", text)
	}
	bk := r.Backup
	switch {
	case bk.Error != "":
		line("last backup", "%s: %s", bk.Dir, bk.Error)
	case bk.Count == 0:
		line("last backup", "none in %s (mqttgen backup makes one)", bk.Dir)
	default:
		line("last backup", "%s ago: %s (%d manual or scheduled, keep %d; %d automatic, keep %d)", human.Duration(time.Duration(bk.AgeSec)*time.Second), bk.Newest, bk.Manual, bk.Keep, bk.Automatic, bk.KeepAutomatic)
	}
	if v := r.Verified; v != nil {
		text := fmt.Sprintf("verify --live passed %s ago (%d checks, %d not sent live) on %s", human.Duration(max(0, r.Time.Sub(v.PassedAt))), v.Checks, v.Skipped, v.Host)
		if r.Broker != nil && r.Broker.Exists && !v.Current {
			text += ", before the current broker started: run it again"
		}
		line("verified", "%s", text)
	} else {
		line("verified", "never (mqttgen verify --live proves the expectations on the deployed broker)")
	}
	cf := r.Config
	switch {
	case cf.Error != "":
		line("config", "cannot be compared: %s", cf.Error)
	case r.Broker == nil:
	case cf.Matches:
		line("config", "matches home.cue (mqttgen plan: No changes.)")
	default:
		line("config", "differs from home.cue: %d to add, %d to change, %d to destroy (mqttgen plan shows how)", cf.Add, cf.Change, cf.Destroy)
		for _, op := range cf.Ops {
			line("", "%s", op)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func intOr(p *int64) string {
	if p == nil {
		return "?"
	}
	return strconv.FormatInt(*p, 10)
}

func floatOr(p *float64) string {
	if p == nil {
		return "?"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64)
}
