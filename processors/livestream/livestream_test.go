package livestream

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/models/testmodel"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/pipeline/pipelinetest"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

var topics = Topics{Livestreams: "livestreams", Viewing: "viewing", Chat: "chat", Auctions: "auctions", UserSignals: "user-signals"}

type harness struct {
	gkt     *tester.Tester
	metrics *pipeline.Metrics
	table   goka.Table
}

func newHarness(t *testing.T, emb models.Embedder) *harness {
	t.Helper()
	return newRoutedHarness(t, emb, nil)
}

func newRoutedHarness(t *testing.T, emb models.Embedder, routes []Route) *harness {
	t.Helper()
	feats, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		t.Fatal(err)
	}
	m := pipeline.NewMetrics(prometheus.NewRegistry())
	cfg := Config{Group: DefaultGroup, Topics: topics, Features: feats, Metrics: m, Routes: routes}
	if emb != nil {
		cfg.Embedder = emb
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gkt := pipelinetest.Run(t, g)
	return &harness{gkt: gkt, metrics: m, table: Table(DefaultGroup)}
}

func (h *harness) send(topic goka.Stream, key string, v any) {
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	h.gkt.Consume(string(topic), key, b)
}

func (h *harness) state(t *testing.T, key string) *tables.Livestream {
	t.Helper()
	v, _ := h.gkt.TableValue(h.table, key).(*tables.Livestream)
	if v == nil {
		t.Fatalf("no state for %s", key)
	}
	return v
}

func hdr(id, ls string, at time.Duration) events.Header {
	return events.Header{EventID: id, EventTime: t0.Add(at), LivestreamID: ls}
}

func meta(id string, at time.Duration, status events.Status, title string) events.Livestream {
	return events.Livestream{Header: hdr(id, "ls-1", at), SellerID: "s-1", Title: title, Category: "trading-cards",
		Tags: []string{"pokemon"}, Language: "en", Status: status}
}

