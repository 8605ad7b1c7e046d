package user

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/pipeline/pipelinetest"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func sig(id, user, ls string, kind events.SignalKind, at time.Duration, cat string, vec []float32) events.UserSignal {
	return events.UserSignal{EventID: id, EventTime: t0.Add(at), UserID: user, Kind: kind, LivestreamID: ls, Category: cat, Embedding: vec}
}

func run(t *testing.T) (*tester.Tester, goka.Table) {
	t.Helper()
	g, err := New(Config{Group: DefaultGroup, UserSignals: "user-signals", Metrics: pipeline.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	gkt := pipelinetest.Run(t, g)
	return gkt, goka.GroupTable(DefaultGroup)
}

func send(gkt *tester.Tester, s events.UserSignal) {
	b, _ := json.Marshal(s)
	gkt.Consume("user-signals", s.UserID, b)
}

func TestTasteFollowsWeightedEngagement(t *testing.T) {
	gkt, table := run(t)
	cards := []float32{1, 0, 0}
	shoes := []float32{0, 1, 0}
	send(gkt, sig("1", "u", "ls-shoes", events.SignalWatch, 0, "sneakers", shoes))
	send(gkt, sig("2", "u", "ls-shoes", events.SignalWatch, time.Second, "sneakers", shoes))
	send(gkt, sig("3", "u", "ls-cards", events.SignalBuy, 2*time.Second, "trading-cards", cards))
	st := gkt.TableValue(table, "u").(*tables.User)
	taste := st.Taste.Unit()
	// weights: 2 watches (1 each) vs 1 buy (8): taste leans to cards.
	if !(taste[0] > taste[1] && taste[1] > 0) {
		t.Fatalf("taste %v", taste)
	}
	if math.Abs(float64(models.Dot(taste, taste))-1) > 1e-5 {
		t.Fatalf("taste not unit: %v", taste)
	}
	if st.Recent[0].LivestreamID != "ls-cards" || len(st.Recent) != 2 {
		t.Fatalf("recent %+v", st.Recent)
	}
	if st.Signals[events.SignalWatch] != 2 || st.Signals[events.SignalBuy] != 1 {
		t.Fatalf("signals %v", st.Signals)
	}
	if c := st.Categories["trading-cards"].Value; math.Abs(c-8) > 1e-6 {
		t.Fatalf("category affinity %v", c)
	}
}

func TestDecayIsOrderIndependent(t *testing.T) {
	a := []events.UserSignal{
		sig("1", "u", "x", events.SignalWatch, 0, "c", []float32{1, 0}),
		sig("2", "u", "y", events.SignalChat, 30*time.Hour, "d", []float32{0, 1}),
		sig("3", "u", "z", events.SignalBid, 5*time.Hour, "c", []float32{1, 1}),
	}
	var s1, s2 tables.User
	for _, s := range a {
		Apply(&s1, &s, DefaultWeights(), 24*time.Hour)
	}
	for i := len(a) - 1; i >= 0; i-- {
		Apply(&s2, &a[i], DefaultWeights(), 24*time.Hour)
	}
	u1, u2 := s1.Taste.Unit(), s2.Taste.Unit()
	for i := range u1 {
		if math.Abs(float64(u1[i]-u2[i])) > 1e-5 {
			t.Fatalf("order changed taste: %v vs %v", u1, u2)
		}
	}
	if s1.Recent[0].LivestreamID != "y" || s2.Recent[0].LivestreamID != "y" {
		t.Fatalf("recent not newest first: %+v / %+v", s1.Recent, s2.Recent)
	}
}

func TestBadSignalGoesToDeadLetter(t *testing.T) {
	gkt, table := run(t)
	dlq := gkt.NewQueueTracker("user-signals.dlq")
	gkt.Consume("user-signals", "u", []byte("nope"))
	b, _ := json.Marshal(sig("1", "other", "x", events.SignalWatch, 0, "c", nil))
	gkt.Consume("user-signals", "u", b) // key differs from user_id
	for _, want := range []string{"malformed", "invalid:key"} {
		hdrs, _, _, ok := dlq.NextRawWithHeaders()
		if !ok || string(hdrs[pipeline.HeaderReason]) != want {
			t.Fatalf("dead letter reason %q, want %q", hdrs[pipeline.HeaderReason], want)
		}
	}
	if v := gkt.TableValue(table, "u"); v != nil {
		t.Fatalf("bad signals changed state: %+v", v)
	}
}

// One user-signals record carries the signal, the event for the user's
// features, or both; each half is applied once, and a record whose event
// is not a JSON object is dead-lettered without touching the state.
func TestRecordFeedsFeaturesAndTaste(t *testing.T) {
	defs, err := features.Parse([]byte(`
features:
  - name: user_joins_1h
    entity: user
    sources: [viewing]
    filter: type == "join"
    aggregation: count
    window: {type: tumbling, size: 1h, emit: current}
    lateness: 1m
`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := features.NewSet(defs...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Group: DefaultGroup, UserSignals: "user-signals", Features: set, Metrics: pipeline.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	gkt := pipelinetest.Run(t, g)
	dlq := gkt.NewQueueTracker("user-signals.dlq")
	join := func(id string, at time.Duration) json.RawMessage {
		b, _ := json.Marshal(events.Viewing{Header: events.Header{EventID: id, EventTime: t0.Add(at), LivestreamID: "ls"}, Type: events.ViewingJoin, UserID: "u"})
		return b
	}
	both := sig("1", "u", "ls", events.SignalWatch, 0, "cards", []float32{1, 0})
	both.Source, both.Event = events.TopicViewing, join("1", 0)
	eventOnly := events.UserSignal{EventID: "2", EventTime: t0.Add(time.Second), UserID: "u", LivestreamID: "ls",
		Source: events.TopicViewing, Event: join("2", time.Second)}
	bad := eventOnly
	bad.EventID, bad.Event = "3", json.RawMessage(`"not an object"`)
	for _, s := range []events.UserSignal{both, eventOnly, bad} {
		send(gkt, s)
	}
	st := gkt.TableValue(goka.GroupTable(DefaultGroup), "u").(*tables.User)
	if n := set.Values(&st.Features, t0.Add(time.Minute))["user_joins_1h"]; n != 2 {
		t.Fatalf("user_joins_1h = %v, want 2 (both records' events)", n)
	}
	if st.Signals[events.SignalWatch] != 1 || len(st.Recent) != 1 {
		t.Fatalf("signals %v recent %+v: want the one signal applied once", st.Signals, st.Recent)
	}
	hdrs, _, _, ok := dlq.NextRawWithHeaders()
	if !ok || string(hdrs[pipeline.HeaderReason]) != "invalid:event" {
		t.Fatalf("dead letter reason %q, want invalid:event", hdrs[pipeline.HeaderReason])
	}
}
