package embedding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/models/testmodel"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := NewCache(2)
	c.Put("a", []float32{1})
	c.Put("b", []float32{2})
	if _, ok := c.Get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.Put("c", []float32{3}) // evicts b
	if _, ok := c.Get("b"); ok {
		t.Error("b should have been evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.Get(k); !ok {
			t.Errorf("%s missing", k)
		}
	}
	if c.Len() != 2 {
		t.Errorf("len %d, want 2", c.Len())
	}
	c.Put("c", []float32{4})
	if v, _ := c.Get("c"); v[0] != 4 || c.Len() != 2 {
		t.Errorf("update: %v, len %d", v, c.Len())
	}
}

// counting wraps an embedder and records each call's texts; fail makes
// calls containing that text fail.
type counting struct {
	models.Embedder
	mu    sync.Mutex
	calls [][]string
	fail  string
	delay time.Duration
}

func (c *counting) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	c.mu.Lock()
	c.calls = append(c.calls, append([]string(nil), texts...))
	c.mu.Unlock()
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for _, t := range texts {
		if c.fail != "" && strings.Contains(t, c.fail) {
			return nil, errors.New("model refused " + c.fail)
		}
	}
	return c.Embedder.Embed(ctx, texts)
}

func (c *counting) Calls() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]string(nil), c.calls...)
}

