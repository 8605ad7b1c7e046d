package index

import (
	"container/heap"
	"errors"
	"math"
	"sort"
	"sync/atomic"
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
	Scanned int // items looked at
	Matched int // items that passed the filter
}

// ErrDimension is returned when the query vector has no indexed peers.
var ErrDimension = errors.New("query vector dimension matches no indexed vector")

type hitHeap []Hit

func (h hitHeap) Len() int { return len(h) }
func (h hitHeap) Less(i, j int) bool {
	if h[i].Score != h[j].Score {
		return h[i].Score < h[j].Score
	}
	return h[i].Item.ID > h[j].Item.ID
}
func (h hitHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)   { *h = append(*h, x.(Hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// better reports whether a ranks before b (higher score, then smaller id).
func better(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.Item.ID < b.Item.ID
}

type topK struct {
	k int
	h hitHeap
}

func (t *topK) offer(it *Item, score float64) {
	if len(t.h) < t.k {
		heap.Push(&t.h, Hit{Item: it, Score: score})
		return
	}
	if better(Hit{Item: it, Score: score}, t.h[0]) {
		t.h[0] = Hit{Item: it, Score: score}
		heap.Fix(&t.h, 0)
	}
}

// scan runs score over every item of every shard that passes the filter and
// returns the k best, best first.
func (ix *Index) scan(k int, f *Filter, now time.Time, score func(*Item) (float64, bool)) ([]Hit, Stats) {
	cf := f.compile(ix.feats, now)
	shards := ix.snapshotShards()
	tops := make([]topK, len(shards))
	var scanned, matched atomic.Int64
	ix.forEachShard(func(i int, s *shard) {
		t := topK{k: k}
		var sc, mc int64
		s.mu.RLock()
		for _, it := range s.items {
			sc++
			if !cf.match(it) {
				continue
			}
			v, ok := score(it)
			if !ok {
				continue
			}
			mc++
			t.offer(it, v)
		}
		s.mu.RUnlock()
		tops[i] = t
		scanned.Add(sc)
		matched.Add(mc)
	})
	var all []Hit
	for _, t := range tops {
		all = append(all, t.h...)
	}
	sort.Slice(all, func(i, j int) bool { return better(all[i], all[j]) })
	if len(all) > k {
		all = all[:k]
	}
	return all, Stats{Scanned: int(scanned.Load()), Matched: int(matched.Load())}
}

// Search returns the k items most similar (cosine) to vec that pass the
// filter, most similar first. Items without a vector of vec's dimension are
// skipped. Exact: every item is scored.
func (ix *Index) Search(vec []float32, k int, f *Filter, now time.Time) ([]Hit, Stats) {
	q := models.Normalized(vec)
	return ix.scan(k, f, now, func(it *Item) (float64, bool) {
		if len(it.Vector) != len(q) {
			return 0, false
		}
		return float64(models.Dot(q, it.Vector)), true
	})
}

// Popular returns the k most engaging items that pass the filter: the
// fallback for users without a taste vector.
func (ix *Index) Popular(k int, f *Filter, now time.Time) ([]Hit, Stats) {
	return ix.scan(k, f, now, func(it *Item) (float64, bool) {
		return ix.Engagement(it, now), true
	})
}

// Engagement scores how lively a stream is right now: concurrent viewers,
// chat and bidding, each damped by a logarithm.
func (ix *Index) Engagement(it *Item, now time.Time) float64 {
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
// feature) at time now.
func (ix *Index) Attr(it *Item, field string, now time.Time) float64 {
	if d, ok := ix.feats.Get(field); ok {
		return attr(it, field, &d, now)
	}
	return attr(it, field, nil, now)
}