// testEmbedder loads the real hugot embedder on the small generated
// BERT-style test model.
func testEmbedder(t *testing.T) models.Embedder {
	t.Helper()
	dir := t.TempDir()
	if err := testmodel.Write(dir, testmodel.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	e, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestMetadataViewersAndWindows(t *testing.T) {
	emb := testEmbedder(t)
	h := newHarness(t, emb)
	h.send(topics.Livestreams, "ls-1", meta("e1", 0, events.StatusLive, "pokemon booster break"))
	for i, u := range []string{"u1", "u2", "u3"} {
		h.send(topics.Viewing, "ls-1", events.Viewing{Header: hdr(fmt.Sprint("v", i), "ls-1", time.Second), Type: events.ViewingJoin, UserID: u})
	}
	h.send(topics.Viewing, "ls-1", events.Viewing{Header: hdr("v9", "ls-1", 2*time.Second), Type: events.ViewingLeave, UserID: "u2"})
	for i := range 4 {
		h.send(topics.Chat, "ls-1", events.Chat{Header: hdr(fmt.Sprint("c", i), "ls-1", 3*time.Second), UserID: "u1", Text: "nice"})
	}
	h.send(topics.Auctions, "ls-1", events.Auction{Header: hdr("a1", "ls-1", 4*time.Second), AuctionID: "a", Type: events.AuctionBid, UserID: "u1", Amount: 10, Currency: "USD"})
	h.send(topics.Auctions, "ls-1", events.Auction{Header: hdr("a2", "ls-1", 5*time.Second), AuctionID: "a", Type: events.AuctionSold, UserID: "u1", Amount: 12, Currency: "USD"})

	st := h.state(t, "ls-1")
	if st.Status != events.StatusLive || st.Title != "pokemon booster break" || !st.LiveSince.Equal(t0) {
		t.Fatalf("metadata %+v", st)
	}
	if st.ViewersNow() != 2 {
		t.Fatalf("viewers %d, want 2 (%v)", st.ViewersNow(), st.Viewers)
	}
	feats, _ := features.NewSet(features.LivestreamDefaults()...)
	v := feats.Values(&st.Features, t0.Add(10*time.Second))
	if v["chat_1m"] != 4 || v["bids_5m"] != 1 || v["gmv_1h"] != 12 || v["sold_1h"] != 1 || v["joins_5m"] != 3 {
		t.Fatalf("features %v", v)
	}
	if st.EmbeddingModel != emb.Version() || len(st.Embedding) != emb.Dim() || st.EmbeddedText != ContentText(st) {
		t.Fatalf("embedding %v %d %q", st.EmbeddingModel, len(st.Embedding), st.EmbeddedText)
	}

	// Viewers silent for longer than the timeout expire in event time.
	h.send(topics.Viewing, "ls-1", events.Viewing{Header: hdr("v10", "ls-1", 10*time.Minute), Type: events.ViewingHeartbeat, UserID: "u3"})
	if st := h.state(t, "ls-1"); st.ViewersNow() != 1 || st.Viewers[tables.ViewerKey("u3")] == 0 {
		t.Fatalf("after expiry viewers %v", st.Viewers)
	}
}

func TestEmbedsOnlyWhenTextChanges(t *testing.T) {
	h := newHarness(t, testEmbedder(t))
	embeds := func() float64 { return testutil.ToFloat64(h.metrics.Embeddings) }
	h.send(topics.Livestreams, "ls-1", meta("e1", 0, events.StatusScheduled, "pokemon cards"))
	first := append([]float32(nil), h.state(t, "ls-1").Embedding...)
	h.send(topics.Livestreams, "ls-1", meta("e2", time.Second, events.StatusLive, "pokemon cards"))
	if embeds() != 1 {
		t.Fatalf("status change re-embedded: %v embeddings", embeds())
	}
	h.send(topics.Livestreams, "ls-1", meta("e3", 2*time.Second, events.StatusLive, "vintage sneakers"))
	if embeds() != 2 {
		t.Fatalf("title change not embedded: %v embeddings", embeds())
	}
	if models.Dot(first, h.state(t, "ls-1").Embedding) > 0.999 {
		t.Fatal("a new title kept the old vector")
	}
	// An older metadata event arriving late does not overwrite newer metadata.
	h.send(topics.Livestreams, "ls-1", meta("e0", -time.Minute, events.StatusScheduled, "old title"))
	if st := h.state(t, "ls-1"); st.Title != "vintage sneakers" || st.Status != events.StatusLive {
		t.Fatalf("late metadata applied: %+v", st)
	}
}

func TestSignalsAreEnrichedAndUserKeyed(t *testing.T) {
	h := newHarness(t, testEmbedder(t))
	signals := h.gkt.NewQueueTracker(string(topics.UserSignals))
	h.send(topics.Livestreams, "ls-1", meta("e1", 0, events.StatusLive, "pokemon booster"))
	h.send(topics.Viewing, "ls-1", events.Viewing{Header: hdr("v1", "ls-1", time.Second), Type: events.ViewingJoin, UserID: "u7"})
	h.send(topics.Auctions, "ls-1", events.Auction{Header: hdr("a1", "ls-1", 2*time.Second), AuctionID: "a", Type: events.AuctionSold, UserID: "u8", Amount: 30, Currency: "USD"})
	want := []struct {
		key  string
		kind events.SignalKind
	}{{"u7", events.SignalWatch}, {"u8", events.SignalBuy}}
	for _, w := range want {
		key, v, ok := signals.Next()
		if !ok {
			t.Fatalf("missing signal for %s", w.key)
		}
		sig := v.(*events.UserSignal)
		if key != w.key || sig.Kind != w.kind || sig.Category != "trading-cards" || sig.SellerID != "s-1" || len(sig.Embedding) == 0 {
			t.Fatalf("signal %s %+v", key, sig)
		}
	}
	if _, _, ok := signals.Next(); ok {
		t.Fatal("unexpected extra signal")
	}
}

// A user event sends its user one record: the signal, carrying the event
// itself when a user feature reads its source; an event that makes no
// signal but feeds a user feature goes alone. Other entities get enriched
// events on their own topics.
func TestUserRecordCarriesTheEventForUserFeatures(t *testing.T) {
	h := newRoutedHarness(t, nil, []Route{
		{Entity: "user", KeyField: "user_id", Topic: topics.UserSignals, Sources: []string{events.TopicViewing, events.TopicChat}},
		{Entity: "seller", KeyField: "seller_id", Topic: "features-seller", Sources: []string{events.TopicAuctions}},
	})
	signals := h.gkt.NewQueueTracker(string(topics.UserSignals))
	sellers := h.gkt.NewQueueTracker("features-seller")
	h.send(topics.Livestreams, "ls-1", meta("e1", 0, events.StatusLive, "pokemon booster"))
	join := events.Viewing{Header: hdr("v1", "ls-1", time.Second), Type: events.ViewingJoin, UserID: "u7"}
	leave := events.Viewing{Header: hdr("v2", "ls-1", 2*time.Second), Type: events.ViewingLeave, UserID: "u7"}
	sold := events.Auction{Header: hdr("a1", "ls-1", 3*time.Second), AuctionID: "a", Type: events.AuctionSold, UserID: "u8", Amount: 30, Currency: "USD"}
	raw := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, v := range []any{join, leave, sold} {
		switch v.(type) {
		case events.Auction:
			h.send(topics.Auctions, "ls-1", v)
		default:
			h.send(topics.Viewing, "ls-1", v)
		}
	}
	want := []struct {
		key, source, event string
		kind               events.SignalKind
	}{
		{"u7", events.TopicViewing, raw(join), events.SignalWatch},
		{"u7", events.TopicViewing, raw(leave), ""},
		{"u8", "", "", events.SignalBuy},
	}
	for _, w := range want {
		key, v, ok := signals.Next()
		if !ok {
			t.Fatalf("missing record for %s (%q)", w.key, w.kind)
		}
		sig := v.(*events.UserSignal)
		if key != w.key || sig.Kind != w.kind || sig.Source != w.source || string(sig.Event) != w.event ||
			sig.Category != "trading-cards" || sig.SellerID != "s-1" || sig.LivestreamID != "ls-1" {
			t.Fatalf("record %s %+v (event %s), want %+v", key, sig, sig.Event, w)
		}
		if err := sig.Validate(); err != nil {
			t.Fatalf("record %s: %v", key, err)
		}
	}
	if _, _, ok := signals.Next(); ok {
		t.Fatal("unexpected extra user record")
	}
	key, v, ok := sellers.Next()
	if en, _ := v.(*events.Enriched); !ok || key != "s-1" || en.Source != events.TopicAuctions || string(en.Event) != raw(sold) {
		t.Fatalf("seller record %s %+v", key, v)
	}
	if _, _, ok := sellers.Next(); ok {
		t.Fatal("unexpected extra seller record")
	}
}

func TestBadInputGoesToDeadLetterAndPartitionKeepsFlowing(t *testing.T) {
	h := newHarness(t, nil)
	dlq := h.gkt.NewQueueTracker(string(pipeline.DLQ(topics.Chat)))
	bad := []struct {
		key    string
		value  []byte
		reason string
	}{
		{"ls-1", []byte("{not json"), "malformed"},
		{"ls-1", []byte(`{"event_id":"x","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls-1"}`), "invalid:user_id"},
		{"ls-1", []byte(`{"event_id":"x","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls-2","user_id":"u"}`), "invalid:key"},
		{"ls-1", []byte(`{"event_id":"x","livestream_id":"ls-1","user_id":"u"}`), "invalid:event_time"},
		{"ls-1", []byte{}, "malformed"},
	}
	for _, b := range bad {
		h.send(topics.Chat, b.key, b.value)
	}
	for _, b := range bad {
		hdrs, key, raw, ok := dlq.NextRawWithHeaders()
		if !ok {
			t.Fatalf("dead letter for %q missing", b.value)
		}
		if key != b.key || string(raw) != string(b.value) || string(hdrs[pipeline.HeaderReason]) != b.reason || len(hdrs[pipeline.HeaderError]) == 0 {
			t.Fatalf("dead letter %s %q reason %q error %q, want reason %q", key, raw, hdrs[pipeline.HeaderReason], hdrs[pipeline.HeaderError], b.reason)
		}
	}
	if got := testutil.ToFloat64(h.metrics.DeadLetters.WithLabelValues("chat", "malformed")); got != 2 {
		t.Fatalf("malformed counted %v, want 2", got)
	}
	// The partition keeps flowing: a good event after the bad ones is applied.
	h.send(topics.Chat, "ls-1", events.Chat{Header: hdr("ok", "ls-1", 0), UserID: "u1", Text: "hi"})
	if st := h.state(t, "ls-1"); st.Events != 1 {
		t.Fatalf("events %d after bad input, want 1", st.Events)
	}
}

func TestEndedStreamDropsViewers(t *testing.T) {
	h := newHarness(t, nil)
	h.send(topics.Livestreams, "ls-1", meta("e1", 0, events.StatusLive, "x"))
	h.send(topics.Viewing, "ls-1", events.Viewing{Header: hdr("v1", "ls-1", time.Second), Type: events.ViewingJoin, UserID: "u1"})
	h.send(topics.Livestreams, "ls-1", meta("e2", time.Minute, events.StatusEnded, "x"))
	h.send(topics.Viewing, "ls-1", events.Viewing{Header: hdr("v2", "ls-1", 61*time.Second), Type: events.ViewingHeartbeat, UserID: "u1"})
	st := h.state(t, "ls-1")
	if st.Status != events.StatusEnded || st.ViewersNow() != 0 || !st.EndedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ended state %+v", st)
	}
}

// An event read before its stream's livestream record (a backlog read out of
// order across topics) still counts for the stream, and it is counted and
// logged as one that entities keyed by seller or category do not get; once
// the metadata is known, events are not counted.
func TestEventBeforeMetadataIsCounted(t *testing.T) {
	h := newHarness(t, nil)
	before := func() float64 {
		return testutil.ToFloat64(h.metrics.BeforeMetadata.WithLabelValues(string(DefaultGroup), string(topics.Auctions)))
	}
	bid := func(id string, at time.Duration) events.Auction {
		return events.Auction{Header: hdr(id, "ls-1", at), AuctionID: "a", Type: events.AuctionBid, UserID: "u8", Amount: 30, Currency: "USD"}
	}
	h.send(topics.Auctions, "ls-1", bid("a1", 2*time.Second))
	if got := before(); got != 1 {
		t.Fatalf("events before metadata = %v, want 1", got)
	}
	h.send(topics.Livestreams, "ls-1", meta("e1", 0, events.StatusLive, "pokemon booster"))
	h.send(topics.Auctions, "ls-1", bid("a2", 3*time.Second))
	if got := before(); got != 1 {
		t.Fatalf("events before metadata after the metadata = %v, want still 1", got)
	}
	if st := h.state(t, "ls-1"); st.SellerID != "s-1" {
		t.Fatalf("seller %q after the metadata", st.SellerID)
	}
}
