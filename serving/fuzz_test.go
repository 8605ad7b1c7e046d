package serving

import (
	"net/url"
	"testing"
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
		flt, err := filterFromQuery(q, recommendationParams)
		if err != nil {
			return
		}
		flt.ExcludeStreams = splitList(q.Get("exclude"))
		if err := s.checkFilter(flt, "filter"); err != nil {
			return
		}
		if n := len(flt.Categories) + len(flt.ExcludeStreams); n > s.cfg.MaxFilterValues {
			t.Fatalf("accepted %d values", n)
		}
		mps, err := intParam(q, "max_per_seller")
		if err != nil {
			return
		}
		of, err := intParam(q, "overfetch")
		if err != nil {
			return
		}
		r, err := s.rankingFrom(q.Get("formula"), mps, of)
		if err != nil {
			return
		}
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
