package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
)

const testToken = "e2e-token"

// authGet GETs path with the bearer token (if any) and decodes a 200
// answer into out.
func (r *running) authGet(t *testing.T, path, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest("GET", r.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
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

const e2eQueries = `version: 1
queries:
  - name: top_viewed
    description: the most watched streams of some categories, one per seller, none the user saw
    params:
      - name: category
        type: strings
        required: true
    filter:
      category: $category
    formula: viewers_now + 0.001 * similarity
    k: 5
    max_per_seller: 1
    exclude_seen: true
`

// The serving API through the whole pipeline (events → processors →
// tables → views → index → HTTP) with a bearer token and a named-query
// file: a named query with explain=true, a formula on /v1/recommendations,
// and the open operational routes.
func TestServingAPIEndToEnd(t *testing.T) {
	dir := t.TempDir()
	qfile := filepath.Join(dir, "queries.yaml")
	if err := os.WriteFile(qfile, []byte(e2eQueries), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := startStack(t, Config{Brokers: testBrokers(), DataDir: dir, TopicPrefix: fmt.Sprintf("t%d-", time.Now().UnixNano()),
		QueriesFile: qfile, APIToken: testToken})
	r.client = r.newProducer(t)
	t.Cleanup(r.client.Close)
	resetBase()
	n := 0
	for _, s := range catalog {
		r.produce(t, events.TopicLivestreams, s.id, events.Livestream{Header: hdr(&n, s.id, 0), SellerID: s.seller,
			Title: s.title, Category: s.category, Tags: s.tags, Language: "en", Status: events.StatusLive})
	}
	r.waitFor(t, "every stream live and embedded", func() bool {
		for _, s := range catalog {
			var lf serving.LivestreamFeatures
			if r.authGet(t, "/v1/features/livestream/"+s.id, testToken, &lf) != 200 || lf.EmbeddingModel == "" {
				return false
			}
		}
		return true
	})
	// Stream i gets i+1 viewers; u-cards watches ls-cards-1 (one more).
	for i, s := range catalog {
		for j := range i + 1 {
			r.produce(t, events.TopicViewing, s.id, events.Viewing{Header: hdr(&n, s.id, time.Second), Type: events.ViewingJoin, UserID: fmt.Sprintf("viewer-%d", j)})
		}
	}
	r.produce(t, events.TopicViewing, "ls-cards-1", events.Viewing{Header: hdr(&n, "ls-cards-1", 2*time.Second), Type: events.ViewingJoin, UserID: "u-cards"})
	r.waitFor(t, "viewers counted and u-cards' taste", func() bool {
		for i, s := range catalog {
			want := i + 1
			if s.id == "ls-cards-1" {
				want++
			}
			var lf serving.LivestreamFeatures
			if r.authGet(t, "/v1/features/livestream/"+s.id, testToken, &lf) != 200 || lf.ViewersNow != want {
				return false
			}
		}
		var uf serving.UserFeatures
		return r.authGet(t, "/v1/features/user/u-cards", testToken, &uf) == 200 && uf.HasTaste && len(uf.Recent) == 1
	})

	// Without the token: 401; the operational routes stay open.
	if code := r.authGet(t, "/v1/queries/top_viewed?user_id=u-cards&category=sneakers", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", code)
	}
	if code := r.authGet(t, "/v1/queries/top_viewed?user_id=u-cards&category=sneakers", "wrong", nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		if code := r.authGet(t, p, "", nil); code != 200 {
			t.Fatalf("%s without a token: %d", p, code)
		}
	}

	// The named query from --queries, explained.
	var q serving.Response
	path := "/v1/queries/top_viewed?explain=true&user_id=u-cards&category=" + url.QueryEscape("trading-cards,sneakers")
	if code := r.authGet(t, path, testToken, &q); code != 200 {
		t.Fatalf("named query: %d", code)
	}
	got := make([]string, len(q.Results))
	for i, res := range q.Results {
		got[i] = res.LivestreamID
	}
	// ls-cards-1 (seen by u-cards) is out; the rest by viewers.
	if want := []string{"ls-shoes-2", "ls-shoes-1", "ls-cards-2"}; !slices.Equal(got, want) || q.Query != "top_viewed" || q.Strategy != "taste" {
		t.Fatalf("top_viewed: %v (%s, %s), want %v", got, q.Query, q.Strategy, want)
	}
	ex := q.Explain
	if ex == nil || len(ex.Partitions) != 4 || ex.Ranking == nil || ex.Ranking.Evaluated != 3 || ex.Fetched != 50 ||
		!slices.Contains(ex.Filter.ExcludeStreams, "ls-cards-1") || !slices.Equal(ex.Filter.Categories, []string{"trading-cards", "sneakers"}) {
		t.Fatalf("explain %+v", ex)
	}
	scanned := 0
	for _, p := range ex.Partitions {
		if !slices.Contains([]string{"exact", "none"}, p.Plan) || p.TookMS < 0 {
			t.Fatalf("partition %+v: a 6-stream index is scanned exactly", p)
		}
		scanned += p.Scanned
	}
	if scanned != q.Scanned || scanned < 3 {
		t.Fatalf("scanned %d per partitions, %d in the answer", scanned, q.Scanned)
	}
	if code := r.authGet(t, "/v1/queries/top_viewed?user_id=u-cards", testToken, nil); code != http.StatusBadRequest {
		t.Fatalf("missing required parameter: %d", code)
	}
	if code := r.authGet(t, "/v1/queries/for_you?user_id=u-cards", testToken, nil); code != http.StatusNotFound {
		t.Fatalf("a query not in the --queries file: %d", code)
	}

	// A formula on /v1/recommendations, explained.
	var rec serving.Response
	if code := r.authGet(t, "/v1/recommendations?user_id=u-cards&k=2&explain=true&formula=viewers_now", testToken, &rec); code != 200 {
		t.Fatalf("formula: %d", code)
	}
	if len(rec.Results) != 2 || rec.Results[0].LivestreamID != "ls-comic-1" || rec.Results[0].Score != 6 || rec.Results[0].Similarity == nil ||
		rec.Explain == nil || rec.Explain.Ranking.Formula != "viewers_now" || rec.Explain.Plan == "" {
		t.Fatalf("formula answer %+v", rec)
	}
	if strings.Contains(fmt.Sprint(rec), testToken) {
		t.Fatal("token in the answer")
	}
}
