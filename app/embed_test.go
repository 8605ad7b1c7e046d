package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/models/testmodel"
	"github.com/livefeed/livefeed/serving"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// gated is an embedder whose calls block until the gate opens (or their
// context ends): the model at its slowest.
type gated struct {
	models.Embedder
	gate    chan struct{}
	waiting atomic.Int64
}

func (g *gated) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Embedder.Embed(ctx, texts)
}

func loadTestModel(t *testing.T, seed int64) models.Embedder {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("test-seed-%d", seed))
	opts := testmodel.DefaultOptions()
	opts.Seed = seed
	if err := testmodel.Write(dir, opts); err != nil {
		t.Fatal(err)
	}
	e, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// search posts a text search. A 503 (the request's time limit passed while
// the model embedded the text: the pure-Go model on a busy 2-core box) is
// retried for up to a minute; any other status fails the test.
func (r *running) search(t *testing.T, text string, k int) serving.Response {
	t.Helper()
	body, _ := json.Marshal(serving.SearchRequest{Text: text, K: k})
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		resp, err := http.Post(r.url+"/v1/search", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out serving.Response
		code := resp.StatusCode
		if code == http.StatusOK {
			err = json.NewDecoder(resp.Body).Decode(&out)
		}
		resp.Body.Close()
		switch {
		case code == http.StatusOK && err == nil:
			return out
		case code == http.StatusOK:
			t.Fatal(err)
		case code != http.StatusServiceUnavailable || time.Now().After(deadline):
			t.Fatalf("search %q: status %d", text, code)
		}
	}
}

// While the model is stuck, engagement keeps flowing through the livestream
// group (viewers and chat features update); when the model comes back, the
// worker's vector makes the stream searchable by text.
func TestSlowEmbeddingDoesNotStallEngagement(t *testing.T) {
	emb := &gated{Embedder: loadTestModel(t, 1), gate: make(chan struct{})}
	r, _ := startStack(t, Config{Brokers: testBrokers(), DataDir: t.TempDir(), Embedder: emb,
		TopicPrefix: fmt.Sprintf("t%d-", time.Now().UnixNano())})
	cl := r.newProducer(t)
	t.Cleanup(cl.Close)
	r.client = cl
	resetBase()
	n := 0
	s := catalog[2] // vintage jordan sneakers
	r.produce(t, events.TopicLivestreams, s.id, events.Livestream{Header: hdr(&n, s.id, 0), SellerID: s.seller,
		Title: s.title, Category: s.category, Tags: s.tags, Language: "en", Status: events.StatusLive})
	r.waitFor(t, "the worker calling the model", func() bool { return emb.waiting.Load() > 0 })
	for i := range 5 {
		r.produce(t, events.TopicViewing, s.id, events.Viewing{Header: hdr(&n, s.id, time.Second), Type: events.ViewingJoin, UserID: fmt.Sprint("viewer-", i)})
		r.produce(t, events.TopicChat, s.id, events.Chat{Header: hdr(&n, s.id, 2*time.Second), UserID: fmt.Sprint("viewer-", i), Text: "hi"})
	}
	var lf serving.LivestreamFeatures
	r.waitFor(t, "viewers and chat counted while the model is stuck", func() bool {
		lf = serving.LivestreamFeatures{}
		return r.get(t, "/v1/features/livestream/"+s.id, &lf) == 200 && lf.ViewersNow == 5 && lf.Features["chat_1m"] == 5 &&
			lf.Status == events.StatusLive
	})
	if lf.EmbeddingModel != "" || emb.waiting.Load() == 0 {
		t.Fatalf("the stream has a vector (%q) although the model never answered", lf.EmbeddingModel)
	}

	close(emb.gate)
	r.waitFor(t, "the stream embedded by the worker", func() bool {
		lf = serving.LivestreamFeatures{}
		return r.get(t, "/v1/features/livestream/"+s.id, &lf) == 200 && lf.EmbeddingModel == emb.Version()
	})
	if res := r.search(t, "vintage jordan sneakers", 1); len(res.Results) != 1 || res.Results[0].LivestreamID != s.id {
		t.Fatalf("text search after embedding: %+v", res.Results)
	}
	m := r.app.Topology.Embedding.Metrics
	if testutil.ToFloat64(m.Embedded) < 1 || testutil.CollectAndCount(m.BatchSize) != 1 {
		t.Fatalf("worker metrics: embedded %v", testutil.ToFloat64(m.Embedded))
	}
}

