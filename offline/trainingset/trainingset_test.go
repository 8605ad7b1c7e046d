package trainingset

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/processors/user"
	"github.com/livefeed/livefeed/simulate"
	"github.com/livefeed/livefeed/topologies"
)

// defaultTopology is the default feature set as app.OfflineTopology builds
// it, without embeddings.
func defaultTopology(t testing.TB) *topologies.Topology {
	t.Helper()
	all, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	return &topologies.Topology{
		Features: all.ForEntity("livestream"),
		Entities: topologies.EntitiesOf(all),
		Weights:  user.DefaultWeights(),
		HalfLife: 24 * time.Hour,
	}
}

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// rec is a log record of an event at t0+at.
func rec(topic string, at time.Duration, fields map[string]any) offline.Record {
	fields["event_time"] = t0.Add(at).Format(time.RFC3339Nano)
	fields["livestream_id"] = "s1"
	if _, ok := fields["event_id"]; !ok {
		fields["event_id"] = fmt.Sprintf("%s-%d-%v", topic, at, fields["type"])
	}
	b, _ := json.Marshal(fields)
	return offline.Record{Topic: topic, Key: "s1", Value: b}
}

// sliceSource is a log held in memory.
type sliceSource struct {
	recs []offline.Record
	i    int
}

func (s *sliceSource) Scan() bool             { s.i++; return s.i <= len(s.recs) }
func (s *sliceSource) Record() offline.Record { return s.recs[s.i-1] }
func (s *sliceSource) Err() error             { return nil }

// buildRows runs Build on labels (JSON lines) and returns the rows it wrote.
func buildRows(t *testing.T, o Options, labels string, recs []offline.Record) ([]map[string]any, Stats) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "labels.jsonl")
	if err := os.WriteFile(path, []byte(labels), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := ReadLabels(path, ReadOptions{KeyColumns: KeyColumns(o.Topology)})
	if err != nil {
		t.Fatal(err)
	}
	o.Format = JSONL
	var out bytes.Buffer
	st, err := Build(context.Background(), o, l, &sliceSource{recs: recs}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	dec := json.NewDecoder(&out)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, m)
	}
	return rows, st
}

// A row sees the events up to its instant, its instant included, and no
// later one; a late event is seen only by the rows after it arrived, and
// one beyond the lateness by none.
func TestPointInTime(t *testing.T) {
	topo := defaultTopology(t)
	bid := func(at time.Duration, amount float64) offline.Record {
		return rec(events.TopicAuctions, at, map[string]any{"auction_id": "a1", "type": "bid", "user_id": "u1", "amount": amount, "currency": "USD"})
	}
	chat := func(at time.Duration, id string) offline.Record {
		return rec(events.TopicChat, at, map[string]any{"user_id": "u1", "text": "hi", "event_id": id})
	}
	log := []offline.Record{
		rec(events.TopicLivestreams, 0, map[string]any{"seller_id": "x1", "title": "t", "category": "sneakers", "language": "en", "status": "live"}),
		bid(10*time.Second, 5),
		bid(30*time.Second, 7),
		chat(60*time.Second, "c1"),
		chat(20*time.Second, "late"),     // 40s late: within the 2m lateness, arrives after the clock passed 0:50
		chat(-5*time.Minute, "too-late"), // beyond the lateness: dropped online too
		bid(90*time.Second, 11),
	}
	labels := strings.Join([]string{
		`{"livestream_id":"s1","user_id":"u1","timestamp":"2026-12-07T09:59:59Z","clicked":0}`,
		`{"livestream_id":"s1","user_id":"u1","timestamp":"2026-12-07T10:00:29.999Z","clicked":1}`,
		`{"livestream_id":"s1","user_id":"u1","timestamp":"2026-12-07T10:00:30Z","clicked":0}`,
		`{"livestream_id":"s1","user_id":"u1","timestamp":"2026-12-07T10:00:50Z","clicked":1}`,
		`{"livestream_id":"s1","user_id":"u1","timestamp":"2026-12-07T10:01:05Z","clicked":0}`,
		`{"livestream_id":"s1","user_id":"u1","timestamp":"2026-12-07T11:00:00Z","clicked":1}`,
	}, "\n")
	rows, st := buildRows(t, Options{Topology: topo, Features: []string{"bids_1m", "max_bid_5m", "chat_1m", "user_bids_7d"}}, labels, log)
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6", len(rows))
	}
	if len(rows[0]) != 4+4 {
		t.Errorf("columns %v, want the 4 of the labels and the 4 features asked for", rows[0])
	}
	want := []map[string]any{
		{"bids_1m": 0.0, "max_bid_5m": nil, "chat_1m": 0.0, "user_bids_7d": 0.0}, // before any event
		{"bids_1m": 1.0, "max_bid_5m": 5.0, "chat_1m": 0.0, "user_bids_7d": 1.0}, // 1ms before the second bid
		{"bids_1m": 2.0, "max_bid_5m": 7.0, "chat_1m": 0.0, "user_bids_7d": 2.0}, // at the second bid: included
		{"bids_1m": 2.0, "max_bid_5m": 7.0, "chat_1m": 0.0, "user_bids_7d": 2.0}, // the 0:20 chat had not arrived
		{"bids_1m": 2.0, "max_bid_5m": 7.0, "chat_1m": 2.0, "user_bids_7d": 2.0}, // now it has (late, within lateness); bid at 1:30 not yet
		{"bids_1m": 0.0, "max_bid_5m": nil, "chat_1m": 0.0, "user_bids_7d": 3.0}, // windows slid past; 7d still counts
	}
	for i, w := range want {
		for k, v := range w {
			if rows[i][k] != v {
				t.Errorf("row %d (%s): %s = %v, want %v", i, rows[i]["timestamp"], k, rows[i][k], v)
			}
		}
		if rows[i]["clicked"] != float64(i%2) {
			t.Errorf("row %d: label clicked = %v, want %d", i, rows[i]["clicked"], i%2)
		}
	}
	if st.Late == 0 {
		t.Error("the event 5 minutes late was not counted late")
	}
}

