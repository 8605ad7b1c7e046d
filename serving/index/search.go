package index

import (
	"errors"
	"math"
	"slices"
	"time"

	"github.com/livefeed/livefeed/models"
)

// Hit is one result.
type Hit struct {
	Item *Item
	// Score orders the results: the cosine similarity for vector queries,
	// the engagement score for popularity queries.
	Score float64
}

// Stats describes how a query ran.
type Stats struct {
	// Scanned counts the items looked at: vectors compared in a graph
	// search, filtered-set members checked in an exact scan.
	Scanned int
	// Matched counts the items that pass the filter: exact for exact
	// scans, the planner's estimate (exact when the filter has no range)
	// for graph searches.
	Matched int
	// Plan is the query's plan (exact, graph, graph+exact, far-exact;
	// "none" if no partition had candidates); a popularity query's
	// partitions plan on their own ("mixed" if they differ).
	Plan string
	// Estimated is the planner's estimate of the filtered set's size.
	Estimated int
	// SubGraph names the sub-graph a PlanSubGraph query searched:
	// attribute=value (nodes).
	SubGraph string
	// Partitions has the plan and work of each partition, by partition.
	Partitions []PartitionStats
}

// PartitionStats is one partition's share of a query. A graph search is
// one search over every partition's nodes: its distances count in
// Stats.Scanned only (a partition's Scanned counts its exact scans), and
// each partition with candidates shows the search's time as its Took.
type PartitionStats struct {
	Partition int           `json:"partition"`
	Plan      string        `json:"plan"`
	Estimated int           `json:"estimated"`
	Scanned   int           `json:"scanned"`
	Matched   int           `json:"matched"`
	Took      time.Duration `json:"took_ns"`
	// Far: the graph search met a query whose neighbourhood holds almost
	// none of the filtered set, and used a longer candidate list.
	Far bool `json:"far,omitempty"`
}

// ErrDimension is returned when the query vector has no indexed peers.
var ErrDimension = errors.New("query vector dimension matches no indexed vector")

// better reports whether a ranks before b (higher score, then smaller id).
func better(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.Item.ID < b.Item.ID
}

// topK keeps the k best hits in a heap whose root is the worst kept.
type topK struct {
	k int
	h []Hit
}

func (t *topK) offer(it *Item, score float64) {
	x := Hit{Item: it, Score: score}
	h := t.h
	if len(h) < t.k {
		h = append(h, x)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if !better(h[p], h[i]) {
				break
			}
			h[p], h[i] = h[i], h[p]
			i = p
		}
		t.h = h
		return
	}
	if t.k == 0 || !better(x, h[0]) {
		return
	}
	h[0] = x
	for i := 0; ; {
		w := i
		if l := 2*i + 1; l < len(h) && better(h[w], h[l]) {
			w = l
		}
		if r := 2*i + 2; r < len(h) && better(h[w], h[r]) {
			w = r
		}
		if w == i {
			break
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}

// topHits sorts hits best first and keeps the first k.
func topHits(hits []Hit, k int) []Hit {
	slices.SortFunc(hits, func(a, b Hit) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits
}

// run runs one query on every shard in parallel (under the index's read
// lock) and merges the results.
func (ix *Index) run(k int, one func(s *shard) shardResult) ([]Hit, Stats) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	shards := ix.shards
	results := make([]shardResult, len(shards))
	ix.forEachShard(shards, func(i int, s *shard) { results[i] = one(s) })
	var all []Hit
	st := Stats{Partitions: make([]PartitionStats, len(shards))}
	for i, r := range results {
		all = append(all, r.top.h...)
		r.stats.Partition = i
		st.Partitions[i] = r.stats
		st.Scanned += r.stats.Scanned
		st.Matched += r.stats.Matched
		st.Estimated += r.stats.Estimated
		switch {
		case r.stats.Plan == PlanNone:
		case st.Plan == "":
			st.Plan = r.stats.Plan
		case st.Plan != r.stats.Plan:
			st.Plan = "mixed"
		}
	}
	if st.Plan == "" {
		st.Plan = PlanNone
	}
	return topHits(all, k), st
}

// Search returns the k items most similar (cosine) to vec that pass the
// filter, most similar first. Items without a vector of vec's dimension are
// skipped. The query plans once for all partitions: an exact scan of the
// filtered set when the attribute index estimates it small, else one graph
// search with the filter applied during traversal.
func (ix *Index) Search(vec []float32, k int, f *Filter, now time.Time) ([]Hit, Stats) {
	q := models.Normalized(vec)
	if f == nil {
		f = &Filter{}
	}
	cf := compileFilter(f, ix.feats, now)
	return ix.searchVec(q, k, k, f, cf)
}

// Popular returns the k most engaging items that pass the filter: the
// fallback for users without a taste vector.
func (ix *Index) Popular(k int, f *Filter, now time.Time) ([]Hit, Stats) {
	if f == nil {
		f = &Filter{}
	}
	cf := compileFilter(f, ix.feats, now)
	return ix.run(k, func(s *shard) shardResult { return ix.popularShard(s, k, f, cf) })
}

// Engagement scores how lively a stream is right now: concurrent viewers,
// chat and bidding, each damped by a logarithm. It is computed once per
// second of query time for each version of an indexed item: the popularity
// fallback scores every live stream on every request, and evaluating two
// windowed features of each took 60 % of serving's CPU under load. Within
// a second the windows barely move; a new version of the stream (any table
// update) is scored afresh.
func (ix *Index) Engagement(it *Item, now time.Time) float64 {
	if it.engagement == nil {
		return ix.engagement(it, now)
	}
	sec := now.Unix()
	if c := it.engagement.Load(); c != nil && c.sec == sec {
		return c.score
	}
	score := ix.engagement(it, now)
	it.engagement.Store(&scoreAt{sec: sec, score: score})
	return score
}

func (ix *Index) engagement(it *Item, now time.Time) float64 {
	v := func(name string) float64 {
		d, ok := ix.feats.Get(name)
		if !ok {
			return 0
		}
		return d.Value(it.Features.Series[name], now)
	}
	return math.Log1p(float64(it.ViewersNow)) + 0.5*math.Log1p(v("chat_5m")) + math.Log1p(v("bids_5m"))
}

// Attr returns an item's numeric attribute (viewers_now, live_minutes or a
// feature) at time now; ok is false for a feature without a value (null).
func (ix *Index) Attr(it *Item, field string, now time.Time) (v float64, ok bool) {
	if d, ok := ix.feats.Get(field); ok {
		return attr(it, field, &d, now)
	}
	return attr(it, field, nil, now)
}
