package broker

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttgen/mqttgen/internal/atomicfile"
	"github.com/mqttgen/mqttgen/mosquitto/conf"
)

// storeFile is the database in persistence_location. It is not Mosquitto's
// database, whose format is Mosquitto's own: switching engines starts with
// an empty database.
var storeFile = conf.Database(conf.Bundled)

func storePath(dir string) string { return filepath.Join(dir, storeFile) }

// storeVersion is the format of the database; a file of another version is
// refused rather than misread.
const storeVersion = 1

// store persists what Mosquitto's persistence keeps — retained messages,
// persistent sessions with their subscriptions, and their queued and
// in-flight QoS 1 and 2 messages — as one snapshot written atomically
// (temporary file, fsync, rename) every autosave_interval, on SIGUSR1 and
// at shutdown, as Mosquitto writes mosquitto.db. A crash loses what came
// after the last snapshot, as with Mosquitto; a torn write never replaces
// a good snapshot.
type store struct {
	b    *Broker
	path string
	mu   sync.Mutex // one save at a time
}

type snapshot struct {
	Version  int             `json:"version"`
	Saved    time.Time       `json:"saved"`
	Engine   string          `json:"engine"`
	Seq      int64           `json:"seq"`
	Clients  []storedClient  `json:"clients"`
	Retained []storedMessage `json:"retained"`
}

type storedClient struct {
	ID              string                 `json:"id"`
	Listener        string                 `json:"listener"`
	Username        []byte                 `json:"username,omitempty"`
	ProtocolVersion byte                   `json:"protocol_version"`
	Clean           bool                   `json:"clean,omitempty"`
	Props           storedClientProps      `json:"props"`
	Subscriptions   []packets.Subscription `json:"subscriptions,omitempty"`
	Inflight        []storedMessage        `json:"inflight,omitempty"`
}

type storedClientProps struct {
	SessionExpiryInterval     uint32 `json:"session_expiry_interval,omitempty"`
	SessionExpiryIntervalFlag bool   `json:"session_expiry_interval_flag,omitempty"`
	ReceiveMaximum            uint16 `json:"receive_maximum,omitempty"`
	TopicAliasMaximum         uint16 `json:"topic_alias_maximum,omitempty"`
	MaximumPacketSize         uint32 `json:"maximum_packet_size,omitempty"`
	RequestProblemInfo        byte   `json:"request_problem_info,omitempty"`
	RequestProblemInfoFlag    bool   `json:"request_problem_info_flag,omitempty"`
	RequestResponseInfo       byte   `json:"request_response_info,omitempty"`
}

type storedMessage struct {
	Type            byte               `json:"type"`
	QoS             byte               `json:"qos,omitempty"`
	Retain          bool               `json:"retain,omitempty"`
	Dup             bool               `json:"dup,omitempty"`
	PacketID        uint16             `json:"packet_id,omitempty"`
	ReasonCode      byte               `json:"reason_code,omitempty"`
	Topic           string             `json:"topic,omitempty"`
	Payload         []byte             `json:"payload,omitempty"`
	Origin          string             `json:"origin,omitempty"`
	Created         int64              `json:"created,omitempty"`
	Expiry          int64              `json:"expiry,omitempty"`
	ProtocolVersion byte               `json:"protocol_version,omitempty"`
	Properties      packets.Properties `json:"properties"`
}

func toStored(pk packets.Packet) storedMessage {
	props := pk.Properties.Copy(true)
	props.TopicAlias, props.TopicAliasFlag = 0, false
	return storedMessage{
		Type: pk.FixedHeader.Type, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain, Dup: pk.FixedHeader.Dup,
		PacketID: pk.PacketID, ReasonCode: pk.ReasonCode, Topic: pk.TopicName, Payload: pk.Payload,
		Origin: pk.Origin, Created: pk.Created, Expiry: pk.Expiry, ProtocolVersion: pk.ProtocolVersion, Properties: props,
	}
}

func (m storedMessage) packet() packets.Packet {
	return packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: m.Type, Qos: m.QoS, Retain: m.Retain, Dup: m.Dup},
		PacketID:        m.PacketID,
		ReasonCode:      m.ReasonCode,
		TopicName:       m.Topic,
		Payload:         m.Payload,
		Origin:          m.Origin,
		Created:         m.Created,
		Expiry:          m.Expiry,
		ProtocolVersion: m.ProtocolVersion,
		Properties:      m.Properties,
	}
}

