package serving

import (
	"net/url"
	"reflect"
	"testing"

	"github.com/livefeed/livefeed/api"
)

// FuzzRequestParams: no query string makes the recommendation parameters'
// parsing (filter, limits, ranking) panic; what it accepts passes the
// limits.
func FuzzRequestParams(f *testing.F) {
	for _, s := range []string{
		"user_id=u&k=5&category=a,b&min_viewers=3&max.bids_5m=2",
		"user_id=u&formula=similarity*log(1%2Bviewers_now)&max_per_seller=1&overfetch=5",
		"status=live,ended&min.x=1&exclude=a,b,c",
		"formula=((((((((1))))))))&max.viewers_now=-1e308",
		"min.viewers_now=NaN&formula=$p",
	} {
		f.Add(s)
	}
	feats := livestreamFeatures(f)
	s := &Service{cfg: Config{Features: feats, MaxK: 200}}
	s.cfg.limitDefaults()
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		rr, req, err := s.recommendationRequest(q)
		if err != nil {
			return
		}
		if n := len(req.filter.Categories) + len(req.filter.ExcludeStreams); n > s.cfg.MaxFilterValues {
			t.Fatalf("accepted %d values", n)
		}
		// What the server accepted, the client's encoding gives back.
		if again, err := api.ParseRecommendationsRequest(rr.Query()); err != nil || !reflect.DeepEqual(again, rr) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", raw, again, err, rr)
		}
		r := req.rank
		if got := r.fetch(200, s.cfg.MaxCandidates); got > s.cfg.MaxCandidates {
			t.Fatalf("fetch %d over the cap", got)
		}
	})
}

// FuzzParseQueries: no named-query file makes the parser panic (goccy/go-yaml
// panics are recovered into an error too).
func FuzzParseQueries(f *testing.F) {
	f.Add(string(DefaultQueriesYAML))
	f.Add("version: 1\nqueries:\n  - name: a\n    formula: similarity\n")
	f.Add("version: 1\nqueries:\n  - name: a\n    params:\n      - {name: c, type: strings}\n    filter: {category: $c}\n")
	feats := livestreamFeatures(f)
	f.Fuzz(func(t *testing.T, src string) {
		qs, err := ParseQueries([]byte(src), "f.yaml", feats, 200)
		if err == nil && len(qs.All()) == 0 {
			t.Fatal("no error and no queries")
		}
	})
}
