package client_test

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/client"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/servingtest"
)

// catalogue: cosine similarity to the test user's taste, viewers and bids
// chosen so that filters and formulas pick different streams. Only c1 has
// bids; b1 has sales.
var catalogue = []servingtest.Stream{
	{ID: "a1", Seller: "A", Category: "cards", Sim: 0.99, Viewers: 1, Minutes: 10},
	{ID: "a2", Seller: "A", Category: "cards", Sim: 0.98, Viewers: 100, Minutes: 10},
	{ID: "b1", Seller: "B", Category: "cards", Sim: 0.90, Viewers: 50, Minutes: 10, Sold: 2},
	{ID: "c1", Seller: "C", Category: "shoes", Sim: 0.50, Viewers: 1000, Minutes: 10, Bids: 7},
}

const token = "feed-token"

func ids(r *api.Response) []string {
	out := make([]string, len(r.Results))
	for i, res := range r.Results {
		out[i] = res.LivestreamID
	}
	return out
}

// textEmbedder is the server's text model in these tests: a word-hash
// embedding of Dim dimensions, in which "cards" points along e₀ (the
// test user's taste). Its first `stall` calls wait for their context to
// end, so the server answers 503 on cue.
type textEmbedder struct {
	calls atomic.Int64
	stall int64
}

func (e *textEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if e.calls.Add(1) <= e.stall {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := make([][]float32, len(texts))
	for i, text := range texts {
		v := make([]float32, servingtest.Dim)
		for _, w := range strings.Fields(text) {
			if w == "cards" {
				v[0]++
				continue
			}
			h := fnv.New32a()
			h.Write([]byte(w))
			v[1+h.Sum32()%(servingtest.Dim-1)]++
		}
		var n float64
		for _, x := range v {
			n += float64(x * x)
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(max(n, 1e-12)))
		}
		out[i] = v
	}
	return out, nil
}
func (e *textEmbedder) Dim() int        { return servingtest.Dim }
func (e *textEmbedder) Version() string { return "test-words" }
func (e *textEmbedder) Close() error    { return nil }

func start(t *testing.T, emb *textEmbedder, mutate func(*serving.Config)) *servingtest.Env {
	t.Helper()
	env := servingtest.Start(t, func(c *serving.Config) {
		c.APIToken = token
		c.Embedder = emb
		if mutate != nil {
			mutate(c)
		}
	})
	env.PutStreams(t, catalogue...)
	env.PutUser(t, "u1", []string{"cards", "cards", "shoes"}, "a1", "a2", "c1")
	env.PutSeller(t, "A", 3)
	return env
}

