package features

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// NumberCached equals Number (approx_distinct and top_k: the kinds it
// computes its own way) at every read of a series that events keep
// changing between reads: in order and late (into older tiles), with the
// window sliding past tiles, growing past the sparse representation into
// dense registers, and across the tile merges of a backfill.
func TestNumberCachedEqualsNumber(t *testing.T) {
	defs := []Definition{
		{Name: "d5m", Sources: []string{"viewing"}, Field: "user_id", Aggregation: ApproxDistinct, Window: SlidingWindow(5*time.Minute, time.Minute), Lateness: 2 * time.Minute},
		{Name: "d1h", Sources: []string{"viewing"}, Field: "user_id", Aggregation: ApproxDistinct, Precision: 10, Window: SlidingWindow(time.Hour, 5*time.Minute), Lateness: 10 * time.Minute},
		{Name: "tumbling", Sources: []string{"viewing"}, Field: "user_id", Aggregation: ApproxDistinct, Window: TumblingWindow(10*time.Minute, Current)},
		{Name: "top", Sources: []string{"viewing"}, Field: "user_id", Aggregation: TopK, K: 5, Capacity: 8, Window: SlidingWindow(10*time.Minute, time.Minute), Lateness: 2 * time.Minute},
		{Name: "top_all", Sources: []string{"viewing"}, Field: "user_id", Aggregation: TopK, K: 50, Window: AllTimeWindow()},
		{Name: "count", Sources: []string{"viewing"}, Aggregation: Count, Window: SlidingWindow(5*time.Minute, time.Minute)},
	}
	set := mustSet(t, defs...)
	rng := rand.New(rand.NewPCG(21, 22))
	for _, distinct := range []int{20, 3000, 20000} {
		var st, other State
		caches := make([]ReadCache, len(defs))
		clock := time.Duration(0)
		reads := 0
		for i := range 12000 {
			clock += time.Duration(rng.IntN(400)) * time.Millisecond
			at := clock
			if rng.IntN(10) == 0 {
				at -= time.Duration(rng.IntN(int(8 * time.Minute))) // late
			}
			e := ev("viewing", at, "user_id", fmt.Sprintf("u%d", rng.IntN(distinct)))
			if i%1000 == 999 {
				set.ApplyEvent(&other, e)
				set.Merge(&st, &other) // a backfill's merge into existing tiles
				other = State{}
			} else {
				set.ApplyEvent(&st, e)
			}
			if rng.IntN(3) > 0 {
				continue
			}
			now := t0.Add(clock + time.Duration(rng.IntN(2))*time.Millisecond)
			for j, d := range set.All() {
				want, wantOK := d.Number(st.Series[d.Name], now)
				got, gotOK := d.NumberCached(st.Series[d.Name], now, &caches[j])
				if got != want || gotOK != wantOK {
					t.Fatalf("%d distinct, event %d, %s at %v: cached %v %v, uncached %v %v", distinct, i, d.Name, now, got, gotOK, want, wantOK)
				}
				reads++
			}
		}
		if d := set.All()[1]; d.Value(st.Series[d.Name], t0.Add(clock)) < 1000 && distinct > 3000 {
			t.Errorf("%d distinct: the 1-hour window never left the sparse representation", distinct)
		}
		t.Logf("%d distinct: %d reads equal", distinct, reads)
	}
}
