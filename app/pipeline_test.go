package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/serving"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testBrokers selects the tier: LIVEFEED_TEST_BROKERS (real Kafka, started by
// deploy/kafka/kafka.sh in CI) or, when unset, the embedded kfake cluster.
func testBrokers() string { return os.Getenv("LIVEFEED_TEST_BROKERS") }

type running struct {
	app    *App
	url    string
	client *kgo.Client // a plain franz-go producer with default settings
	prefix string
}

// startPipeline runs topics, processors, views and HTTP like `livefeed demo`
// does, minus the simulator, on the tier's brokers with a fresh topic prefix.
func startPipeline(t *testing.T) *running {
	t.Helper()
	r, _ := startStack(t, Config{
		Brokers:     testBrokers(),
		DataDir:     t.TempDir(),
		TopicPrefix: fmt.Sprintf("t%d-", time.Now().UnixNano()),
	})
	cl := r.newProducer(t)
	t.Cleanup(cl.Close)
	r.client = cl
	return r
}

// startStack starts the stack for cfg and waits until processors and serving
// are ready. stop (also run at cleanup) stops it and waits; it is idempotent.
func startStack(t *testing.T, cfg Config) (r *running, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Partitions = 4
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateTopics(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := a.NewServing()
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	procErr := make(chan error, 1)
	serveErr := make(chan error, 1)
	go func() { procErr <- a.RunProcessors(ctx, ready) }()
	go func() { serveErr <- a.Serve(ctx, svc, ln) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for _, c := range []chan error{procErr, serveErr} {
			select {
			case err := <-c:
				if err != nil && ctx.Err() == nil {
					t.Errorf("component stopped with %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("component did not stop within 20s")
			}
		}
		a.Close()
	}
	t.Cleanup(stop)
	select {
	case <-ready:
	case err := <-procErr:
		t.Fatalf("processors stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("processors not ready after 60s")
	}
	r = &running{app: a, url: "http://" + ln.Addr().String(), prefix: cfg.TopicPrefix}
	r.waitFor(t, "serving ready", func() bool {
		resp, err := http.Get(r.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r, stop
}

func (r *running) produce(t *testing.T, topic string, key string, v any) {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.client.ProduceSync(ctx, &kgo.Record{Topic: r.prefix + topic, Key: []byte(key), Value: b}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (r *running) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *running) get(t *testing.T, path string, out any) int {
	t.Helper()
	resp, err := http.Get(r.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("decoding %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

type stream struct {
	id, seller, title, category string
	tags                        []string
}

var catalog = []stream{
	{"ls-cards-1", "s-1", "pokemon booster box break", "trading-cards", []string{"pokemon", "booster"}},
	{"ls-cards-2", "s-2", "psa graded pokemon cards", "trading-cards", []string{"pokemon", "graded"}},
	{"ls-shoes-1", "s-3", "vintage jordan sneakers", "sneakers", []string{"jordan", "sneakers"}},
	{"ls-shoes-2", "s-4", "nike dunk sneakers drop", "sneakers", []string{"nike", "sneakers"}},
	{"ls-watch-1", "s-5", "vintage rolex watches", "watches", []string{"rolex", "watches"}},
	{"ls-comic-1", "s-6", "marvel comics first edition", "comics", []string{"marvel", "comics"}},
}

// base is the event time the scripted tests start from; each test resets it
// to the recent past (resetBase) so every window evaluated now holds them.
var base time.Time

func resetBase() { base = time.Now().UTC().Add(-30 * time.Second).Truncate(time.Second) }

func hdr(n *int, ls string, at time.Duration) events.Header {
	*n++
	return events.Header{EventID: fmt.Sprintf("e-%d", *n), EventTime: base.Add(at), LivestreamID: ls}
}

// The pipeline test of the walking skeleton: events produced by a plain Kafka
// client flow through both processors into the tables, the views and the
// index; a user who engaged with trading cards is recommended a trading-card
// stream first; an ended stream leaves the recommendations; bad events go to
// the dead-letter topic while the partition keeps flowing.
func TestPipeline(t *testing.T) {
	r := startPipeline(t)
	resetBase()
	n := 0
	for _, s := range catalog {
		r.produce(t, events.TopicLivestreams, s.id, events.Livestream{Header: hdr(&n, s.id, 0), SellerID: s.seller,
			Title: s.title, Category: s.category, Tags: s.tags, Language: "en", Status: events.StatusLive})
	}
	// Streams exist before anyone engages with them. (Goka reads the four
	// topics independently: a signal handled before its stream's metadata
	// carries no vector and does not move the user's taste.)
	r.waitFor(t, "every stream live and embedded", func() bool {
		for _, s := range catalog {
			var lf serving.LivestreamFeatures
			if r.get(t, "/v1/features/livestream/"+s.id, &lf) != 200 || lf.Status != events.StatusLive || lf.EmbeddingModel == "" {
				return false
			}
		}
		return true
	})
	// A bad event between good ones.
	r.produce(t, events.TopicChat, "ls-cards-1", []byte(`{"event_id":"bad","livestream_id":"ls-cards-1"}`))

	// Everyone watches a little of everything; u-cards engages with cards.
	for i, s := range catalog {
		for j := range i + 1 {
			r.produce(t, events.TopicViewing, s.id, events.Viewing{Header: hdr(&n, s.id, time.Second), Type: events.ViewingJoin, UserID: fmt.Sprintf("viewer-%d", j)})
		}
	}
	r.produce(t, events.TopicViewing, "ls-cards-1", events.Viewing{Header: hdr(&n, "ls-cards-1", 2*time.Second), Type: events.ViewingJoin, UserID: "u-cards"})
	r.produce(t, events.TopicChat, "ls-cards-1", events.Chat{Header: hdr(&n, "ls-cards-1", 3*time.Second), UserID: "u-cards", Text: "charizard please"})
	r.produce(t, events.TopicAuctions, "ls-cards-1", events.Auction{Header: hdr(&n, "ls-cards-1", 4*time.Second), AuctionID: "a-1", Type: events.AuctionBid, UserID: "u-cards", Amount: 25, Currency: "USD"})
	r.produce(t, events.TopicAuctions, "ls-cards-1", events.Auction{Header: hdr(&n, "ls-cards-1", 5*time.Second), AuctionID: "a-1", Type: events.AuctionSold, UserID: "u-cards", Amount: 25, Currency: "USD"})

	// Wait until every event went through both processors.
	r.waitFor(t, "all events processed", func() bool {
		for i, s := range catalog {
			want := i + 1
			if s.id == "ls-cards-1" {
				want++
			}
			var lf serving.LivestreamFeatures
			// Goka reads the four topics independently: metadata may come after viewing.
			if r.get(t, "/v1/features/livestream/"+s.id, &lf) != 200 || lf.ViewersNow != want || lf.Status != events.StatusLive {
				return false
			}
			// The auction topic is read independently of viewing too: the
			// popularity ranking below needs ls-cards-1's bid and sale.
			if s.id == "ls-cards-1" && (lf.Features["bids_5m"] != 1 || lf.Features["gmv_1h"] != 25) {
				return false
			}
		}
		var uf serving.UserFeatures
		return r.get(t, "/v1/features/user/u-cards", &uf) == 200 && len(uf.Recent) == 1 &&
			uf.Signals["watch"]+uf.Signals["chat"]+uf.Signals["bid"]+uf.Signals["buy"] == 4
	})

	var rec serving.Response
	r.waitFor(t, "taste-based recommendations for u-cards", func() bool {
		rec = serving.Response{}
		return r.get(t, "/v1/recommendations?user_id=u-cards&k=3", &rec) == http.StatusOK &&
			rec.Strategy == "taste" && len(rec.Results) == 3
	})
	if rec.Results[0].Category != "trading-cards" {
		t.Fatalf("u-cards top recommendation %+v, want a trading-cards stream", rec.Results[0])
	}

	// Filters: category set, min viewers, excluded sellers.
	var f serving.Response
	if code := r.get(t, "/v1/recommendations?user_id=u-cards&k=10&category=sneakers,watches&min_viewers=4&exclude_sellers=s-4", &f); code != 200 {
		t.Fatalf("filtered query: %d", code)
	}
	for _, res := range f.Results {
		if (res.Category != "sneakers" && res.Category != "watches") || res.ViewersNow < 4 || res.SellerID == "s-4" {
			t.Fatalf("filter violated: %+v", res)
		}
	}
	if len(f.Results) != 1 || f.Results[0].LivestreamID != "ls-watch-1" {
		t.Fatalf("filtered results %+v, want only ls-watch-1", f.Results)
	}

	// Unknown users get the most engaging live streams.
	var pop serving.Response
	r.get(t, "/v1/recommendations?user_id=nobody&k=2", &pop)
	// ls-cards-1 has bids and a sale, ls-comic-1 the most viewers.
	if pop.Strategy != "popular" || len(pop.Results) != 2 || pop.Results[0].LivestreamID != "ls-cards-1" ||
		pop.Results[1].LivestreamID != "ls-comic-1" || pop.Results[0].Score < pop.Results[1].Score {
		t.Fatalf("popular %+v", pop)
	}

	// Feature lookups.
	var lf serving.LivestreamFeatures
	r.waitFor(t, "features of ls-cards-1", func() bool {
		lf = serving.LivestreamFeatures{}
		return r.get(t, "/v1/features/livestream/ls-cards-1", &lf) == 200 && lf.Features["gmv_1h"] == 25
	})
	if lf.ViewersNow != 2 || lf.Features["chat_1m"] != 1 || lf.Features["bids_5m"] != 1 || lf.EmbeddingModel == "" {
		t.Fatalf("livestream features %+v", lf)
	}
	var uf serving.UserFeatures
	if r.get(t, "/v1/features/user/u-cards", &uf) != 200 || !uf.HasTaste || uf.Categories["trading-cards"] <= 0 {
		t.Fatalf("user features %+v", uf)
	}

	// Text search through the embedding model.
	resp, err := http.Post(r.url+"/v1/search", "application/json", strings.NewReader(`{"text":"vintage jordan sneakers","k":1}`))
	if err != nil {
		t.Fatal(err)
	}
	var sr serving.Response
	_ = json.NewDecoder(resp.Body).Decode(&sr)
	resp.Body.Close()
	if len(sr.Results) != 1 || sr.Results[0].LivestreamID != "ls-shoes-1" {
		t.Fatalf("text search %+v", sr)
	}

	// The top stream ends: it leaves the recommendations.
	top := rec.Results[0]
	r.produce(t, events.TopicLivestreams, top.LivestreamID, events.Livestream{Header: hdr(&n, top.LivestreamID, 20*time.Second), SellerID: top.SellerID,
		Title: top.Title, Category: top.Category, Language: "en", Status: events.StatusEnded})
	r.waitFor(t, "ended stream to leave recommendations", func() bool {
		rec = serving.Response{}
		if r.get(t, "/v1/recommendations?user_id=u-cards&k=10", &rec) != 200 {
			return false
		}
		for _, res := range rec.Results {
			if res.LivestreamID == top.LivestreamID {
				return false
			}
		}
		return true
	})

	// The bad event is in the dead-letter topic with its reason.
	dlq := r.prefix + string(pipeline.DLQ("chat"))
	cons, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...), kgo.ConsumeTopics(dlq), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fetches := cons.PollFetches(ctx)
	if err := fetches.Err0(); err != nil {
		t.Fatal(err)
	}
	recs := fetches.Records()
	if len(recs) != 1 || string(recs[0].Key) != "ls-cards-1" {
		t.Fatalf("dead letters %v", recs)
	}
	var reason string
	for _, h := range recs[0].Headers {
		if h.Key == pipeline.HeaderReason {
			reason = string(h.Value)
		}
	}
	if reason != "invalid:event_time" {
		t.Fatalf("dead letter reason %q", reason)
	}
}

func TestAPIBadRequests(t *testing.T) {
	r := startPipeline(t)
	cases := []struct{ method, path, body string }{
		{"GET", "/v1/recommendations", ""},
		{"GET", "/v1/recommendations?user_id=u&k=0", ""},
		{"GET", "/v1/recommendations?user_id=u&k=abc", ""},
		{"GET", "/v1/recommendations?user_id=u&min_viewers=lots", ""},
		{"GET", "/v1/recommendations?user_id=u&min.unknown_feature=1", ""},
		{"GET", "/v1/recommendations?user_id=u&status=paused", ""},
		{"GET", "/v1/recommendations?user_id=u&colour=red", ""},
		{"POST", "/v1/search", "{"},
		{"POST", "/v1/search", `{"k":5}`},
		{"POST", "/v1/search", `{"vector":[1,0],"text":"x"}`},
		{"POST", "/v1/search", `{"vector":[1,0],"k":100000}`},
		{"POST", "/v1/search", `{"vector":[1,0],"surprise":true}`},
		{"POST", "/v1/search", `{"vector":[1,0],"filter":{"ranges":[{"field":"viewers_now"}]}}`},
		{"GET", "/v1/features/planet/p-1", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, r.url+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || err != nil || e.Error == "" {
			t.Errorf("%s %s %s: status %d, error %q (%v), want 400 with a JSON error", c.method, c.path, c.body, resp.StatusCode, e.Error, err)
		}
	}
	for _, path := range []string{"/v1/features/livestream/" + url.PathEscape("no such stream"), "/v1/features/seller/nobody", "/v1/features/user/nobody"} {
		if code := r.get(t, path, nil); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
	if code := r.get(t, "/v1/features/livestream/x?at=yesterday", nil); code != http.StatusBadRequest {
		t.Errorf("bad at: %d, want 400", code)
	}
}

func (r *running) newProducer(t *testing.T) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.app.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}