// persistent reports whether cl's session outlives its connection.
func persistent(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval > 0
	}
	return !cl.Properties.Clean
}

// snapshot collects the state to persist. Each structure is read under
// its own lock, so a message published meanwhile is in it or not, whole.
func (s *store) snapshot() snapshot {
	srv := s.b.srv
	snap := snapshot{Version: storeVersion, Saved: time.Now().UTC(), Engine: "mochi-mqtt " + mochiVersion, Seq: s.b.seq.Load()}
	for _, cl := range srv.Clients.GetAll() {
		if cl.Net.Inline || !persistent(cl) {
			continue
		}
		p := cl.Properties.Props
		c := storedClient{
			ID: cl.ID, Listener: cl.Net.Listener, Username: cl.Properties.Username,
			ProtocolVersion: cl.Properties.ProtocolVersion, Clean: cl.Properties.Clean,
			Props: storedClientProps{
				SessionExpiryInterval: p.SessionExpiryInterval, SessionExpiryIntervalFlag: p.SessionExpiryIntervalFlag,
				ReceiveMaximum: p.ReceiveMaximum, TopicAliasMaximum: p.TopicAliasMaximum, MaximumPacketSize: p.MaximumPacketSize,
				RequestProblemInfo: p.RequestProblemInfo, RequestProblemInfoFlag: p.RequestProblemInfoFlag,
				RequestResponseInfo: p.RequestResponseInfo,
			},
		}
		for _, sub := range cl.State.Subscriptions.GetAll() {
			c.Subscriptions = append(c.Subscriptions, sub)
		}
		for _, pk := range cl.State.Inflight.GetAll(false) {
			c.Inflight = append(c.Inflight, toStored(pk))
		}
		snap.Clients = append(snap.Clients, c)
	}
	for topic, pk := range srv.Topics.Retained.GetAll() {
		if strings.HasPrefix(topic, "$SYS/") {
			continue
		}
		snap.Retained = append(snap.Retained, toStored(pk))
	}
	return snap
}

// save writes a snapshot atomically.
func (s *store) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	snap := s.snapshot()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(snap); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, buf.Bytes(), 0o600); err != nil {
		s.b.log.logf(logError, "Error saving in-memory database, unable to write %s: %v", s.path, err)
		return fmt.Errorf("persistence: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync() // make the rename itself durable
		d.Close()
	}
	s.b.log.logf(logInfo, "Saved in-memory database to %s (%d sessions, %d retained, %s).", s.path, len(snap.Clients), len(snap.Retained), time.Since(start).Round(time.Millisecond))
	return nil
}

// maxSnapshot bounds what a database may decompress to: a damaged or
// crafted file (a gzip bomb) never takes the broker's memory.
const maxSnapshot = 1 << 30

// decodeSnapshot reads a database and checks every value the broker would
// hand to mochi: a damaged file is refused with the place it is damaged,
// never half-loaded.
func decodeSnapshot(data []byte) (snapshot, error) {
	var snap snapshot
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return snap, fmt.Errorf("not a database of the bundled broker: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxSnapshot+1))
	if err != nil {
		return snap, fmt.Errorf("damaged: %w", err)
	}
	if len(raw) > maxSnapshot {
		return snap, fmt.Errorf("damaged: more than %d bytes uncompressed", maxSnapshot)
	}
	return parseSnapshot(raw)
}

// parseSnapshot reads and checks the JSON inside a database.
func parseSnapshot(raw []byte) (snapshot, error) {
	var snap snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return snap, fmt.Errorf("damaged: %w", err)
	}
	if snap.Version != storeVersion {
		return snap, fmt.Errorf("has format %d; this broker reads format %d", snap.Version, storeVersion)
	}
	ids := map[string]bool{}
	for i, c := range snap.Clients {
		where := fmt.Sprintf("damaged: client %d (%q)", i, c.ID)
		if c.ID == "" || ids[c.ID] {
			return snap, fmt.Errorf("%s: empty or repeated client id", where)
		}
		ids[c.ID] = true
		if c.ProtocolVersion < 3 || c.ProtocolVersion > 5 {
			return snap, fmt.Errorf("%s: protocol version %d", where, c.ProtocolVersion)
		}
		for _, sub := range c.Subscriptions {
			if !mqtt.IsValidFilter(sub.Filter, false) || sub.Qos > 2 {
				return snap, fmt.Errorf("%s: subscription %q qos %d", where, sub.Filter, sub.Qos)
			}
		}
		seen := map[uint16]bool{}
		for j, m := range c.Inflight {
			if err := m.checkInflight(); err != nil {
				return snap, fmt.Errorf("%s: message %d: %w", where, j, err)
			}
			if seen[m.PacketID] {
				return snap, fmt.Errorf("%s: message %d: packet id %d repeated", where, j, m.PacketID)
			}
			seen[m.PacketID] = true
		}
	}
	for i, m := range snap.Retained {
		if m.Type != packets.Publish || m.QoS > 2 || !validTopic(m.Topic) {
			return snap, fmt.Errorf("damaged: retained message %d (%q)", i, m.Topic)
		}
	}
	return snap, nil
}

