package servingbench

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livefeed/livefeed/serving/index"
)

// Updates is the write side: the cost of each kind of upsert, and query
// latency while attribute updates flow in.
type Updates struct {
	Engine string       `json:"engine"`
	Kinds  []UpdateKind `json:"kinds"`
	// Query latency of the unfiltered case, sequential, while a writer
	// applies LoadRate attribute updates per second (plus 1 % vector moves).
	LoadRate    int     `json:"load_rate"`
	LoadApplied float64 `json:"load_applied_per_s"`
	LoadP50MS   float64 `json:"load_p50_ms"`
	LoadP99MS   float64 `json:"load_p99_ms"`
	IdleP50MS   float64 `json:"idle_p50_ms"`
	IdleP99MS   float64 `json:"idle_p99_ms"`
}

// UpdateKind is one kind of write, timed one by one on a single writer.
type UpdateKind struct {
	Kind  string  `json:"kind"`
	N     int     `json:"n"`
	P50US float64 `json:"p50_us"`
	P99US float64 `json:"p99_us"`
	PerS  float64 `json:"per_s"`
}

// measureUpdates runs after the queries (it changes the index).
func measureUpdates(ctx context.Context, ix *index.Index, cat *Catalogue, cfg Config, now time.Time) *Updates {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x0bd))
	u := &Updates{LoadRate: 10_000}
	part := func(i int) int32 { return int32(i % cfg.Partitions) }
	timed := func(kind string, n int, op func()) {
		lat := make([]time.Duration, 0, n)
		start := time.Now()
		for range n {
			if ctx.Err() != nil {
				break
			}
			t := time.Now()
			op()
			lat = append(lat, time.Since(t))
		}
		if len(lat) == 0 {
			return
		}
		el := time.Since(start)
		u.Kinds = append(u.Kinds, UpdateKind{Kind: kind, N: len(lat), P50US: 1000 * percentileMS(lat, 0.5),
			P99US: 1000 * percentileMS(lat, 0.99), PerS: float64(len(lat)) / el.Seconds()})
	}
	attrUpdate := func() {
		i := rng.IntN(cat.N)
		it := cat.Items[i]
		it.ViewersNow = rng.IntN(maxViewers)
		ix.Upsert(part(i), &it)
	}
	timed("attributes only (viewers_now)", 20_000, attrUpdate)
	timed("vector moved (in-place graph update)", 1_000, func() {
		i := rng.IntN(cat.N)
		it := cat.Items[i]
		it.Vector = cat.Vector(rng.IntN(cat.N))
		ix.Upsert(part(i), &it)
	})
	var deleted []int
	timed("delete (tombstone + neighbour repair)", 1_000, func() {
		i := rng.IntN(cat.N)
		ix.Delete(part(i), cat.Items[i].ID)
		deleted = append(deleted, i)
	})
	j := 0
	timed("insert (reuses a tombstoned slot)", len(deleted), func() {
		i := deleted[j]
		j++
		ix.Upsert(part(i), &cat.Items[i])
	})

	// Queries with and without a writer at LoadRate updates/s.
	f := &index.Filter{}
	queries := func() []time.Duration {
		lat := make([]time.Duration, 0, cat.NQ)
		for q := range cat.NQ {
			if ctx.Err() != nil {
				break
			}
			t := time.Now()
			ix.Search(cat.Query(q), cfg.K, f, now)
			lat = append(lat, time.Since(t))
		}
		return lat
	}
	idle := queries()
	var applied atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		wr := rand.New(rand.NewPCG(cfg.Seed, 0x10ad))
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			// Catch up to the rate: LoadRate/1000 updates per millisecond.
			due := int64(time.Since(start).Seconds() * float64(u.LoadRate))
			for applied.Load() < due {
				i := wr.IntN(cat.N)
				it := cat.Items[i]
				it.ViewersNow = wr.IntN(maxViewers)
				if applied.Load()%100 == 0 {
					it.Vector = cat.Vector(wr.IntN(cat.N))
				}
				ix.Upsert(part(i), &it)
				applied.Add(1)
			}
		}
	})
	t0 := time.Now()
	loaded := queries()
	el := time.Since(t0)
	close(stop)
	wg.Wait()
	if len(idle) > 0 && len(loaded) > 0 {
		u.IdleP50MS, u.IdleP99MS = percentileMS(idle, 0.5), percentileMS(idle, 0.99)
		u.LoadP50MS, u.LoadP99MS = percentileMS(loaded, 0.5), percentileMS(loaded, 0.99)
		u.LoadApplied = float64(applied.Load()) / el.Seconds()
	}
	return u
}
