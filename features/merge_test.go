package features

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// mergeDefs is one feature per aggregation kind and window shape, all
// reading auctions, whose fields the events below fill.
func mergeDefs() []Definition {
	w := SlidingWindow(time.Hour, 5*time.Minute)
	l := 2 * time.Minute
	d := func(name string, agg Aggregation, field string, win Window) Definition {
		return Definition{Name: name, Sources: []string{"auctions"}, Aggregation: agg, Field: field, Window: win, Lateness: l}
	}
	defs := []Definition{
		d("count_1h", Count, "", w),
		d("sum_1h", Sum, "amount", w),
		d("mean_1h", Mean, "amount", w),
		d("min_1h", Min, "amount", w),
		d("max_1h", Max, "amount", w),
		d("last_num", Last, "amount", w),
		d("last_str", Last, "user_id", w),
		d("last_k", LastKDistinct, "user_id", w),
		d("distinct_1h", ApproxDistinct, "user_id", w),
		d("p90_1h", ApproxPercentile, "amount", w),
		d("p50_day", ApproxPercentile, "amount", TumblingWindow(24*time.Hour, Current)),
		d("top_1h", TopK, "user_id", w),
		d("decayed_sum", DecayedSum, "amount", AllTimeWindow()),
		d("decayed_count", DecayedCount, "", AllTimeWindow()),
		d("count_all", Count, "", AllTimeWindow()),
		d("gmv_daily", Sum, "amount", TumblingWindow(24*time.Hour, Complete)),
		d("bids_10m", Count, "", SlidingWindow(10*time.Minute, time.Minute)),
		d("ids_dense", ApproxDistinct, "event_id", SlidingWindow(time.Hour, 30*time.Minute)),
	}
	for i := range defs {
		switch defs[i].Aggregation {
		case LastKDistinct, TopK:
			defs[i].K = 5
		case ApproxPercentile:
			defs[i].P = 0.9
		case DecayedSum, DecayedCount:
			defs[i].HalfLife = 10 * time.Minute
		}
	}
	defs[10].P = 0.5
	defs[len(defs)-1].Precision = 4 // dense after a few distinct values
	return defs
}

// mergeEvents is a random auction sequence over about two hours, mostly in
// order, some within the lateness, some beyond it (dropped).
func mergeEvents(r *rand.Rand, n int, t0 time.Time) []MapEvent {
	evs := make([]MapEvent, n)
	clock := t0
	users := 3 + r.IntN(40)
	for i := range evs {
		clock = clock.Add(time.Duration(r.Int64N(int64(2 * time.Hour / time.Duration(n) * 2))))
		at := clock
		switch x := r.IntN(20); {
		case x == 0:
			at = at.Add(-time.Duration(r.Int64N(int64(10 * time.Minute)))) // possibly beyond the lateness
		case x < 4:
			at = at.Add(-time.Duration(r.Int64N(int64(2 * time.Minute))))
		}
		evs[i] = MapEvent{Src: "auctions", At: at, Fields: map[string]any{
			"type":     "bid",
			"event_id": fmt.Sprintf("e%d", i),
			"user_id":  fmt.Sprintf("u%d", r.IntN(users)),
			"amount":   float64(r.IntN(2000) - 100),
		}}
	}
	return evs
}

// TestMergeEqualsApplyingAll is Merge's property: a state that applied
// the events from a random split point on (the live path, over a state
// whose other features saw every event) merged with a backfill's state of
// the events before it equals one state that applied them all, for every
// aggregation kind, at several read times, and through a codec round trip
// of either side.
func TestMergeEqualsApplyingAll(t *testing.T) {
	all := mustSet(t, mergeDefs()...)
	for _, name := range []string{"count_1h", "sum_1h", "p90_1h", "top_1h", "last_str", "decayed_sum", "distinct_1h", "gmv_daily"} {
		t.Run(name, func(t *testing.T) { testMergeSplit(t, all, name) })
	}
}

