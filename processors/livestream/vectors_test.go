package livestream

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/pipeline/pipelinetest"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	vectorsTopic  goka.Stream = "livestream-vectors"
	audienceTopic goka.Stream = "audience-signals"
	model                     = "test-model-1"
)

// calls counts Embed calls of the embedder it wraps.
type calls struct {
	models.Embedder
	n atomic.Int64
}

func (c *calls) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	c.n.Add(1)
	return c.Embedder.Embed(ctx, texts)
}

// newAsyncHarness runs the group with asynchronous embedding; an embedder
// is configured too, to prove the callbacks never call it.
func newAsyncHarness(t *testing.T, weight float64) (*harness, *calls) {
	h, emb, _ := newAsyncHarnessMetrics(t, weight)
	return h, emb
}

func newAsyncHarnessMetrics(t *testing.T, weight float64) (*harness, *calls, *VectorMetrics) {
	t.Helper()
	feats, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		t.Fatal(err)
	}
	emb := &calls{Embedder: testEmbedder(t)}
	reg := prometheus.NewRegistry()
	m, vm := pipeline.NewMetrics(reg), NewVectorMetrics(reg)
	g, err := New(Config{Group: DefaultGroup, Topics: topics, Features: feats, Metrics: m, Embedder: emb, VectorMetrics: vm,
		Vectors: vectorsTopic, Audience: audienceTopic, Blend: Blend{Model: model, AudienceWeight: weight}})
	if err != nil {
		t.Fatal(err)
	}
	gkt := pipelinetest.Run(t, g)
	return &harness{gkt: gkt, metrics: m, table: Table(DefaultGroup)}, emb, vm
}

// vectorFor is the worker's record for a metadata event of meta().
func vectorFor(ev events.Livestream, vec []float32, modelVersion string) events.LivestreamVector {
	return events.LivestreamVector{
		LivestreamID: ev.LivestreamID, Model: modelVersion, Vector: vec, EventTime: ev.EventTime,
		TextHash: events.TextHash(events.ContentText(ev.Title, ev.Category, ev.Tags)),
	}
}

var (
	vecA = []float32{1, 0, 0, 0}
	vecB = []float32{0, 1, 0, 0}
	vecC = []float32{0, 0, 1, 0}
)

func TestVectorsServedOnlyForTheCurrentText(t *testing.T) {
	h, emb, vm := newAsyncHarnessMetrics(t, 0.3)
	outcome := func(o string) float64 { return testutil.ToFloat64(vm.Vectors.WithLabelValues(o)) }
	m1 := meta("e1", 0, events.StatusLive, "pokemon cards")
	m2 := meta("e2", time.Minute, events.StatusLive, "vintage sneakers")

	// A vector that arrives before its metadata is kept, then served when
	// the metadata comes.
	h.send(vectorsTopic, "ls-1", vectorFor(m1, vecA, model))
	if st := h.state(t, "ls-1"); len(st.Embedding) != 0 || outcome(VectorPending) != 1 {
		t.Fatalf("vector without metadata served: %v", st.Embedding)
	}
	h.send(topics.Livestreams, "ls-1", m1)
	st := h.state(t, "ls-1")
	if models.Dot(st.Embedding, vecA) < 0.999 || st.EmbeddingModel != model || st.EmbeddedText != ContentText(st) {
		t.Fatalf("served %v model %q text %q", st.Embedding, st.EmbeddingModel, st.EmbeddedText)
	}

	// Title change: the old vector stays served until the new one comes.
	h.send(topics.Livestreams, "ls-1", m2)
	if st := h.state(t, "ls-1"); models.Dot(st.Embedding, vecA) < 0.999 {
		t.Fatalf("title change dropped the vector: %v", st.Embedding)
	}
	h.send(vectorsTopic, "ls-1", vectorFor(m2, vecB, model))
	if st := h.state(t, "ls-1"); models.Dot(st.Embedding, vecB) < 0.999 || outcome(VectorServed) != 1 {
		t.Fatalf("new title's vector not served: %v", st.Embedding)
	}
	// A vector of the old title arriving late (a retry) never overwrites.
	h.send(vectorsTopic, "ls-1", vectorFor(m1, vecA, model))
	if st := h.state(t, "ls-1"); models.Dot(st.Embedding, vecB) < 0.999 || outcome(VectorStale) != 1 {
		t.Fatalf("stale vector applied: %v", st.Embedding)
	}
	// Another model's vectors are ignored.
	h.send(vectorsTopic, "ls-1", vectorFor(m2, vecC, "old-model"))
	if st := h.state(t, "ls-1"); models.Dot(st.Embedding, vecB) < 0.999 || outcome(VectorOtherModel) != 1 {
		t.Fatalf("other model's vector applied: %v", st.Embedding)
	}
	if emb.n.Load() != 0 {
		t.Fatalf("the callback embedded %d times in asynchronous mode", emb.n.Load())
	}
	// User signals carry the content vector.
	signals := h.gkt.NewQueueTracker(string(topics.UserSignals))
	h.send(topics.Viewing, "ls-1", events.Viewing{Header: hdr("v1", "ls-1", 2*time.Minute), Type: events.ViewingJoin, UserID: "u1"})
	_, v, ok := signals.Next()
	if !ok || models.Dot(v.(*events.UserSignal).Embedding, vecB) < 0.999 {
		t.Fatalf("signal %v", v)
	}
}

