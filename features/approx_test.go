package features

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// approx_distinct is within 3 standard errors (1.04/√2^p) of the truth on
// 10k+ distinct values spread over many tiles, and exact-ish (sparse) on
// small counts; approx_percentile is within its 1% relative accuracy of the
// exact quantile (the value at rank ⌈q·n⌉) on 20k values.
func TestApproximateAggregationsWithinStatedError(t *testing.T) {
	w := SlidingWindow(time.Hour, 5*time.Minute)
	set := mustSet(t,
		Definition{Name: "distinct", Sources: []string{"viewing"}, Field: "user_id", Aggregation: ApproxDistinct, Window: w, Lateness: time.Minute},
		Definition{Name: "distinct_p14", Sources: []string{"viewing"}, Field: "user_id", Aggregation: ApproxDistinct, Precision: 14, Window: w, Lateness: time.Minute},
		Definition{Name: "p50", Sources: []string{"auctions"}, Field: "amount", Aggregation: ApproxPercentile, P: 0.5, Window: w, Lateness: time.Minute},
		Definition{Name: "p90", Sources: []string{"auctions"}, Field: "amount", Aggregation: ApproxPercentile, P: 0.9, Window: w, Lateness: time.Minute},
		Definition{Name: "p99", Sources: []string{"auctions"}, Field: "amount", Aggregation: ApproxPercentile, P: 0.99, Window: w, Lateness: time.Minute},
	)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, distinct := range []int{10, 1000, 12000, 50000} {
		var st State
		n := distinct * 3 // each user seen ~3 times over the hour
		for i := range n {
			at := time.Duration(i) * time.Hour / time.Duration(n)
			user := fmt.Sprintf("user-%d", rng.IntN(distinct))
			if i < distinct {
				user = fmt.Sprintf("user-%d", i) // every user at least once
			}
			set.ApplyEvent(&st, ev("viewing", at, "user_id", user))
		}
		now := t0.Add(time.Hour - time.Second)
		for name, p := range map[string]int{"distinct": DefaultPrecision, "distinct_p14": 14} {
			got := set.Values(&st, now)[name]
			stdErr := 1.04 / math.Sqrt(float64(int(1)<<p))
			rel := math.Abs(got-float64(distinct)) / float64(distinct)
			t.Logf("%s: %d distinct → %v (error %.2f%%, stated σ %.2f%%)", name, distinct, got, 100*rel, 100*stdErr)
			if rel > 3*stdErr {
				t.Errorf("%s: %d distinct estimated %v: error %.2f%% > 3σ = %.2f%%", name, distinct, got, 100*rel, 300*stdErr)
			}
		}
	}
	var st State
	var amounts []float64
	for i := range 20000 {
		a := math.Round(math.Exp(rng.NormFloat64()*1.2+3)*100) / 100 // log-normal prices, cents
		amounts = append(amounts, a)
		set.ApplyEvent(&st, ev("auctions", time.Duration(i)*time.Hour/20000, "amount", a))
	}
	slices.Sort(amounts)
	got := set.Values(&st, t0.Add(time.Hour-time.Second))
	for name, q := range map[string]float64{"p50": 0.5, "p90": 0.9, "p99": 0.99} {
		exact := amounts[int(math.Ceil(q*float64(len(amounts))))-1]
		rel := math.Abs(got[name]-exact) / exact
		t.Logf("%s: %v, exact %v (error %.3f%%)", name, got[name], exact, 100*rel)
		if rel > PercentileAccuracy+1e-9 {
			t.Errorf("%s = %v, exact %v: error %.3f%% > %.0f%%", name, got[name], exact, 100*rel, 100*PercentileAccuracy)
		}
	}
}

// top_k is exact while a tile's distinct keys fit its capacity; past it
// (Space-Saving), counts overestimate by at most the tile's events over the
// capacity, and heavy hitters are still found.
func TestTopKBeyondCapacity(t *testing.T) {
	set := mustSet(t, Definition{Name: "top", Sources: []string{"chat"}, Field: "user_id", Aggregation: TopK, K: 3, Window: SlidingWindow(10*time.Minute, time.Minute), Lateness: time.Minute})
	rng := rand.New(rand.NewPCG(13, 14))
	var st State
	exact := map[string]int64{}
	for i := range 20000 {
		u := fmt.Sprintf("u%d", rng.IntN(5000)) // a long tail
		if i%10 == 0 {
			u = "heavy-1"
		} else if i%25 == 0 {
			u = "heavy-2"
		}
		exact[u]++
		set.ApplyEvent(&st, ev("chat", time.Duration(i)*10*time.Minute/20000, "user_id", u))
	}
	r, _ := set.Result(&st, "top", t0.Add(10*time.Minute-time.Millisecond))
	if r.Top[0].Key != "heavy-1" || r.Top[1].Key != "heavy-2" {
		t.Fatalf("top %v", r.Top)
	}
	// 10 tiles of 2000 events, capacity 30: error ≤ 2000/30 per tile.
	for _, kc := range r.Top[:2] {
		if over := kc.Count - exact[kc.Key]; over < 0 || over > 10*2000/30 {
			t.Errorf("%s: %d counted, %d exact", kc.Key, kc.Count, exact[kc.Key])
		}
	}
}