// testMergeSplit takes one feature as the old one (its state sees every
// event) and every other feature as new.
func testMergeSplit(t *testing.T, all *Set, oldName string) {
	var oldDefs, newDefs []Definition
	for _, d := range all.All() {
		if d.Name == oldName {
			oldDefs = append(oldDefs, d)
		} else {
			newDefs = append(newDefs, d)
		}
	}
	old, added := mustSet(t, oldDefs...), mustSet(t, newDefs...)
	t0 := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 16))
		n := 1 + r.IntN(600)
		if seed%10 == 0 {
			n = 3000 // sketched percentile tiles, dense-ish sketches, top_k past capacity
		}
		evs := mergeEvents(r, n, t0)
		split := r.IntN(n + 1)

		var want State
		for i := range evs {
			all.ApplyEvent(&want, evs[i])
		}
		// dst: the old feature saw the events before the split; the new
		// ones start at the split (the live path's first offset).
		var dst, src State
		for i := range evs[:split] {
			old.ApplyEvent(&dst, evs[i])
			added.ApplyEvent(&src, evs[i])
		}
		if seed%3 == 0 {
			dst, src = *roundTrip(t, &dst), *roundTrip(t, &src)
		}
		for i := range evs[split:] {
			all.ApplyEvent(&dst, evs[split+i])
		}
		if seed%4 == 0 {
			dst = *roundTrip(t, &dst)
		}
		added.Merge(&dst, &src)

		if !reflect.DeepEqual(want.Dropped, dst.Dropped) && len(want.Dropped)+len(dst.Dropped) > 0 {
			t.Errorf("seed %d split %d/%d: dropped %v, want %v", seed, split, n, dst.Dropped, want.Dropped)
		}
		last := evs[n-1].At
		for _, at := range []time.Time{last, last.Add(time.Minute), last.Add(17 * time.Minute), last.Add(2 * time.Hour)} {
			got, exp := all.Results(&dst, at), all.Results(&want, at)
			for _, d := range all.All() {
				if !sameResult(d, got[d.Name], exp[d.Name]) {
					t.Errorf("seed %d split %d/%d at +%v: %s = %+v, want %+v", seed, split, n, at.Sub(last), d.Name, got[d.Name], exp[d.Name])
				}
			}
		}
		// The merged state encodes and reads back the same.
		rt := roundTrip(t, &dst)
		if got, exp := all.Results(rt, last), all.Results(&dst, last); !reflect.DeepEqual(got, exp) {
			t.Errorf("seed %d: round trip of the merged state changed it", seed)
		}
	}
}

// sameResult compares one feature's results: exactly, but decayed sums
// within float rounding. (top_k stays within its capacity here: at most
// 42 users for a capacity of 50.)
func sameResult(d Definition, got, want Result) bool {
	switch d.Aggregation {
	case DecayedSum, DecayedCount:
		return got.Empty == want.Empty && math.Abs(got.Number-want.Number) <= 1e-9*math.Max(1, math.Abs(want.Number))
	}
	return reflect.DeepEqual(got, want)
}