// simulatedLog is a reproducible log: n simulated events 20ms apart from
// t0, one in 17 made late by 30s (within the livestream features' 2m
// lateness) or, one in 34, by 5 minutes (beyond it).
func simulatedLog(t testing.TB, n int) []offline.Record {
	t.Helper()
	gen, err := simulate.New(simulate.Config{Seed: 7, Users: 300, Sellers: 40, LiveStreams: 20, BadFraction: 0.002})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]offline.Record, 0, n)
	for i := range n {
		r := gen.Next(t0.Add(time.Duration(i) * 20 * time.Millisecond))
		value := r.Value
		if r.Topic != events.TopicLivestreams && i%17 == 0 && json.Valid(value) {
			var m map[string]any
			if err := json.Unmarshal(value, &m); err == nil {
				if et, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["event_time"])); err == nil {
					shift := 30 * time.Second
					if i%34 == 0 {
						shift = 5 * time.Minute
					}
					m["event_time"] = et.Add(-shift).Format(time.RFC3339Nano)
					value, _ = json.Marshal(m)
				}
			}
		}
		if !json.Valid(value) {
			// A deliberately malformed event: its bytes as a JSON string,
			// as livefeed simulate --out writes it.
			value, _ = json.Marshal(string(value))
		}
		recs = append(recs, offline.Record{Topic: r.Topic, Key: r.Key, Value: value})
	}
	return recs
}

// keysOf collects the entity keys the log names.
func keysOf(recs []offline.Record) (streams, users, sellers []string) {
	seen := map[string]bool{}
	for _, r := range recs {
		var m struct {
			LivestreamID string `json:"livestream_id"`
			UserID       string `json:"user_id"`
			SellerID     string `json:"seller_id"`
		}
		if json.Unmarshal(r.Value, &m) != nil {
			continue
		}
		for _, k := range []struct {
			list *[]string
			id   string
		}{{&streams, m.LivestreamID}, {&users, m.UserID}, {&sellers, m.SellerID}} {
			if k.id != "" && !seen[k.id] {
				seen[k.id] = true
				*k.list = append(*k.list, k.id)
			}
		}
	}
	return
}