func testEmbedder(t testing.TB) models.Embedder {
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

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func metaRecord(t *testing.T, n int, id, title string) *kgo.Record {
	t.Helper()
	v, err := json.Marshal(events.Livestream{
		Header:   events.Header{EventID: fmt.Sprintf("e-%d", n), EventTime: t0.Add(time.Duration(n) * time.Second), LivestreamID: id},
		SellerID: "s-1", Title: title, Category: "trading-cards", Language: "en", Status: events.StatusLive,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: "livestreams", Key: []byte(id), Value: v, Partition: 1, Offset: int64(n)}
}

func newWorker(t *testing.T, emb models.Embedder) (*Worker, *Metrics) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	w, err := New(Config{Brokers: []string{"unused:9092"}, Group: "g", Input: "livestreams", Output: "vectors",
		DLQ: "embedding.dlq", Embedder: emb, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return w, m
}

// One model call per batch, repeated texts (in the batch or cached) cost
// nothing, bad records are dead-lettered with their reason, and every
// vector carries what the livestream group checks.
func TestProcessBatchesCachesAndDeadLetters(t *testing.T) {
	emb := &counting{Embedder: testEmbedder(t), fail: "cursed"}
	w, m := newWorker(t, emb)
	recs := []*kgo.Record{
		metaRecord(t, 1, "ls-1", "pokemon booster box"),
		metaRecord(t, 2, "ls-2", "vintage sneakers"),
		metaRecord(t, 3, "ls-3", "pokemon booster box"), // same text as ls-1
		{Topic: "livestreams", Key: []byte("ls-4"), Value: []byte("{not json")},
		metaRecord(t, 5, "ls-5", "cursed title"),
	}
	wrongKey := metaRecord(t, 6, "ls-6", "rolex")
	wrongKey.Key = []byte("ls-other")
	recs = append(recs, wrongKey)

	out := w.Process(context.Background(), recs)
	if len(out) != len(recs) {
		t.Fatalf("%d outputs for %d records", len(out), len(recs))
	}
	calls := emb.Calls()
	// The batch call fails (the cursed text), then the three distinct texts
	// are retried one by one.
	if len(calls) != 4 || len(calls[0]) != 3 {
		t.Fatalf("model calls %v, want one batch of 3 distinct texts then 3 single retries", calls)
	}
	reasons := map[string]string{}
	vectors := map[string]events.LivestreamVector{}
	for _, r := range out {
		switch r.Topic {
		case "embedding.dlq":
			var reason string
			for _, h := range r.Headers {
				if h.Key == pipeline.HeaderReason {
					reason = string(h.Value)
				}
			}
			reasons[string(r.Key)] = reason
		case "vectors":
			var v events.LivestreamVector
			if err := events.Decode(r.Value, &v); err != nil {
				t.Fatalf("vector record invalid: %v", err)
			}
			if string(r.Key) != v.LivestreamID {
				t.Errorf("key %s for %s", r.Key, v.LivestreamID)
			}
			vectors[v.LivestreamID] = v
		default:
			t.Fatalf("record to %s", r.Topic)
		}
	}
	want := map[string]string{"ls-4": "malformed", "ls-5": "embed", "ls-other": "invalid:key"}
	for k, r := range want {
		if reasons[k] != r {
			t.Errorf("dead letter %s: reason %q, want %q (all: %v)", k, reasons[k], r, reasons)
		}
	}
	if len(vectors) != 3 {
		t.Fatalf("vectors for %d streams, want 3", len(vectors))
	}
	v1, v3 := vectors["ls-1"], vectors["ls-3"]
	if v1.TextHash != v3.TextHash || models.Dot(v1.Vector, v3.Vector) < 0.9999 {
		t.Error("the same text should give the same hash and vector")
	}
	if v1.TextHash != events.TextHash(events.ContentText("pokemon booster box", "trading-cards", nil)) {
		t.Error("text hash is not the hash of the stream's content text")
	}
	if v1.Model != emb.Version() || !v1.EventTime.Equal(t0.Add(time.Second)) {
		t.Errorf("model %q time %s", v1.Model, v1.EventTime)
	}

	// A second batch of known titles makes no model call.
	out = w.Process(context.Background(), []*kgo.Record{metaRecord(t, 7, "ls-7", "vintage sneakers"), metaRecord(t, 8, "ls-1", "pokemon booster box")})
	if len(emb.Calls()) != 4 || len(out) != 2 {
		t.Errorf("cached texts called the model: %v", emb.Calls()[4:])
	}
	if got := testutil.ToFloat64(m.CacheHits); got != 3 {
		t.Errorf("cache hits %v, want 3 (one in the first batch, two in the second)", got)
	}
	if got := testutil.ToFloat64(m.DeadLetters.WithLabelValues("embed")); got != 1 {
		t.Errorf("embed dead letters %v", got)
	}
}

// collect returns as soon as MaxBatch records are there, and otherwise no
// later than MaxDelay after the first record.
func TestCollectBoundsSizeAndDelay(t *testing.T) {
	w, _ := newWorker(t, testEmbedder(t))
	w.cfg.MaxBatch, w.cfg.MaxDelay = 4, 50*time.Millisecond
	rec := &kgo.Record{}

	// A source with plenty: one batch of exactly MaxBatch, without waiting.
	var asked []int
	full := func(ctx context.Context, n int) []*kgo.Record {
		asked = append(asked, n)
		return []*kgo.Record{rec, rec, rec}[:min(3, n)]
	}
	start := time.Now()
	got := w.collect(context.Background(), full)
	if len(got) != 4 || time.Since(start) > 40*time.Millisecond {
		t.Errorf("full source: %d records after %s (asked %v)", len(got), time.Since(start), asked)
	}
	if len(asked) != 2 || asked[1] != 1 {
		t.Errorf("asked %v, want [4 1]", asked)
	}

	// A trickle: one record, then nothing; the batch closes at MaxDelay.
	first := true
	trickle := func(ctx context.Context, n int) []*kgo.Record {
		if first {
			first = false
			return []*kgo.Record{rec}
		}
		<-ctx.Done()
		return nil
	}
	start = time.Now()
	got = w.collect(context.Background(), trickle)
	took := time.Since(start)
	if len(got) != 1 || took < 50*time.Millisecond || took > time.Second {
		t.Errorf("trickle: %d records after %s", len(got), took)
	}

	// Cancelled while waiting for the first record: nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := w.collect(ctx, trickleEmpty); len(got) != 0 {
		t.Errorf("cancelled: %d records", len(got))
	}
}

func trickleEmpty(ctx context.Context, n int) []*kgo.Record { <-ctx.Done(); return nil }
