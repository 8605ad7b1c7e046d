package entity

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
)

func near(t *testing.T, what string, got []float32, want []float32) {
	t.Helper()
	w := models.Normalized(want)
	if len(got) != len(w) || math.Abs(float64(models.Dot(got, w))-1) > 1e-5 {
		t.Fatalf("%s: got %v, want the direction of %v", what, got, want)
	}
}

func TestSellerEmbedding(t *testing.T) {
	s := &Seller{Signals: "seller-signals"}
	if err := s.defaults(); err != nil {
		t.Fatal(err)
	}
	if s.ContentHalfLife != 7*24*time.Hour || s.BuyerHalfLife != 30*24*time.Hour || s.BuyerWeight != 0.3 {
		t.Fatalf("defaults %+v", s)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	content := func(ls string, at time.Duration, v []float32, model string) *events.SellerSignal {
		return &events.SellerSignal{SellerID: "s-1", Kind: events.SellerContent, LivestreamID: ls, EventTime: t0.Add(at), Vector: v, Model: model}
	}
	buyer := func(u string, at time.Duration, v []float32) *events.SellerSignal {
		return &events.SellerSignal{SellerID: "s-1", Kind: events.SellerBuyer, LivestreamID: "ls-1", UserID: u, EventTime: t0.Add(at), Vector: v}
	}
	st := &tables.Entity{ID: "s-1"}

	// Cold start: buyers only → their taste.
	if got := s.Apply(st, buyer("u-1", 0, []float32{0, 0, 2})); got != SellerOK {
		t.Fatal(got)
	}
	near(t, "buyers only", st.Embedding, []float32{0, 0, 1})
	if st.EmbeddingModel != "" {
		t.Fatalf("buyers-only model %q", st.EmbeddingModel)
	}

	// Content of two streams (unnormalised on the wire: each counts as a
	// unit vector), equally recent: their mean direction, blended 0.7/0.3
	// with the buyers'.
	st = &tables.Entity{ID: "s-1"}
	s.Apply(st, content("ls-1", 0, []float32{3, 0, 0}, "m1"))
	near(t, "content only", st.Embedding, []float32{1, 0, 0})
	if st.EmbeddingModel != "m1" {
		t.Fatalf("model %q", st.EmbeddingModel)
	}
	s.Apply(st, content("ls-2", 0, []float32{0, 1, 0}, "m1"))
	c := models.Normalized([]float32{1, 1, 0})
	near(t, "two streams", st.Embedding, c)
	s.Apply(st, buyer("u-1", 0, []float32{0, 0, 1}))
	near(t, "blend", st.Embedding, []float32{0.7 * c[0], 0.7 * c[1], 0.3})

	// Decay: a stream a content half-life newer weighs twice as much.
	st = &tables.Entity{ID: "s-1"}
	s.Apply(st, content("ls-1", 0, []float32{1, 0, 0}, "m1"))
	s.Apply(st, content("ls-2", s.ContentHalfLife, []float32{0, 1, 0}, "m1"))
	near(t, "decayed content", st.Embedding, []float32{1, 2, 0})
	// Order does not matter.
	st2 := &tables.Entity{ID: "s-1"}
	s.Apply(st2, content("ls-2", s.ContentHalfLife, []float32{0, 1, 0}, "m1"))
	s.Apply(st2, content("ls-1", 0, []float32{1, 0, 0}, "m1"))
	near(t, "decayed content, reversed", st2.Embedding, []float32{1, 2, 0})

	// A model change starts the content over; another model's dimension
	// leaves the buyers out.
	s.Apply(st, buyer("u-1", 0, []float32{0, 0, 1}))
	s.Apply(st, content("ls-3", time.Hour, []float32{0, 0, 0, 5}, "m2"))
	near(t, "new model", st.Embedding, []float32{0, 0, 0, 1})
	if st.ContentModel != "m2" || st.EmbeddingModel != "m2" {
		t.Fatalf("models %q %q", st.ContentModel, st.EmbeddingModel)
	}

	// Pinned model: another model's vectors are ignored.
	pinned := &Seller{Signals: "x", Model: "m1", BuyerWeight: -1}
	if err := pinned.defaults(); err != nil {
		t.Fatal(err)
	}
	st = &tables.Entity{ID: "s-1"}
	if got := pinned.Apply(st, content("ls-1", 0, []float32{1, 0}, "m2")); got != SellerOtherModel || st.Embedding != nil {
		t.Fatalf("other model: %s %v", got, st.Embedding)
	}
	// Weight 0 (negative): content only, even with buyers.
	pinned.Apply(st, content("ls-1", 0, []float32{1, 0}, "m1"))
	pinned.Apply(st, buyer("u-1", 0, []float32{0, 1}))
	near(t, "buyer weight 0", st.Embedding, []float32{1, 0})

	for _, bad := range []Seller{{}, {Signals: "x", BuyerWeight: 1.5}, {Signals: "x", BuyerHalfLife: -1}} {
		if err := bad.defaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestSellerStateCodec(t *testing.T) {
	s := &Seller{Signals: "x"}
	_ = s.defaults()
	st := &tables.Entity{ID: "s-1", Events: 3}
	s.Apply(st, &events.SellerSignal{SellerID: "s-1", Kind: events.SellerContent, LivestreamID: "ls-1",
		EventTime: time.Unix(1e9, 0).UTC(), Vector: []float32{1, 2}, Model: "m1"})
	raw, err := tables.EntityCodec{}.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tables.EntityCodec{}.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*tables.Entity)
	near(t, "decoded", got.Embedding, []float32{1, 2})
	if got.ContentModel != "m1" || got.Content.Weight != 1 || got.Events != 3 {
		t.Fatalf("decoded %+v", got)
	}
	// A value from before the seller embedding still decodes, without one.
	old, err := tables.EntityCodec{}.Decode([]byte(`{"id":"s-2","events":4,"late_dropped":0}`))
	if err != nil || old.(*tables.Entity).Embedding != nil || old.(*tables.Entity).Events != 4 {
		t.Fatalf("legacy value: %+v %v", old, err)
	}
}

func TestSellerSweepKeeps(t *testing.T) {
	s := &Seller{Signals: "x"}
	_ = s.defaults()
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := &tables.Entity{ID: "s-1"}
	var marks features.Watermarks
	if s.keeps(st, &marks) {
		t.Fatal("kept an entity without an embedding")
	}
	s.Apply(st, &events.SellerSignal{SellerID: "s-1", Kind: events.SellerBuyer, LivestreamID: "ls-1", UserID: "u",
		EventTime: t0, Vector: []float32{1}})
	marks.Observe(events.TopicChat, t0.Add(24*time.Hour))
	if !s.keeps(st, &marks) {
		t.Fatal("swept a seller with a recent signal")
	}
	marks.Observe(events.TopicChat, t0.Add(4*s.BuyerHalfLife+time.Hour))
	if s.keeps(st, &marks) {
		t.Fatal("kept a seller whose last signal is four half-lives old")
	}
	if (*Seller)(nil).keeps(st, &marks) {
		t.Fatal("nil seller config keeps")
	}
}

// The seller group consumes seller-signals: good signals build the
// embedding in its table; bad ones (undecodable, invalid, keyed by another
// seller) go to the dead-letter topic and leave the state alone.
func TestSellerGroupConsumesSignals(t *testing.T) {
	set, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	const signals goka.Stream = "seller-signals"
	g, err := New(Config{Group: "seller", Input: "features-seller", Features: set.ForEntity("seller"),
		Seller: &Seller{Signals: signals}, FlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	gkt := pipelinetest.Run(t, g)
	dlq := gkt.NewQueueTracker(string(pipeline.DLQ(signals)))

	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	send := func(key string, v any) {
		b, ok := v.([]byte)
		if !ok {
			b, _ = json.Marshal(v)
		}
		gkt.Consume(string(signals), key, b)
	}
	send("s-1", events.SellerSignal{SellerID: "s-1", Kind: events.SellerContent, LivestreamID: "ls-1", EventTime: t0,
		Vector: events.Vector{1, 0}, Model: "m"})
	send("s-1", events.SellerSignal{SellerID: "s-1", Kind: events.SellerBuyer, LivestreamID: "ls-1", UserID: "u",
		EventTime: t0, Vector: events.Vector{0, 1}})
	st, _ := gkt.TableValue(goka.GroupTable("seller"), "s-1").(*tables.Entity)
	if st == nil {
		t.Fatal("no state for s-1")
	}
	near(t, "group", st.Embedding, []float32{0.7, 0.3})

	for key, bad := range map[string]any{
		"s-2": []byte(`{"seller_id":`),
		"s-3": events.SellerSignal{SellerID: "s-3", Kind: "like", LivestreamID: "ls-1", EventTime: t0, Vector: events.Vector{1}},
		"s-4": events.SellerSignal{SellerID: "s-1", Kind: events.SellerContent, LivestreamID: "ls-1", EventTime: t0,
			Vector: events.Vector{1, 0}, Model: "m"},
		"s-5": []byte{},
	} {
		send(key, bad)
		if _, _, ok := dlq.Next(); !ok {
			t.Errorf("%s: not dead-lettered", key)
		}
		if v := gkt.TableValue(goka.GroupTable("seller"), key); v != nil {
			t.Errorf("%s: state from a bad signal: %+v", key, v)
		}
	}
	if st2, _ := gkt.TableValue(goka.GroupTable("seller"), "s-1").(*tables.Entity); st2 == nil || models.Dot(st2.Embedding, st.Embedding) < 0.9999 {
		t.Fatalf("s-1 changed by a signal keyed s-4: %+v", st2)
	}
}