// Titles become searchable through the worker; a title change re-embeds and
// the old title's vector is gone; a repeated title costs no model call.
func TestTitlesSearchableThroughTheWorker(t *testing.T) {
	r := startPipeline(t)
	resetBase()
	n := 0
	for _, s := range catalog {
		r.produce(t, events.TopicLivestreams, s.id, events.Livestream{Header: hdr(&n, s.id, 0), SellerID: s.seller,
			Title: s.title, Category: s.category, Tags: s.tags, Language: "en", Status: events.StatusLive})
	}
	r.waitFor(t, "every stream embedded", func() bool {
		for _, s := range catalog {
			var lf serving.LivestreamFeatures
			if r.get(t, "/v1/features/livestream/"+s.id, &lf) != 200 || lf.EmbeddingModel == "" {
				return false
			}
		}
		return true
	})
	if res := r.search(t, "vintage jordan sneakers", 1); res.Results[0].LivestreamID != "ls-shoes-1" {
		t.Fatalf("search: %+v", res.Results)
	}
	m := r.app.Topology.Embedding.Metrics
	embedded := testutil.ToFloat64(m.Embedded)

	// ls-watch-1 becomes a sneaker stream; ls-comic-1 repeats a known text.
	r.produce(t, events.TopicLivestreams, "ls-watch-1", events.Livestream{Header: hdr(&n, "ls-watch-1", time.Second), SellerID: "s-5",
		Title: "vintage jordan sneakers", Category: "sneakers", Tags: []string{"jordan", "sneakers"}, Language: "en", Status: events.StatusLive})
	// Same text, same vector: both sneaker streams score the same, so the
	// old title's vector is no longer served.
	r.waitFor(t, "the new title searchable", func() bool {
		res := r.search(t, "vintage jordan sneakers", 2)
		return len(res.Results) == 2 && res.Results[0].LivestreamID != res.Results[1].LivestreamID &&
			(res.Results[0].LivestreamID == "ls-watch-1" || res.Results[1].LivestreamID == "ls-watch-1") &&
			res.Results[0].Score-res.Results[1].Score < 1e-5
	})
	if got := testutil.ToFloat64(m.Embedded); got != embedded {
		t.Fatalf("a known text went to the model (%v → %v texts)", embedded, got)
	}
}

// A model change re-embeds every stream: the worker's consumer group is
// named after the model version, so a new model replays the metadata topic,
// and the livestream group takes the new model's vectors only.
func TestModelChangeReembeds(t *testing.T) {
	dir := t.TempDir()
	embA, embB := loadTestModel(t, 1), loadTestModel(t, 2)
	if embA.Version() == embB.Version() {
		t.Fatal("two test models with the same version")
	}
	resetBase()
	n := 0
	r, stop := startStack(t, Config{DataDir: dir, Embedder: embA})
	cl := r.newProducer(t)
	r.client = cl
	for _, s := range catalog {
		r.produce(t, events.TopicLivestreams, s.id, events.Livestream{Header: hdr(&n, s.id, 0), SellerID: s.seller,
			Title: s.title, Category: s.category, Tags: s.tags, Language: "en", Status: events.StatusLive})
	}
	allOf := func(r *running, version string) func() bool {
		return func() bool {
			for _, s := range catalog {
				var lf serving.LivestreamFeatures
				if r.get(t, "/v1/features/livestream/"+s.id, &lf) != 200 || lf.EmbeddingModel != version {
					return false
				}
			}
			return true
		}
	}
	r.waitFor(t, "every stream embedded by model A", allOf(r, embA.Version()))
	cl.Close()
	stop()

	r, stop = startStack(t, Config{DataDir: dir, Embedder: embB})
	defer stop()
	r.waitFor(t, "every stream re-embedded by model B", allOf(r, embB.Version()))
}

// A viewer's taste reaches the stream they join (user group →
// audience-signals → livestream group): the stream's served vector moves
// from its content toward its audience.
func TestAudienceMovesTheServedVector(t *testing.T) {
	r := startPipeline(t)
	resetBase()
	n := 0
	for _, s := range catalog {
		r.produce(t, events.TopicLivestreams, s.id, events.Livestream{Header: hdr(&n, s.id, 0), SellerID: s.seller,
			Title: s.title, Category: s.category, Tags: s.tags, Language: "en", Status: events.StatusLive})
	}
	vector := func(id string) []float32 {
		var lf serving.LivestreamFeatures
		if r.get(t, "/v1/features/livestream/"+id+"?embedding=true", &lf) != 200 {
			return nil
		}
		return lf.Embedding
	}
	r.waitFor(t, "streams embedded", func() bool { return len(vector("ls-watch-1")) > 0 && len(vector("ls-cards-1")) > 0 })
	content, cards := vector("ls-watch-1"), vector("ls-cards-1")

	// u-cards builds a trading-card taste, then starts watching ls-watch-1.
	r.produce(t, events.TopicViewing, "ls-cards-1", events.Viewing{Header: hdr(&n, "ls-cards-1", time.Second), Type: events.ViewingJoin, UserID: "u-cards"})
	r.produce(t, events.TopicChat, "ls-cards-1", events.Chat{Header: hdr(&n, "ls-cards-1", 2*time.Second), UserID: "u-cards", Text: "charizard"})
	r.waitFor(t, "u-cards' taste", func() bool {
		var uf serving.UserFeatures
		return r.get(t, "/v1/features/user/u-cards", &uf) == 200 && uf.Signals["watch"]+uf.Signals["chat"] == 2
	})
	r.produce(t, events.TopicViewing, "ls-watch-1", events.Viewing{Header: hdr(&n, "ls-watch-1", 3*time.Second), Type: events.ViewingJoin, UserID: "u-cards"})
	var served []float32
	r.waitFor(t, "ls-watch-1's served vector to blend in its audience", func() bool {
		served = vector("ls-watch-1")
		return len(served) > 0 && models.Dot(served, content) < 0.999
	})
	if models.Dot(served, cards) <= models.Dot(content, cards) {
		t.Fatalf("the audience (a trading-card fan) did not move ls-watch-1 toward trading cards: %.3f → %.3f",
			models.Dot(content, cards), models.Dot(served, cards))
	}
}
