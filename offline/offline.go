// Package offline recomputes livefeed's features from an event log without
// Kafka, with the same code the goka groups run (the livestream Updater, the
// entity observation, the user taste): what a data scientist uses to build
// training data that equals what production serves.
package offline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/entity"
	"github.com/livefeed/livefeed/processors/livestream"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/user"
	"github.com/livefeed/livefeed/tables"
	"github.com/livefeed/livefeed/topologies"
	sjson "github.com/segmentio/encoding/json"
)

// Record is one line of an event log (JSONL): an input record as produced to
// Kafka — the topic without prefix, the key and the event.
type Record struct {
	Topic string          `json:"topic"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// Engine holds every entity's state while a log is replayed.
type Engine struct {
	topo    *topologies.Topology
	updater *livestream.Updater
	streams map[string]*tables.Livestream
	users   map[string]*tables.User
	others  map[string]map[string]*tables.Entity // entity → id → state
	// Rejected counts records the processors would dead-letter, by reason.
	Rejected map[string]int
	// Late counts events dropped from windows as late.
	Late int
	// SkipTastes leaves the users' tastes, categories, signal counts and
	// recent streams unapplied (their features are applied): for a replay
	// that reads none of them, e.g. a training set without a taste column.
	SkipTastes bool
	// retention is the longest window plus its lateness of the stream
	// features (as in the livestream group).
	retention time.Duration
}

// New prepares an engine for a topology (its features, entities, weights and
// embedder are used; nothing of Kafka is).
func New(topo *topologies.Topology) *Engine {
	var retention time.Duration
	for _, d := range topo.Features.All() {
		retention = max(retention, d.Window.Size+d.Lateness)
	}
	return &Engine{
		retention: retention,
		topo:      topo,
		updater: &livestream.Updater{Features: topo.Features, ViewerTimeout: 2 * time.Minute,
			Embedder: topo.Embedder},
		streams:  map[string]*tables.Livestream{},
		users:    map[string]*tables.User{},
		others:   map[string]map[string]*tables.Entity{},
		Rejected: map[string]int{},
	}
}

// Apply replays one record.
func (en *Engine) Apply(ctx context.Context, r Record) { en.ApplyDecoded(ctx, Decode(r)) }

// Decoded is a record decoded and checked as the livestream group's decode
// does, before any state is read: replaying a log up to an instant needs
// its event time before applying it.
type Decoded struct {
	rec Record
	ev  events.Validator
	h   *events.Header
	err error
}

// Decode decodes a record of the log.
func Decode(r Record) Decoded {
	ev, h, err := events.DecodeInput(r.Topic, r.Value)
	if err == nil {
		err = events.CheckKey(r.Key, h)
	}
	return Decoded{rec: r, ev: ev, h: h, err: err}
}

// Time is the record's event time; ok is false for a record the
// processors reject before reading it (malformed, wrong key).
func (d Decoded) Time() (t time.Time, ok bool) {
	if d.err != nil {
		return time.Time{}, false
	}
	return d.h.EventTime, true
}

// ApplyDecoded replays one decoded record.
func (en *Engine) ApplyDecoded(ctx context.Context, d Decoded) {
	r, ev, h, err := d.rec, d.ev, d.h, d.err
	if err == nil && en.streams[r.Key] != nil {
		// As the livestream group's decode: an event older than the
		// stream's watermark for its source minus the longest window and
		// lateness is dead-lettered as "ancient".
		err = events.CheckAncient(h.EventTime, en.streams[r.Key].Features.SourceWatermark(events.Source(ev)), en.retention)
	}
	if err != nil {
		en.Rejected[reason(err)]++
		return
	}
	st := en.streams[r.Key]
	if st == nil {
		st = &tables.Livestream{LivestreamID: r.Key}
		en.streams[r.Key] = st
	}
	res := en.updater.Apply(ctx, st, ev)
	if res.Late {
		en.Late++
	}
	if res.Signal != nil && !en.SkipTastes {
		en.user(res.Signal.UserID).apply(func(u *tables.User) {
			user.Apply(u, res.Signal, en.topo.Weights, en.topo.HalfLife)
		})
	}
	var (
		fev     features.Event // the enriched event the entity groups decode, once for all of them
		fevErr  error
		decoded bool
	)
	for _, e := range en.topo.Entities {
		if !e.Reads(res.Source) {
			continue
		}
		key := livestream.KeyOf(e.KeyField, ev, st)
		if key == "" {
			continue
		}
		if !decoded {
			enr := &events.Enriched{Source: res.Source, EventID: h.EventID, EventTime: h.EventTime,
				LivestreamID: st.LivestreamID, SellerID: st.SellerID, Category: st.Category, Event: r.Value}
			fev, fevErr = entity.Event(enr)
			decoded = true
		}
		if err := fevErr; err != nil {
			en.Rejected[reason(err)]++
			continue
		}
		if e.Name == "user" {
			en.user(key).apply(func(u *tables.User) {
				if e.Features.ApplyEvent(&u.Features, fev).Dropped() {
					en.Late++
				}
			})
			continue
		}
		st := en.entity(e.Name, key)
		st.Events++
		if e.Features.ApplyEvent(&st.Features, fev).Dropped() {
			st.LateDropped++
			en.Late++
		}
	}
}

type userRef struct{ u *tables.User }

func (r userRef) apply(fn func(*tables.User)) { fn(r.u) }

func (en *Engine) user(id string) userRef {
	u := en.users[id]
	if u == nil {
		u = &tables.User{UserID: id}
		en.users[id] = u
	}
	return userRef{u}
}

func (en *Engine) entity(name, id string) *tables.Entity {
	m := en.others[name]
	if m == nil {
		m = map[string]*tables.Entity{}
		en.others[name] = m
	}
	st := m[id]
	if st == nil {
		st = &tables.Entity{ID: id}
		m[id] = st
	}
	return st
}

// reason classifies a rejected record as the processors' dead-letter
// metrics do.
func reason(err error) string { return pipeline.Reason(err) }

// ReadLog replays every record of a JSONL event log. It returns the number
// of records read; a line that is not a record is an error with its number.
func (en *Engine) ReadLog(ctx context.Context, r io.Reader) (int, error) {
	sc := NewLogScanner(r)
	for sc.Scan() {
		en.Apply(ctx, sc.Record())
		if ctx.Err() != nil {
			return sc.Line(), ctx.Err()
		}
	}
	return sc.Line(), sc.Err()
}

// LogScanner reads a JSONL event log record by record, as bufio.Scanner
// reads lines: for sc.Scan() { sc.Record() }; sc.Err().
type LogScanner struct {
	sc   *bufio.Scanner
	line int
	rec  Record
	err  error
}

// NewLogScanner reads records from r.
func NewLogScanner(r io.Reader) *LogScanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &LogScanner{sc: sc}
}

// Scan reads the next record; false at the end or on an error (Err).
func (s *LogScanner) Scan() bool {
	for s.err == nil && s.sc.Scan() {
		s.line++
		line := s.sc.Bytes()
		if len(line) == 0 {
			continue
		}
		if rec, ok := parseRecord(line); ok {
			s.rec = rec
			return true
		}
		s.rec = Record{}
		if err := json.Unmarshal(line, &s.rec); err != nil {
			s.err = fmt.Errorf("line %d: not a record {topic, key, value}: %w", s.line, err)
			return false
		}
		return true
	}
	if s.err == nil && s.sc.Err() != nil {
		s.err = fmt.Errorf("reading event log: %w", s.sc.Err())
	}
	return false
}

// parseRecord reads a line as `livefeed simulate --out` and json.Encoder
// write it, {"topic":"…","key":"…","value":…} with no escapes in topic and
// key, without decoding the value; ok is false for any other line (the
// caller then decodes it in full).
func parseRecord(line []byte) (rec Record, ok bool) {
	field := func(rest []byte, prefix string) (value, after []byte, ok bool) {
		if !bytes.HasPrefix(rest, []byte(prefix)) {
			return nil, nil, false
		}
		rest = rest[len(prefix):]
		i := bytes.IndexByte(rest, '"')
		if i < 0 || bytes.IndexByte(rest[:i], '\\') >= 0 {
			return nil, nil, false
		}
		return rest[:i], rest[i+1:], true
	}
	topic, rest, ok := field(line, `{"topic":"`)
	if !ok {
		return rec, false
	}
	key, rest, ok := field(rest, `,"key":"`)
	if !ok || !bytes.HasPrefix(rest, []byte(`,"value":`)) {
		return rec, false
	}
	value := bytes.TrimSpace(rest[len(`,"value":`):])
	if len(value) < 2 || value[len(value)-1] != '}' {
		return rec, false
	}
	value = bytes.TrimSpace(value[:len(value)-1])
	if !sjson.Valid(value) { // e.g. another field after "value"
		return rec, false
	}
	return Record{Topic: string(topic), Key: string(key), Value: bytes.Clone(value)}, true
}

// Record is the record Scan read (its Value is the scanner's own copy).
func (s *LogScanner) Record() Record { return s.rec }

// Line is the number of lines read so far.
func (s *LogScanner) Line() int { return s.line }

// Err is the first error, nil at a clean end.
func (s *LogScanner) Err() error { return s.err }

// Values are the features of every entity at a time: entity → id → name →
// value, as serving's "features" maps give them: a feature without a
// numeric value (null: e.g. the max of an empty window) is absent.
type Values map[string]map[string]map[string]float64

// Values evaluates every feature of every entity at time at.
func (en *Engine) Values(at time.Time) Values {
	out := Values{"livestream": {}}
	for id, st := range en.streams {
		out["livestream"][id] = en.topo.Features.Numbers(&st.Features, at)
	}
	for _, e := range en.topo.Entities {
		m := map[string]map[string]float64{}
		if e.Name == "user" {
			for id, u := range en.users {
				m[id] = e.Features.Numbers(&u.Features, at)
			}
		} else {
			for id, st := range en.others[e.Name] {
				m[id] = e.Features.Numbers(&st.Features, at)
			}
		}
		out[e.Name] = m
	}
	return out
}

// FeatureState is the windowed-feature state of one key of an entity
// (livestream, user or another feature entity), nil when no event has
// reached it (read-only).
func (en *Engine) FeatureState(entity, id string) *features.State {
	switch entity {
	case "livestream":
		if st := en.streams[id]; st != nil {
			return &st.Features
		}
	case "user":
		if u := en.users[id]; u != nil {
			return &u.Features
		}
	default:
		if st := en.others[entity][id]; st != nil {
			return &st.Features
		}
	}
	return nil
}

// Streams returns the livestream states by id (read-only).
func (en *Engine) Streams() map[string]*tables.Livestream { return en.streams }

// Users returns the user states by id (read-only).
func (en *Engine) Users() map[string]*tables.User { return en.users }

// IDs returns the sorted ids of an entity.
func (v Values) IDs(entity string) []string {
	ids := make([]string, 0, len(v[entity]))
	for id := range v[entity] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