// A backfill merges once per key, however often its record is replayed,
// clears its warming marks, and both survive the codec; a state no
// backfill touched encodes as before (flags 0).
func TestMergeBackfillOnce(t *testing.T) {
	all := mustSet(t, mergeDefs()...)
	added, missing := all.Subset([]string{"count_1h", "sum_1h", "nope"})
	if added.Len() != 2 || len(missing) != 1 || missing[0] != "nope" {
		t.Fatalf("subset: %d features, missing %v", added.Len(), missing)
	}
	t0 := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	evs := mergeEvents(rand.New(rand.NewPCG(7, 7)), 200, t0)
	var dst, src State
	for i := range evs[:100] {
		added.ApplyEvent(&src, evs[i])
	}
	for i := range evs[100:] {
		all.ApplyEvent(&dst, evs[100+i])
	}
	if b, _ := dst.MarshalBinary(); b[2] != 0 {
		t.Fatalf("flags %d without a backfill", b[2])
	}
	added.MarkWarming(&dst, "bf-1")
	if got := dst.WarmingNames(); !reflect.DeepEqual(got, []string{"count_1h", "sum_1h"}) {
		t.Fatalf("warming %v", got)
	}
	dst = *roundTrip(t, &dst)
	if !reflect.DeepEqual(dst.Warming, map[string]string{"count_1h": "bf-1", "sum_1h": "bf-1"}) {
		t.Fatalf("warming after a round trip: %v", dst.Warming)
	}
	if !added.MergeBackfill(&dst, &src, "bf-1") {
		t.Fatal("first merge refused")
	}
	once := all.Results(&dst, evs[199].At)
	dst = *roundTrip(t, &dst)
	if added.MergeBackfill(&dst, &src, "bf-1") {
		t.Fatal("second merge of the same backfill accepted")
	}
	if got := all.Results(&dst, evs[199].At); !reflect.DeepEqual(got, once) {
		t.Fatalf("a replayed merge changed values")
	}
	if len(dst.Warming) != 0 || !dst.Merged("bf-1") {
		t.Fatalf("after the merge: warming %v, merged %v", dst.Warming, dst.Backfilled)
	}
	added.MarkWarming(&dst, "bf-1")
	if len(dst.Warming) != 0 {
		t.Fatal("marked warming after its merge")
	}
	var want State
	for i := range evs {
		all.ApplyEvent(&want, evs[i])
	}
	for _, name := range []string{"count_1h", "sum_1h"} {
		if g, w := once[name], all.Results(&want, evs[199].At)[name]; !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %+v, want %+v", name, g, w)
		}
	}
	if _, ok := added.Reach(); !ok {
		t.Fatal("count_1h and sum_1h have a reach")
	}
	if d, _ := added.Reach(); d != time.Hour+5*time.Minute+2*time.Minute {
		t.Fatalf("reach %v", d)
	}
}

// top_k past its capacity: the merge keeps at most capacity keys, a listed
// count never underestimates its true count and overestimates it by at
// most n/capacity (Space-Saving's bound in one pass), and, on these skewed
// sequences, every key more frequent than n/capacity is listed (one pass's
// guarantee, checked here, not proven for the merge).
func TestTopKMergeBeyondCapacity(t *testing.T) {
	const capacity = 20
	for seed := uint64(1); seed <= 50; seed++ {
		r := rand.New(rand.NewPCG(seed, 3))
		var a, b topK
		truth := map[string]int64{}
		n := 200 + r.IntN(2000)
		split := r.IntN(n)
		for i := range n {
			// Skewed: a few heavy keys, a long tail.
			k := fmt.Sprint("k", min(r.IntN(200), r.IntN(200), r.IntN(200)))
			truth[k]++
			if i < split {
				a.add(k, capacity)
			} else {
				b.add(k, capacity)
			}
		}
		a.merge(&b, capacity)
		if len(a.e) > capacity {
			t.Fatalf("seed %d: %d keys kept, capacity %d", seed, len(a.e), capacity)
		}
		listed := map[string]int64{}
		for _, kc := range a.e {
			listed[kc.Key] = kc.Count
			if kc.Count < truth[kc.Key] || kc.Count > truth[kc.Key]+int64(n)/capacity {
				t.Errorf("seed %d: %s counted %d, true %d, bound +%d", seed, kc.Key, kc.Count, truth[kc.Key], n/capacity)
			}
		}
		for k, c := range truth {
			if _, ok := listed[k]; !ok && c > int64(n)/capacity {
				t.Errorf("seed %d: %s (true %d > n/capacity %d) not listed", seed, k, c, n/capacity)
			}
		}
	}
}
