package serving

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func ids(r Response) []string {
	out := make([]string, len(r.Results))
	for i, res := range r.Results {
		out[i] = res.LivestreamID
	}
	return out
}

// catalogue: taste similarity, viewers, minutes live and bids chosen so
// that the plain order, the formula order and the diversity cut differ.
var catalogue = []stream{
	{id: "a1", seller: "A", category: "cards", sim: 0.99, viewers: 1, minutes: 10},
	{id: "a2", seller: "A", category: "cards", sim: 0.98, viewers: 100, minutes: 10},
	{id: "b1", seller: "B", category: "cards", sim: 0.90, viewers: 50, minutes: 10},
	{id: "c1", seller: "C", category: "shoes", sim: 0.50, viewers: 1000, minutes: 10, bids: 7},
	{id: "d1", seller: "D", category: "shoes", sim: 0.95, viewers: 0, minutes: 10},
	{id: "e1", seller: "E", category: "shoes", sim: 0.80, viewers: 100, minutes: 240},
}

func TestRecommendationsRanking(t *testing.T) {
	env := startEnv(t, nil)
	env.putStreams(t, catalogue...)
	env.putUser(t, "u1", "b1")
	get := func(q string) Response {
		t.Helper()
		var r Response
		if code := env.do(t, call{path: "/v1/recommendations?user_id=u1&" + q}, &r); code != 200 {
			t.Fatalf("%s: status %d", q, code)
		}
		return r
	}
	// Defaults: the index's order by similarity, scores are similarities.
	r := get("k=10")
	if want := []string{"a1", "a2", "d1", "b1", "e1", "c1"}; !slices.Equal(ids(r), want) || r.Strategy != "taste" {
		t.Fatalf("plain: %v (%s), want %v", ids(r), r.Strategy, want)
	}
	if r.Results[0].Similarity != nil || r.Explain != nil || r.Results[0].Score < 0.98 {
		t.Fatalf("plain answer carries ranking fields: %+v", r.Results[0])
	}
	// similarity × log(1 + viewers) × exp(−minutes/60):
	// a2 .98·ln101 = 4.52, b1 .9·ln51 = 3.54, c1 .5·ln1001·e^(−1/6) = 2.92,
	// a1 .99·ln2·e^(−1/6) = .58, e1 .8·ln101·e^(−4) = .07, d1 0.
	f := url.QueryEscape("similarity * log(1 + viewers_now) * exp(-live_minutes / 60)")
	r = get("k=10&formula=" + f)
	if want := []string{"a2", "b1", "c1", "a1", "e1", "d1"}; !slices.Equal(ids(r), want) {
		t.Fatalf("formula: %v, want %v", ids(r), want)
	}
	if s := r.Results[0].Similarity; s == nil || *s != 0.98 {
		t.Fatalf("formula answer: similarity %v, want 0.98", s)
	}
	// One per seller drops a1 (seller A already has a2).
	r = get("k=10&max_per_seller=1&explain=true&formula=" + f)
	if want := []string{"a2", "b1", "c1", "e1", "d1"}; !slices.Equal(ids(r), want) {
		t.Fatalf("diversity: %v, want %v", ids(r), want)
	}
	ex := r.Explain
	if ex == nil || ex.Ranking == nil || ex.Ranking.DroppedByDiversity != 1 || ex.Ranking.Evaluated != 6 || ex.Ranking.Candidates != 6 ||
		ex.Fetched != 100 || ex.FetchedPerPartition != 100 || len(ex.Partitions) != 4 || ex.Strategy != "taste" {
		t.Fatalf("explain %+v ranking %+v", ex, ex.Ranking)
	}
	scanned := 0
	for _, p := range ex.Partitions {
		if p.Plan != "exact" && p.Plan != "none" {
			t.Errorf("partition %d plan %q: a 6-stream index is scanned exactly", p.Partition, p.Plan)
		}
		scanned += p.Scanned
	}
	if scanned != r.Scanned || scanned < 6 {
		t.Fatalf("partitions scanned %d, answer scanned %d", scanned, r.Scanned)
	}
	// k cuts after diversity.
	if r = get("k=2&max_per_seller=1&formula=" + f); !slices.Equal(ids(r), []string{"a2", "b1"}) {
		t.Fatalf("k=2: %v", ids(r))
	}
	// Explicit exclusion and the streams the user saw (b1).
	if r = get("k=10&exclude=a1,d1"); !slices.Equal(ids(r), []string{"a2", "b1", "e1", "c1"}) {
		t.Fatalf("exclude: %v", ids(r))
	}
	if r = get("k=10&exclude_seen=true&exclude=a1"); !slices.Equal(ids(r), []string{"a2", "d1", "e1", "c1"}) {
		t.Fatalf("exclude_seen: %v", ids(r))
	}
	// A feature in the formula: only c1 has bids.
	if r = get("k=1&formula=bids_5m"); !slices.Equal(ids(r), []string{"c1"}) || r.Results[0].Score != 7 {
		t.Fatalf("bids_5m formula: %+v", r.Results)
	}
	// Filters still apply under a formula.
	if r = get("k=10&category=shoes&formula=viewers_now"); !slices.Equal(ids(r), []string{"c1", "e1", "d1"}) {
		t.Fatalf("filtered formula: %v", ids(r))
	}
	// Non-finite values rank last, NaN included: log(0 − 1) for d1 is NaN.
	if r = get("k=10&explain=true&formula=" + url.QueryEscape("log(viewers_now - 1)")); r.Results[len(r.Results)-1].LivestreamID != "d1" ||
		r.Explain.Ranking.NonFinite != 2 {
		t.Fatalf("non-finite: %v %+v", ids(r), r.Explain.Ranking)
	}
	// An unknown user gets the popular fallback, re-ranked too.
	var pop Response
	env.do(t, call{path: "/v1/recommendations?user_id=nobody&k=3&explain=true&formula=" + url.QueryEscape("engagement + similarity")}, &pop)
	if pop.Strategy != "popular" || pop.Explain.FallbackFrom != "" || !slices.Equal(ids(pop), []string{"c1", "a2", "e1"}) {
		t.Fatalf("popular: %v %+v", ids(pop), pop.Explain)
	}
	// POST /v1/search takes the same ranking.
	var sr Response
	body := `{"vector":[1,0,0,0],"k":5,"formula":"similarity * log(1 + viewers_now)","max_per_seller":1,"exclude":["b1"],"explain":true}`
	if code := env.do(t, call{method: "POST", path: "/v1/search", body: body}, &sr); code != 200 {
		t.Fatalf("search: %d", code)
	}
	// a2 4.52, e1 .8·ln101 = 3.69, c1 .5·ln1001 = 3.45, a1 (seller A
	// again) out, d1 0.
	if !slices.Equal(ids(sr), []string{"a2", "e1", "c1", "d1"}) || sr.Explain == nil || sr.Explain.Ranking.DroppedByDiversity != 1 {
		t.Fatalf("search: %v %+v", ids(sr), sr.Explain)
	}
}

