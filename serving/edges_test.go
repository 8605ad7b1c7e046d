package serving

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// A search vector of another dimension than the index's is a 400 that
// names both, on POST /v1/search (issue 13: it answered 200 with no
// results).
func TestSearchWrongDimension(t *testing.T) {
	env := startEnv(t, nil)
	env.putStreams(t, catalogue...) // 4-dimension vectors
	var e apiError
	if code := env.do(t, call{method: "POST", path: "/v1/search", body: `{"vector":[1,2],"k":5}`}, &e); code != 400 ||
		!strings.Contains(e.Error, "vector: 2 dimensions; the index's vectors have 4") ||
		!slices.Equal(e.ExpectedDimensions, []int{4}) || e.ReceivedDimensions != 2 {
		t.Fatalf("2-dimension vector: %d %+v", code, e)
	}
	var r Response
	if code := env.do(t, call{method: "POST", path: "/v1/search", body: `{"vector":[1,0,0,0],"k":5}`}, &r); code != 200 || len(r.Results) == 0 {
		t.Fatalf("4-dimension vector: %d %+v", code, r)
	}
}

// Null stays null (issue 13): a stream without bids has no max_bid_5m. Its
// feature lookup leaves it out of "features" and gives null in "values";
// a range on it does not match; a formula reads it as NaN (ranked last)
// unless it says coalesce.
func TestNullFeatures(t *testing.T) {
	env := startEnv(t, nil)
	env.putStreams(t, catalogue...) // only c1 has bids (7 of 10.0)
	env.putUser(t, "u1")
	var lf LivestreamFeatures
	if code := env.do(t, call{path: "/v1/features/livestream/a1"}, &lf); code != 200 {
		t.Fatalf("a1: %d", code)
	}
	if v, ok := lf.Features["max_bid_5m"]; ok {
		t.Errorf("a1 features.max_bid_5m = %v, want absent (no bids)", v)
	}
	if v, ok := lf.Values["max_bid_5m"]; !ok || v.Kind.String() != "null" {
		t.Errorf("a1 values.max_bid_5m = %+v (present %v), want null", v, ok)
	}
	if lf.Features["bids_5m"] != 0 || lf.Values["bids_5m"].Kind.String() != "number" {
		t.Errorf("a1 bids_5m: a count of an empty window is 0, got %v / %+v", lf.Features["bids_5m"], lf.Values["bids_5m"])
	}
	if code := env.do(t, call{path: "/v1/features/livestream/c1"}, &lf); code != 200 || lf.Features["max_bid_5m"] != 10 || lf.Values["max_bid_5m"].Number != 10 {
		t.Fatalf("c1: %d max_bid_5m %v / %+v, want 10", code, lf.Features["max_bid_5m"], lf.Values["max_bid_5m"])
	}
	get := func(q string) Response {
		t.Helper()
		var r Response
		if code := env.do(t, call{path: "/v1/recommendations?user_id=u1&k=10&" + q}, &r); code != 200 {
			t.Fatalf("%s: %d", q, code)
		}
		for _, res := range r.Results {
			if _, ok := res.Features["max_bid_5m"]; ok != (res.LivestreamID == "c1") {
				t.Errorf("%s: %s features.max_bid_5m present %v", q, res.LivestreamID, ok)
			}
		}
		return r
	}
	// max.max_bid_5m=10 matched every stream without bids (as 0) before.
	for _, q := range []string{"max.max_bid_5m=10", "min.max_bid_5m=1", "max.max_bid_5m=1000&min.max_bid_5m=-1"} {
		if r := get(q); !slices.Equal(ids(r), []string{"c1"}) {
			t.Errorf("%s: %v, want only c1 (the others have no bids)", q, ids(r))
		}
	}
	// The same through POST /v1/search.
	var sr Response
	if code := env.do(t, call{method: "POST", path: "/v1/search", body: `{"vector":[1,0,0,0],"filter":{"ranges":[{"field":"max_bid_5m","max":10}]}}`}, &sr); code != 200 ||
		!slices.Equal(ids(sr), []string{"c1"}) {
		t.Errorf("search with max_bid_5m ≤ 10: %d %v", code, ids(sr))
	}
	// A formula over a null feature is NaN: ranked last, with the rest in
	// id order; coalesce gives the missing value a number.
	r := get("explain=true&formula=" + url.QueryEscape("max_bid_5m"))
	if ids(r)[0] != "c1" || r.Explain.Ranking.NonFinite != 5 || r.Results[1].Score != -1.7976931348623157e308 {
		t.Errorf("formula max_bid_5m: %v %+v", ids(r), r.Explain.Ranking)
	}
	r = get("explain=true&formula=" + url.QueryEscape("coalesce(max_bid_5m, 0) + similarity"))
	if ids(r)[0] != "c1" || r.Explain.Ranking.NonFinite != 0 || r.Results[1].LivestreamID != "a1" {
		t.Errorf("formula coalesce: %v %+v", ids(r), r.Explain.Ranking)
	}
}