func TestAudienceBlendsWithContent(t *testing.T) {
	h, _ := newAsyncHarness(t, 0.5)
	m1 := meta("e1", 0, events.StatusLive, "pokemon cards")
	// Cold start without content: the audience alone.
	h.send(audienceTopic, "ls-1", events.AudienceSignal{EventID: "a1", EventTime: t0, LivestreamID: "ls-1", UserID: "u1", Taste: []float32{0, 2, 0, 0}})
	if st := h.state(t, "ls-1"); models.Dot(st.Embedding, vecB) < 0.999 {
		t.Fatalf("audience-only vector %v", st.Embedding)
	}
	h.send(topics.Livestreams, "ls-1", m1)
	h.send(vectorsTopic, "ls-1", vectorFor(m1, vecA, model))
	st := h.state(t, "ls-1")
	// w = 0.5: halfway between content and audience.
	if a, b := models.Dot(st.Embedding, vecA), models.Dot(st.Embedding, vecB); a < 0.70 || a > 0.71 || b < 0.70 || b > 0.71 {
		t.Fatalf("blend %v (cos to content %v, audience %v)", st.Embedding, a, b)
	}
	// Signals still carry the pure content vector.
	signals := h.gkt.NewQueueTracker(string(topics.UserSignals))
	h.send(topics.Chat, "ls-1", events.Chat{Header: hdr("c1", "ls-1", time.Second), UserID: "u2", Text: "hi"})
	if _, v, ok := signals.Next(); !ok || models.Dot(v.(*events.UserSignal).Embedding, vecA) < 0.999 {
		t.Fatalf("signal %v", v)
	}
}

func TestBadVectorsAndAudienceSignalsAreDeadLettered(t *testing.T) {
	h, _ := newAsyncHarness(t, 0)
	dlq := h.gkt.NewQueueTracker(string(pipeline.DLQ(vectorsTopic)))
	m1 := meta("e1", 0, events.StatusLive, "x")
	bad := vectorFor(m1, []float32{1, 0}, model)
	bad.TextHash = "short"
	h.send(vectorsTopic, "ls-1", bad)
	h.send(vectorsTopic, "ls-2", vectorFor(m1, vecA, model)) // key differs
	for _, reason := range []string{"invalid:text_hash", "invalid:key"} {
		hdrs, _, _, ok := dlq.NextRawWithHeaders()
		if !ok || string(hdrs[pipeline.HeaderReason]) != reason {
			t.Fatalf("dead letter %q, want %q", hdrs[pipeline.HeaderReason], reason)
		}
	}
	adlq := h.gkt.NewQueueTracker(string(pipeline.DLQ(audienceTopic)))
	h.send(audienceTopic, "ls-1", []byte(`{"event_id":"a","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls-1","user_id":"u"}`))
	if hdrs, _, _, ok := adlq.NextRawWithHeaders(); !ok || string(hdrs[pipeline.HeaderReason]) != "invalid:taste" {
		t.Fatalf("audience dead letter %q", hdrs[pipeline.HeaderReason])
	}
}

// A vector for a stream that is gone (swept) and older than the retention
// does not bring the stream back.
func TestVectorForSweptStreamIsIgnored(t *testing.T) {
	h, _ := newAsyncHarness(t, 0)
	// ls-2 moves the partition's watermark three hours on.
	h.send(topics.Chat, "ls-2", events.Chat{Header: hdr("c1", "ls-2", 3*time.Hour), UserID: "u", Text: "hi"})
	h.send(vectorsTopic, "ls-1", vectorFor(meta("e1", 0, events.StatusLive, "x"), vecA, model))
	if v := h.gkt.TableValue(h.table, "ls-1"); v != nil {
		t.Fatalf("an expired vector created state %+v", v)
	}
	// A recent one (its metadata still to come) is kept.
	h.send(vectorsTopic, "ls-3", vectorFor(events.Livestream{Header: hdr("e3", "ls-3", 3*time.Hour), Title: "y", Category: "c"}, vecA, model))
	if st := h.state(t, "ls-3"); len(st.Content) == 0 {
		t.Fatal("a recent pending vector was dropped")
	}
}
