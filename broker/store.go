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
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("persistence: %s is not a database of the bundled broker: %w", s.path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("persistence: %s is damaged: %w", s.path, err)
	}
	var snap snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return fmt.Errorf("persistence: %s is damaged: %w", s.path, err)
	}
	if snap.Version != storeVersion {
		return fmt.Errorf("persistence: %s has format %d; this broker reads format %d", s.path, snap.Version, storeVersion)
	}
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
			seq = max(seq, m.Created)
		}
	}
	for _, m := range snap.Retained {
		srv.Topics.RetainMessage(m.packet())
	}
	atomic.StoreInt64(&srv.Info.Retained, int64(srv.Topics.Retained.Len()))
	s.b.seq.Store(seq + 1)
	s.b.log.logf(logInfo, "Restored %d sessions and %d retained messages from %s (saved %s).", len(snap.Clients), len(snap.Retained), s.path, snap.Saved.Format(time.RFC3339))
	return nil
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
