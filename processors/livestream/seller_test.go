package livestream

import (
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/pipeline/pipelinetest"
	"github.com/lovoo/goka"
)

const sellersTopic goka.Stream = "seller-signals"

func newSellerHarness(t *testing.T) *harness {
	t.Helper()
	feats, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Group: DefaultGroup, Topics: topics, Features: feats,
		Vectors: vectorsTopic, Audience: audienceTopic, Sellers: sellersTopic, Blend: Blend{Model: model}})
	if err != nil {
		t.Fatal(err)
	}
	gkt := pipelinetest.Run(t, g)
	return &harness{gkt: gkt, table: Table(DefaultGroup)}
}

// A stream's content goes to its seller once per served vector: when the
// vector is served at once, and when a vector that overtook its metadata is
// served by the metadata's arrival; never for a pending vector, a repeated
// metadata event or a stream whose seller is not known yet.
func TestServedContentGoesToTheSeller(t *testing.T) {
	h := newSellerHarness(t)
	sellers := h.gkt.NewQueueTracker(string(sellersTopic))
	next := func(what string) *events.SellerSignal {
		t.Helper()
		k, v, ok := sellers.Next()
		if !ok {
			t.Fatalf("%s: no seller signal", what)
		}
		s := v.(*events.SellerSignal)
		if k != s.SellerID || s.Kind != events.SellerContent || s.Model != model || s.Validate() != nil {
			t.Fatalf("%s: signal %q %+v", what, k, s)
		}
		return s
	}
	none := func(what string) {
		t.Helper()
		if _, v, ok := sellers.Next(); ok {
			t.Fatalf("%s: unexpected seller signal %+v", what, v)
		}
	}
	m1 := meta("e1", 0, events.StatusLive, "pokemon cards")
	h.send(topics.Livestreams, "ls-1", m1)
	none("metadata without a vector")
	h.send(vectorsTopic, "ls-1", vectorFor(m1, vecA, model))
	if s := next("served vector"); s.SellerID != "s-1" || s.LivestreamID != "ls-1" ||
		models.Dot(s.Vector, vecA) < 0.999 || !s.EventTime.Equal(m1.EventTime) {
		t.Fatalf("served vector: %+v", s)
	}
	// Repeated metadata (a status change) serves nothing new.
	h.send(topics.Livestreams, "ls-1", meta("e2", time.Second, events.StatusLive, "pokemon cards"))
	none("repeated metadata")

	// The new title's vector overtakes its metadata: pending, nothing sent;
	// the metadata then serves it and it is sent.
	m3 := meta("e3", time.Minute, events.StatusLive, "vintage sneakers")
	h.send(vectorsTopic, "ls-1", vectorFor(m3, vecB, model))
	none("pending vector")
	h.send(topics.Livestreams, "ls-1", m3)
	if s := next("vector served by its metadata"); models.Dot(s.Vector, vecB) < 0.999 || !s.EventTime.Equal(m3.EventTime) {
		t.Fatalf("vector served by its metadata: %+v", s)
	}
	none("after")

	// Another stream's vector before any metadata: no seller known yet.
	m4 := meta("e4", 0, events.StatusLive, "marvel comics")
	m4.LivestreamID = "ls-2"
	h.send(vectorsTopic, "ls-2", vectorFor(m4, vecC, model))
	none("vector of a stream without metadata")
}

func TestSellersNeedVectors(t *testing.T) {
	feats, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Group: DefaultGroup, Topics: topics, Features: feats, Sellers: sellersTopic}); err == nil {
		t.Fatal("a sellers topic without the vectors topic was accepted")
	}
}