// prefixAt is the part of the log a row at instant at sees: the records
// before the first one whose event time is after at.
func prefixAt(recs []offline.Record, at time.Time) []offline.Record {
	for i, r := range recs {
		if t, ok := offline.Decode(r).Time(); ok && t.After(at) {
			return recs[:i]
		}
	}
	return recs
}

// randomLabels writes n label rows at random instants over the log's
// span (and a little before and after it), naming streams, users and
// sellers of the log and some it never saw.
func randomLabels(recs []offline.Record, n int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 1))
	streams, users, sellers := keysOf(recs)
	streams, users, sellers = append(streams, "s-unknown"), append(users, "u-unknown"), append(sellers, "x-unknown")
	span := time.Duration(len(recs)) * 20 * time.Millisecond
	var b strings.Builder
	for i := range n {
		at := t0.Add(-time.Minute + time.Duration(rng.Int64N(int64(span+2*time.Minute))))
		if i%5 == 0 {
			at = at.Truncate(time.Second) // on a record's instant now and then
		}
		fmt.Fprintf(&b, `{"ts":%q,"livestream_id":%q,"user_id":%q,"seller_id":%q,"bought":%v,"price":%g}`+"\n",
			at.Format(time.RFC3339Nano), streams[rng.IntN(len(streams))], users[rng.IntN(len(users))],
			sellers[rng.IntN(len(sellers))], rng.IntN(2) == 1, float64(rng.IntN(10000))/100)
	}
	return b.String()
}

// Every row equals `features compute --at T` (offline.Engine.ReadLog over
// the log, then Values(T)) on the part of the log it sees: for the row's
// stream, user and seller, every feature of the default set, nulls
// included; an entity compute does not know (no event yet) reads as an
// empty state.
func TestEqualsComputeAt(t *testing.T) {
	topo := defaultTopology(t)
	recs := simulatedLog(t, 6000)
	rows, st := buildRows(t, Options{Topology: topo}, randomLabels(recs, 60, 1), recs)
	if st.Late == 0 || len(st.Rejected) == 0 {
		t.Fatalf("the log has no late (%d) or rejected (%v) records; the test would not exercise them", st.Late, st.Rejected)
	}
	if len(rows) != 60 {
		t.Fatalf("%d rows, want 60", len(rows))
	}
	entities := map[string]*features.Set{"livestream": topo.Features}
	for _, e := range topo.Entities {
		entities[e.Name] = e.Features
	}
	var prev time.Time
	compared, nonzero := 0, 0
	for i, row := range rows {
		at, err := time.Parse(time.RFC3339Nano, row["ts"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if at.Before(prev) {
			t.Fatalf("row %d at %s before the previous row at %s: rows must come out in time order", i, at, prev)
		}
		prev = at
		prefix := prefixAt(recs, at)
		var log bytes.Buffer
		enc := json.NewEncoder(&log)
		for _, r := range prefix {
			if err := enc.Encode(r); err != nil {
				t.Fatal(err)
			}
		}
		en := offline.New(topo)
		if _, err := en.ReadLog(context.Background(), &log); err != nil {
			t.Fatal(err)
		}
		vals := en.Values(at)
		for entity, col := range map[string]string{"livestream": "livestream_id", "user": "user_id", "seller": "seller_id"} {
			id := row[col].(string)
			want, ok := vals[entity][id]
			if !ok {
				want = entities[entity].Numbers(&features.State{}, at)
			}
			for _, d := range entities[entity].All() {
				w, has := want[d.Name]
				got := row[d.Name]
				if !has {
					if got != nil {
						t.Errorf("row %d %s %s %s: %s = %v, compute --at gives null", i, at, entity, id, d.Name, got)
					}
					continue
				}
				g, _ := got.(float64)
				if got == nil || math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
					t.Errorf("row %d %s %s %s: %s = %v, compute --at gives %v", i, at, entity, id, d.Name, got, w)
				}
				compared++
				if w != 0 {
					nonzero++
				}
			}
		}
	}
	if nonzero < compared/10 {
		t.Errorf("only %d of %d compared values are non-zero; the test compares too little", nonzero, compared)
	}
	t.Logf("%d rows, %d values compared (%d non-zero), %d late, rejected %v", len(rows), compared, nonzero, st.Late, st.Rejected)
}