// validTopic reports whether t can be the topic of a message: not empty,
// no wildcard, UTF-8 without NUL ($SYS topics included).
func validTopic(t string) bool {
	return t != "" && !strings.ContainsAny(t, "+#\x00") && utf8.ValidString(t)
}

// checkInflight checks a message of a session: a QoS 1 or 2 PUBLISH, or
// the PUBREC or PUBREL of a QoS 2 flow, with a packet id.
func (m storedMessage) checkInflight() error {
	switch {
	case m.PacketID == 0:
		return errors.New("no packet id")
	case m.Type == packets.Publish && (m.QoS == 0 || m.QoS > 2 || !validTopic(m.Topic)):
		return fmt.Errorf("PUBLISH %q qos %d", m.Topic, m.QoS)
	case m.Type != packets.Publish && m.Type != packets.Pubrec && m.Type != packets.Pubrel:
		return fmt.Errorf("packet type %d", m.Type)
	}
	return nil
}

// restore loads the snapshot, if any, into the server before it serves.
func (s *store) restore() error {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		theirs := filepath.Join(filepath.Dir(s.path), conf.Database(conf.Mosquitto))
		if _, err := os.Stat(theirs); err == nil {
			s.b.log.logf(logWarning, "%s is Mosquitto's database, which the bundled broker cannot read: starting without its retained messages and sessions.", theirs)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("persistence: %w", err)
	}
	snap, err := decodeSnapshot(data)
	if err != nil {
		return fmt.Errorf("persistence: %s: %w", s.path, err)
	}
	s.load(snap)
	s.b.log.logf(logInfo, "Restored %d sessions and %d retained messages from %s (saved %s).", len(snap.Clients), len(snap.Retained), s.path, snap.Saved.Format(time.RFC3339))
	return nil
}

// load puts a checked snapshot into the server.
func (s *store) load(snap snapshot) {
	srv := s.b.srv
	seq := max(snap.Seq, seqBase)
	for _, c := range snap.Clients {
		cl := srv.NewClient(nil, c.Listener, c.ID, false)
		cl.Properties.Username = c.Username
		cl.Properties.Clean = c.Clean
		cl.Properties.ProtocolVersion = c.ProtocolVersion
		cl.Properties.Props = packets.Properties{
			SessionExpiryInterval: c.Props.SessionExpiryInterval, SessionExpiryIntervalFlag: c.Props.SessionExpiryIntervalFlag,
			ReceiveMaximum: c.Props.ReceiveMaximum, TopicAliasMaximum: c.Props.TopicAliasMaximum,
			MaximumPacketSize: c.Props.MaximumPacketSize, RequestProblemInfo: c.Props.RequestProblemInfo,
			RequestProblemInfoFlag: c.Props.RequestProblemInfoFlag, RequestResponseInfo: c.Props.RequestResponseInfo,
		}
		// A restored session is disconnected; its expiry counts from now.
		cl.Stop(packets.ErrServerShuttingDown)
		srv.Clients.Add(cl)
		for _, sub := range c.Subscriptions {
			if srv.Topics.Subscribe(c.ID, sub) {
				atomic.AddInt64(&srv.Info.Subscriptions, 1)
			}
			cl.State.Subscriptions.Add(sub.Filter, sub)
		}
		for _, m := range c.Inflight {
			if cl.State.Inflight.Set(m.packet()) {
				atomic.AddInt64(&srv.Info.Inflight, 1)
			}
			seq = max(seq, m.Created&^sentBit)
		}
	}
	for _, m := range snap.Retained {
		srv.Topics.RetainMessage(m.packet())
	}
	atomic.StoreInt64(&srv.Info.Retained, int64(srv.Topics.Retained.Len()))
	s.b.seq.Store(seq + 1)
}

// autosave writes the database every autosave_interval.
func (b *Broker) autosave() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.AutosaveInterval)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			b.store.save()
		}
	}
}