func newClient(t *testing.T, opts client.Options) *client.Client {
	t.Helper()
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Every call of the client against a real serving.Service: typed requests
// in, typed answers out, typed errors.
func TestClientAgainstServing(t *testing.T) {
	env := start(t, &textEmbedder{}, nil)
	ctx := context.Background()
	c := newClient(t, client.Options{BaseURL: env.URL, Token: token})

	// Recommendations: the taste k-NN, then filtered and re-ranked.
	r, err := c.Recommendations(ctx, api.RecommendationsRequest{UserID: "u1", K: 10})
	if err != nil || r.Strategy != "taste" || !slices.Equal(ids(r), []string{"a1", "a2", "b1", "c1"}) {
		t.Fatalf("recommendations: %v %+v", err, r)
	}
	r, err = c.Recommendations(ctx, api.RecommendationsRequest{UserID: "u1", K: 3, Explain: true, MaxPerSeller: 1,
		Formula: "similarity * log(1 + viewers_now)", Exclude: []string{"b1"},
		Filter: api.Filter{Categories: []string{"cards", "shoes"}, Ranges: []api.Range{api.AtLeast(api.AttrViewersNow, 1)}}})
	if err != nil || !slices.Equal(ids(r), []string{"a2", "c1"}) || r.Results[0].Similarity == nil || r.Explain == nil ||
		r.Explain.Ranking.DroppedByDiversity != 1 || !slices.Equal(r.Explain.Filter.ExcludeStreams, []string{"b1"}) || len(r.Explain.Partitions) != 4 {
		t.Fatalf("ranked recommendations: %v %v %+v", err, ids(r), r.Explain)
	}
	// A range on a feature with no value (no bids: max_bid_5m is null)
	// does not match.
	r, err = c.Recommendations(ctx, api.RecommendationsRequest{UserID: "u1", Filter: api.Filter{Ranges: []api.Range{api.AtMost("max_bid_5m", 10)}}})
	if err != nil || !slices.Equal(ids(r), []string{"c1"}) {
		t.Fatalf("max_bid_5m ≤ 10: %v %v", err, ids(r))
	}
	if _, ok := r.Results[0].Features["max_bid_5m"]; !ok {
		t.Fatalf("c1's features lack max_bid_5m: %v", r.Results[0].Features)
	}
	// ExcludeSeen leaves out u1's a1, a2 and c1.
	if r, err = c.Recommendations(ctx, api.RecommendationsRequest{UserID: "u1", ExcludeSeen: true}); err != nil || !slices.Equal(ids(r), []string{"b1"}) {
		t.Fatalf("exclude seen: %v %v", err, ids(r))
	}
	// Unknown users get the popular fallback.
	if r, err = c.Recommendations(ctx, api.RecommendationsRequest{UserID: "nobody", K: 1}); err != nil || r.Strategy != "popular" || ids(r)[0] != "c1" {
		t.Fatalf("popular: %v %+v", err, r)
	}

	// Search: a vector, a text, a vector of the wrong dimension.
	if r, err = c.SearchVector(ctx, servingtest.Vector(0.5), 1, nil); err != nil || r.Strategy != "vector" || !slices.Equal(ids(r), []string{"c1"}) {
		t.Fatalf("vector search: %v %+v", err, r)
	}
	if r, err = c.SearchText(ctx, "cards", 2, &api.Filter{Categories: []string{"cards"}}); err != nil || r.Strategy != "text" || !slices.Equal(ids(r), []string{"a1", "a2"}) {
		t.Fatalf("text search: %v %+v", err, r)
	}
	_, err = c.SearchVector(ctx, []float32{1, 2}, 5, nil)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || !slices.Equal(ae.ExpectedDimensions, []int{servingtest.Dim}) ||
		ae.ReceivedDimensions != 2 || !strings.Contains(ae.Message, "2 dimensions") || ae.Attempts != 1 {
		t.Fatalf("wrong dimension: %v (%+v)", err, ae)
	}

	// Named queries: listed with typed parameters, run with typed
	// arguments.
	qs, err := c.Queries(ctx)
	if err != nil || len(qs) != 3 || qs[0].Name != "for_you" {
		t.Fatalf("queries: %v %+v", err, qs)
	}
	var decay *api.Param
	for i, p := range qs[0].Params {
		if p.Name == "decay_minutes" {
			decay = &qs[0].Params[i]
		}
	}
	if decay == nil || decay.Type != api.ParamNumber || decay.Default == nil || decay.Default.Raw() != "60" {
		t.Fatalf("for_you's decay_minutes: %+v", decay)
	}
	r, err = c.Query(ctx, "for_you", api.QueryRequest{UserID: "u1", Explain: true,
		Params: map[string]api.Arg{"category": api.Strings("cards", "shoes"), "min_viewers": api.Number(2)}})
	if err != nil || r.Query != "for_you" || !slices.Equal(ids(r), []string{"b1"}) || r.Explain == nil {
		t.Fatalf("for_you: %v %v %+v", err, ids(r), r)
	}
	if r, err = c.Query(ctx, "hot_auctions", api.QueryRequest{UserID: "u1", K: 5}); err != nil || !slices.Equal(ids(r), []string{"c1"}) {
		t.Fatalf("hot_auctions: %v %v", err, ids(r))
	}
	_, err = c.Query(ctx, "for_you", api.QueryRequest{UserID: "u1", Params: map[string]api.Arg{"colour": api.String("red")}})
	if !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(ae.Message, `unknown parameter "colour"`) {
		t.Fatalf("unknown parameter: %v", err)
	}
	if _, err = c.Query(ctx, "nope", api.QueryRequest{UserID: "u1"}); !client.IsNotFound(err) {
		t.Fatalf("unknown query: %v", err)
	}

	// Feature lookups, typed values.
	ls, err := c.Livestream(ctx, "a1", client.Lookup{Embedding: true})
	if err != nil || ls.Status != api.StatusLive || ls.ViewersNow != 1 || len(ls.Embedding) != servingtest.Dim || ls.Category != "cards" {
		t.Fatalf("livestream a1: %v %+v", err, ls)
	}
	if v := ls.Values["max_bid_5m"]; v.Kind != api.Null {
		t.Errorf("a1 max_bid_5m = %+v, want null", v)
	}
	if _, ok := ls.Features["max_bid_5m"]; ok {
		t.Errorf("a1 features carry max_bid_5m: %v", ls.Features)
	}
	if v := ls.Values["top_chatters_1h"]; v.Kind != api.List && v.Kind != api.Top {
		t.Errorf("a1 top_chatters_1h = %+v, want a list", v)
	}
	ls, err = c.Livestream(ctx, "c1", client.Lookup{At: env.Now})
	if err != nil || ls.Values["max_bid_5m"].Kind != api.Num || ls.Values["max_bid_5m"].Number != 10 || ls.Features["bids_5m"] != 7 {
		t.Fatalf("livestream c1: %v %+v", err, ls)
	}
	// At a time when the bids have left the 5-minute window, their max is
	// null again.
	if ls, err = c.Livestream(ctx, "c1", client.Lookup{At: env.Now.Add(time.Hour)}); err != nil || ls.Values["max_bid_5m"].Kind != api.Null {
		t.Fatalf("c1 an hour later: %v %+v", err, ls.Values["max_bid_5m"])
	}
	u, err := c.User(ctx, "u1", client.Lookup{Embedding: true})
	if err != nil || !u.HasTaste || len(u.Taste) != servingtest.Dim || len(u.Recent) != 3 || u.Signals["watch"] != 3 {
		t.Fatalf("user: %v %+v", err, u)
	}
	top := u.Values["user_top_categories_7d"]
	if top.Kind != api.Top || len(top.Top) != 2 || top.Top[0] != (api.KeyCount{Key: "cards", Count: 2}) || u.Features["user_top_categories_7d"] != 2 {
		t.Fatalf("user_top_categories_7d = %+v (%v)", top, u.Features["user_top_categories_7d"])
	}
	if recent := u.Values["user_recent_streams"]; recent.Kind != api.List || len(recent.Items) != 3 {
		t.Fatalf("user_recent_streams = %+v", recent)
	}
	seller, err := c.Entity(ctx, "seller", "A", client.Lookup{})
	if err != nil || seller.Features["seller_sold_7d"] != 3 || seller.Values["seller_sell_through_7d"].Number != 1 || !seller.HasEmbedding {
		t.Fatalf("seller: %v %+v", err, seller)
	}
	if _, err = c.Livestream(ctx, "nope", client.Lookup{}); !client.IsNotFound(err) {
		t.Fatalf("unknown stream: %v", err)
	}
	if _, err = c.Entity(ctx, "planet", "x", client.Lookup{}); !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(ae.Message, "unknown entity") {
		t.Fatalf("unknown entity: %v", err)
	}

	// Without the token: 401, not retried.
	anon := newClient(t, client.Options{BaseURL: env.URL})
	if _, err = anon.User(ctx, "u1", client.Lookup{}); !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || ae.Attempts != 1 {
		t.Fatalf("without a token: %v", err)
	}
}

// A 503 is retried with backoff, a bounded number of times, and the
// context bounds the whole call. The server answers 503 when a text's
// embedding outlasts its time limit (serving.Config.RequestTimeout).
func TestClientRetries503(t *testing.T) {
	emb := &textEmbedder{stall: 1}
	env := start(t, emb, func(c *serving.Config) { c.RequestTimeout = 300 * time.Millisecond })
	ctx := context.Background()

	// One stalled attempt, then an answer.
	c := newClient(t, client.Options{BaseURL: env.URL, Token: token, Backoff: 10 * time.Millisecond})
	r, err := c.SearchText(ctx, "cards", 1, nil)
	if err != nil || !slices.Equal(ids(r), []string{"a1"}) || emb.calls.Load() != 2 {
		t.Fatalf("after one 503: %v %+v (%d calls)", err, r, emb.calls.Load())
	}

	// Every attempt stalls: 1 + Retries attempts, then the 503.
	emb.calls.Store(0)
	emb.stall = 100
	c = newClient(t, client.Options{BaseURL: env.URL, Token: token, Retries: 2, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	_, err = c.SearchText(ctx, "cards", 1, nil)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable || ae.Attempts != 3 || emb.calls.Load() != 3 ||
		!strings.Contains(ae.Message, "time limit") {
		t.Fatalf("always 503: %v (%+v, %d calls)", err, ae, emb.calls.Load())
	}

	// The context ends during the backoff: the call returns then, with
	// both the last answer and the context's error.
	c = newClient(t, client.Options{BaseURL: env.URL, Token: token, Retries: 5, Backoff: 10 * time.Second, MaxBackoff: 10 * time.Second})
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	begin := time.Now()
	_, err = c.SearchText(cctx, "cards", 1, nil)
	if took := time.Since(begin); !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ae) || ae.StatusCode != 503 || took > 3*time.Second {
		t.Fatalf("context during backoff: %v after %v", err, took)
	}

	// Options.Timeout bounds one attempt: shorter than the server's limit,
	// the client gives up first (no answer, so no retry).
	c = newClient(t, client.Options{BaseURL: env.URL, Token: token, Timeout: 50 * time.Millisecond, Retries: -1})
	if _, err = c.SearchText(ctx, "cards", 1, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("attempt timeout: %v", err)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []client.Options{{}, {BaseURL: "localhost:8080"}, {BaseURL: "ftp://x"},
		{BaseURL: "http://x", Backoff: time.Second, MaxBackoff: time.Millisecond}} {
		if _, err := client.New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := client.New(client.Options{BaseURL: "http://localhost:8080/"}); err != nil {
		t.Fatal(err)
	}
}

// The client imports nothing of Kafka, goka or Prometheus: a feed service
// that calls livefeed does not inherit its dependencies.
func TestClientImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/livefeed/livefeed/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/livefeed/livefeed/api" && dep != "github.com/livefeed/livefeed/client" {
			t.Errorf("client depends on %s", dep)
		}
	}
}
