package index

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/models"
)

// BenchmarkQueriesUnderUpdates is issue 5's "under load": filtered k=20
// queries on a 100k × 384 catalogue (8 partitions) while 10,000 updates per
// second flow in from another goroutine, as the views' callbacks deliver
// them — most change attributes only (viewers now), vectorPct of them change
// the vector (a new title). It reports the query latency, the time an
// Upsert takes (an update is visible to the next query once Upsert
// returns: the shard's lock orders them), and checks that visibility:
// every 50th vector update is searched for right after its Upsert and must
// be the top hit.
//
//	go test -run '^$' -bench QueriesUnderUpdates -benchtime 5000x ./serving/index/
//
// LIVEFEED_BENCH_ITEMS overrides the catalogue size.
func BenchmarkQueriesUnderUpdates(b *testing.B) {
	n := 100_000
	if s := os.Getenv("LIVEFEED_BENCH_ITEMS"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 {
			n = v
		}
	}
	const dim, partitions, rate = 384, 8, 10_000
	items := clusteredItems(n, dim, 1)
	ix := build(b, items, partitions, Options{})
	for _, vectorPct := range []int{1, 10} {
		b.Run(fmt.Sprintf("items=%d/updates=%d_per_s/vector_updates=%d%%", n, rate, vectorPct), func(b *testing.B) {
			queriesUnderUpdates(b, ix, items, partitions, rate, vectorPct)
		})
	}
}

func queriesUnderUpdates(b *testing.B, ix *Index, items []*Item, partitions, rate, vectorPct int) {
	stop := make(chan struct{})
	var (
		wg        sync.WaitGroup
		upserts   []time.Duration
		updates   int
		invisible int
		checked   int
		elapsed   time.Duration
	)
	wg.Add(1)
	go func() { // the updater: owned here, stopped by stop
		defer wg.Done()
		rng := rand.New(rand.NewPCG(3, uint64(vectorPct)))
		start := time.Now()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				elapsed = time.Since(start)
				return
			case <-tick.C:
			}
			// Catch up to the target rate (the ticker drops ticks under load).
			due := int(time.Since(start).Seconds()*float64(rate)) - updates
			for range min(due, rate/10) {
				i := rng.IntN(len(items))
				it := *items[i]
				it.ViewersNow = rng.IntN(1000)
				vectorUpdate := rng.IntN(100) < vectorPct
				if vectorUpdate {
					v := gauss(rng, len(it.Vector), 0.3/float64(len(it.Vector)))
					for j := range v {
						v[j] += it.Vector[j]
					}
					it.Vector = models.Normalize(v)
				}
				items[i] = &it
				t0 := time.Now()
				ix.Upsert(int32(i%partitions), &it)
				upserts = append(upserts, time.Since(t0))
				updates++
				if vectorUpdate && updates%50 == 0 {
					checked++
					hits, _ := ix.Search(it.Vector, 1, &Filter{Categories: []string{it.Category}}, now)
					if len(hits) == 0 || hits[0].Item.ID != it.ID {
						invisible++
					}
				}
			}
		}
	}()

	qrng := rand.New(rand.NewPCG(5, 5))
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		q := items[qrng.IntN(len(items))].Vector
		f := &Filter{Categories: []string{fmt.Sprintf("cat-%d", qrng.IntN(10))}}
		t0 := time.Now()
		hits, _ := ix.Search(q, 20, f, now)
		lat = append(lat, time.Since(t0))
		if len(hits) == 0 {
			b.Fatal("no hits")
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	if invisible > 0 {
		b.Fatalf("%d of %d vector updates not the top hit right after Upsert", invisible, checked)
	}
	b.ReportMetric(pct(lat, 50), "query-p50-ms")
	b.ReportMetric(pct(lat, 99), "query-p99-ms")
	b.ReportMetric(pct(upserts, 99), "upsert-p99-ms")
	b.ReportMetric(pct(upserts, 100), "upsert-max-ms")
	b.ReportMetric(float64(updates)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(0, "ns/op")
}

func pct(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := min(len(s)-1, len(s)*p/100)
	return float64(s[i]) / float64(time.Millisecond)
}