func TestNamedQueries(t *testing.T) {
	env := startEnv(t, nil)
	env.putStreams(t, catalogue...)
	env.putUser(t, "u1", "b1")
	var list struct{ Queries []Query }
	if env.do(t, call{path: "/v1/queries"}, &list) != 200 || len(list.Queries) != 3 || list.Queries[0].Name != "for_you" {
		t.Fatalf("list: %+v", list)
	}
	// for_you: the formula with decay 60, one per seller, seen b1 out.
	var r Response
	if code := env.do(t, call{path: "/v1/queries/for_you?user_id=u1&explain=true"}, &r); code != 200 {
		t.Fatalf("for_you: %d", code)
	}
	if want := []string{"a2", "c1", "e1", "d1"}; !slices.Equal(ids(r), want) || r.Query != "for_you" || r.Explain.Ranking.DroppedByDiversity != 1 {
		t.Fatalf("for_you: %v %+v", ids(r), r.Explain)
	}
	// Parameters: categories and min viewers into the filter, the decay
	// into the formula (a long decay lets e1, live 4 h, pass c1).
	if env.do(t, call{path: "/v1/queries/for_you?user_id=u1&category=shoes&min_viewers=1&explain=true"}, &r); !slices.Equal(ids(r), []string{"c1", "e1"}) {
		t.Fatalf("for_you shoes: %v", ids(r))
	}
	if f := r.Explain.Filter; !slices.Equal(f.Categories, []string{"shoes"}) || len(f.Ranges) != 1 || *f.Ranges[0].Min != 1 || !slices.Contains(f.ExcludeStreams, "b1") {
		t.Fatalf("for_you filter %+v", f)
	}
	if env.do(t, call{path: "/v1/queries/for_you?user_id=u1&category=shoes&decay_minutes=100000"}, &r); !slices.Equal(ids(r), []string{"e1", "c1", "d1"}) {
		t.Fatalf("for_you long decay: %v", ids(r))
	}
	// hot_auctions: only c1 has bids.
	if env.do(t, call{path: "/v1/queries/hot_auctions?user_id=u1&k=5"}, &r); !slices.Equal(ids(r), []string{"c1"}) {
		t.Fatalf("hot_auctions: %v", ids(r))
	}
	// just_started with max_minutes=5: nothing is that fresh.
	if env.do(t, call{path: "/v1/queries/just_started?user_id=u1&max_minutes=5"}, &r); len(r.Results) != 0 {
		t.Fatalf("just_started: %v", ids(r))
	}
	// POST takes the same as JSON: shoes, at least one viewer.
	body := `{"user_id":"u1","explain":true,"params":{"category":["shoes"],"min_viewers":1}}`
	if code := env.do(t, call{method: "POST", path: "/v1/queries/for_you", body: body}, &r); code != 200 || !slices.Equal(ids(r), []string{"c1", "e1"}) || r.Explain == nil {
		t.Fatalf("POST for_you: %d %v", code, ids(r))
	}
	for _, b := range []string{`{"user_id":"u1","params":{"k":3}}`, `{"user_id":"u1","params":{"colour":"red"}}`, `{"user_id":"u1","surprise":1}`,
		`{"user_id":"u1","params":{"category":[1]}}`, `{"user_id":"u1","params":{"min_viewers":true}}`, `{"params":{}}`, `{`} {
		var e apiError
		if code := env.do(t, call{method: "POST", path: "/v1/queries/for_you", body: b}, &e); code != 400 || e.Error == "" {
			t.Errorf("POST %s: %d %q, want 400", b, code, e.Error)
		}
	}
	metrics := metricsText(t, env)
	for _, want := range []string{`livefeed_named_query_requests_total{query="for_you"} 4`, `livefeed_named_query_requests_total{query="hot_auctions"} 1`,
		`livefeed_rerank_candidates_count 6`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for path, want := range map[string]int{
		"/v1/queries/nope?user_id=u1":                       404,
		"/v1/queries/for_you":                               400, // no user_id
		"/v1/queries/for_you?user_id=u1&colour=red":         400,
		"/v1/queries/for_you?user_id=u1&min_viewers=lots":   400,
		"/v1/queries/for_you?user_id=u1&min_viewers=1.5":    400, // integer
		"/v1/queries/for_you?user_id=u1&decay_minutes=NaN":  400,
		"/v1/queries/for_you?user_id=u1&k=0":                400,
		"/v1/queries/for_you?user_id=u1&explain=maybe":      400,
		"/v1/queries/hot_auctions?user_id=u1&formula=x":     400, // not a parameter of a named query
		"/v1/queries/for_you?user_id=u1&category=" + many(): 400, // filter values over the limit
	} {
		var e apiError
		if code := env.do(t, call{path: path}, &e); code != want || e.Error == "" {
			t.Errorf("%s: %d %q, want %d with a JSON error", path, code, e.Error, want)
		}
	}
}

func many() string {
	parts := make([]string, 300)
	for i := range parts {
		parts[i] = fmt.Sprintf("c%d", i)
	}
	return strings.Join(parts, ",")
}

func TestLimitsAndBadRanking(t *testing.T) {
	env := startEnv(t, func(c *Config) { c.MaxBodyBytes = 512 })
	env.putStreams(t, catalogue[:2]...)
	cases := []struct {
		c    call
		code int
		msg  string
	}{
		{call{path: "/v1/recommendations?user_id=u&formula=" + url.QueryEscape("similarity *")}, 400, "formula"},
		{call{path: "/v1/recommendations?user_id=u&formula=colour"}, 400, `unknown variable "colour"`},
		{call{path: "/v1/recommendations?user_id=u&formula=" + url.QueryEscape("$p * 2")}, 400, "unknown variable"},
		{call{path: "/v1/recommendations?user_id=u&formula=" + strings.Repeat("(", 40) + "1" + strings.Repeat(")", 40)}, 400, "nested deeper"},
		{call{path: "/v1/recommendations?user_id=u&formula=" + strings.Repeat("1%20%2B%20", 300) + "1"}, 400, "longer than 1024"},
		{call{path: "/v1/recommendations?user_id=u&max_per_seller=-1"}, 400, "max_per_seller"},
		{call{path: "/v1/recommendations?user_id=u&max_per_seller=x"}, 400, "max_per_seller"},
		{call{path: "/v1/recommendations?user_id=u&overfetch=1000"}, 400, "overfetch"},
		{call{path: "/v1/recommendations?user_id=u&k=201"}, 400, "k:"},
		{call{path: "/v1/recommendations?user_id=u&k=0"}, 400, "k:"},
		{call{path: "/v1/recommendations?user_id=u&exclude_seen=yes"}, 400, "exclude_seen"},
		{call{path: "/v1/recommendations?user_id=u&category=" + many()}, 400, "the limit is 256"},
		{call{path: "/v1/recommendations?user_id=u&exclude=" + many()}, 400, "the limit is 256"},
		{call{path: "/v1/recommendations?user_id=u&" + ranges(17)}, 400, "17 ranges"},
		{call{method: "POST", path: "/v1/search", body: `{"vector":[1,0,0,0],"formula":"log("}`}, 400, "formula"},
		{call{method: "POST", path: "/v1/search", body: `{"vector":[1,0,0,0],"filter":{"category":[` + strings.Repeat(`"x",`, 200) + `"y"]}}`}, 413, "larger than 512 bytes"},
		{call{method: "POST", path: "/v1/search", body: `{"vector":[` + strings.Repeat("0,", 5000) + `1]}`}, 413, "larger than 512"},
	}
	for _, c := range cases {
		var e apiError
		if code := env.do(t, c.c, &e); code != c.code || !strings.Contains(e.Error, c.msg) {
			t.Errorf("%s %.80s: %d %q, want %d containing %q", c.c.method, c.c.path, code, e.Error, c.code, c.msg)
		}
	}
	// Within the limits a search still answers.
	var r Response
	if code := env.do(t, call{method: "POST", path: "/v1/search", body: `{"vector":[1,0,0,0],"k":1}`}, &r); code != 200 || len(r.Results) != 1 {
		t.Fatalf("search within limits: %d %+v", code, r)
	}
}

func ranges(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("min.f%d=1", i)
	}
	return strings.Join(parts, "&")
}

func metricsText(t *testing.T, env *testEnv) string {
	t.Helper()
	resp, err := http.Get(env.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
