package serving

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/index"
)

// BenchmarkRerank measures the re-ranking of one request's candidates
// (formula evaluation with feature reads, sort, one per seller) after the
// index returned them: k=20 with the default over-fetch (200 candidates)
// and at the candidate cap (2000). Items carry real windowed features.
func BenchmarkRerank(b *testing.B) {
	feats := livestreamFeatures(b)
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	const n, dim = 5000, 64
	ix := index.New(4, feats)
	for i := range n {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		it := &index.Item{ID: fmt.Sprintf("ls-%d", i), SellerID: fmt.Sprintf("s-%d", i/4), Status: events.StatusLive,
			LiveSince: now.Add(-time.Duration(rng.IntN(240)) * time.Minute), ViewersNow: rng.IntN(500), Vector: v}
		for j := range rng.IntN(20) {
			feats.ApplyEvent(&it.Features, features.MapEvent{Src: events.TopicAuctions, At: now.Add(-time.Duration(j) * time.Second),
				Fields: map[string]any{"type": "bid", "livestream_id": it.ID, "user_id": "u", "amount": 5.0, "auction_id": "a"}})
		}
		ix.Upsert(int32(i%4), it)
	}
	s := &Service{cfg: Config{Features: feats}, index: ix}
	q := make([]float32, dim)
	for j := range q {
		q[j] = float32(rng.NormFloat64())
	}
	for _, c := range []struct {
		name, formula string
		fetch         int
	}{
		{"viewers-decay/200", "similarity * log(1 + viewers_now) * exp(-live_minutes / 60)", 200},
		{"viewers-decay/2000", "similarity * log(1 + viewers_now) * exp(-live_minutes / 60)", 2000},
		{"bids-feature/200", "(0.5 + similarity) * log1p(bids_5m)", 200},
	} {
		sc, err := newScorer(c.formula, feats, nil)
		if err != nil {
			b.Fatal(err)
		}
		hits, _ := ix.Search(q, c.fetch, &index.Filter{}, now)
		if len(hits) != c.fetch {
			b.Fatalf("%d hits", len(hits))
		}
		r := &ranking{scorer: sc, maxPerSeller: 1, overFetch: 10}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, _ := s.rerank(hits, 20, r, true, now)
				if len(out) != 20 {
					b.Fatalf("%d results", len(out))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hits)), "ns/candidate")
		})
	}
}

// TestRerankDefaultsLeaveOrder: without formula or cap the ranking is
// inactive and fetches exactly k.
func TestRerankDefaultsLeaveOrder(t *testing.T) {
	s := &Service{cfg: Config{Features: livestreamFeatures(t)}}
	s.cfg.limitDefaults()
	r, err := s.rankingFrom("", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.active() || r.fetch(20, s.cfg.MaxCandidates) != 20 {
		t.Fatalf("default ranking active %v fetch %d", r.active(), r.fetch(20, s.cfg.MaxCandidates))
	}
	r, _ = s.rankingFrom("similarity", 0, 0)
	if !r.active() || r.fetch(20, s.cfg.MaxCandidates) != 200 || r.fetch(200, s.cfg.MaxCandidates) != 2000 {
		t.Fatalf("formula ranking fetch %d / %d", r.fetch(20, s.cfg.MaxCandidates), r.fetch(200, s.cfg.MaxCandidates))
	}
}
