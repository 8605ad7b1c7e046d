package features

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"
)

// allAggregations is one feature per aggregation and window kind, with a
// lateness of 2 minutes, over the livestream entity.
func allAggregations(t testing.TB) *Set {
	lat := 2 * time.Minute
	w := SlidingWindow(10*time.Minute, time.Minute)
	src := func(s ...string) []string { return s }
	return mustSet(t,
		Definition{Name: "count", Sources: src("chat"), Aggregation: Count, Window: w, Lateness: lat},
		Definition{Name: "count_multi", Sources: src("chat", "viewing"), Aggregation: Count, Window: w, Lateness: lat},
		Definition{Name: "sum", Sources: src("auctions"), Filter: `type == "bid"`, Field: "amount", Aggregation: Sum, Window: w, Lateness: lat},
		Definition{Name: "mean", Sources: src("auctions"), Filter: `type == "bid"`, Field: "amount", Aggregation: Mean, Window: w, Lateness: lat},
		Definition{Name: "min", Sources: src("auctions"), Filter: `type == "bid"`, Field: "amount", Aggregation: Min, Window: w, Lateness: lat},
		Definition{Name: "max", Sources: src("auctions"), Filter: `type == "bid"`, Field: "amount", Aggregation: Max, Window: w, Lateness: lat},
		Definition{Name: "last", Sources: src("auctions"), Filter: `type == "bid"`, Field: "user_id", Aggregation: Last, Window: w, Lateness: lat},
		Definition{Name: "last_num", Sources: src("auctions"), Filter: `type == "bid"`, Field: "amount", Aggregation: Last, Window: AllTimeWindow(), Lateness: lat},
		Definition{Name: "last_k", Sources: src("viewing"), Field: "user_id", Aggregation: LastKDistinct, K: 5, Window: w, Lateness: lat},
		Definition{Name: "distinct", Sources: src("viewing"), Field: "user_id", Aggregation: ApproxDistinct, Window: w, Lateness: lat},
		Definition{Name: "distinct_small", Sources: src("viewing"), Field: "user_id", Aggregation: ApproxDistinct, Precision: 4, Window: w, Lateness: lat},
		Definition{Name: "p90", Sources: src("auctions"), Filter: `type == "bid"`, Field: "amount", Aggregation: ApproxPercentile, P: 0.9, Window: w, Lateness: lat},
		Definition{Name: "top_tight", Sources: src("chat"), Field: "user_id", Aggregation: TopK, K: 3, Capacity: 200, Window: w, Lateness: lat},
		Definition{Name: "tumbling", Sources: src("chat"), Aggregation: Count, Window: TumblingWindow(15*time.Minute, Complete), Lateness: lat},
		Definition{Name: "tumbling_now", Sources: src("chat"), Aggregation: Count, Window: TumblingWindow(15*time.Minute, Current), Lateness: lat},
		Definition{Name: "all_time", Sources: src("auctions"), Filter: `type == "sold"`, Field: "amount", Aggregation: Sum, Window: AllTimeWindow(), Lateness: lat},
		Definition{Name: "decayed", Sources: src("auctions"), Filter: `type == "sold"`, Field: "amount", Aggregation: DecayedSum, HalfLife: 30 * time.Minute, Lateness: lat, Window: AllTimeWindow()},
		Definition{Name: "decayed_count", Sources: src("chat"), Aggregation: DecayedCount, HalfLife: 10 * time.Minute, Lateness: lat, Window: AllTimeWindow()},
	)
}

// simEvents is a simulated run of one stream: n events a second apart
// (chat, viewing, bids, sales), with 300 users.
func simEvents(n int, rng *rand.Rand) []MapEvent {
	out := make([]MapEvent, 0, n)
	for i := range n {
		at := time.Duration(i) * time.Second
		user := fmt.Sprintf("u%d", rng.IntN(300))
		switch r := rng.IntN(10); {
		case r < 4:
			out = append(out, ev("chat", at, "user_id", user, "livestream_id", "ls1"))
		case r < 7:
			out = append(out, ev("viewing", at, "type", []string{"join", "heartbeat", "leave"}[rng.IntN(3)], "user_id", user, "livestream_id", "ls1"))
		case r < 9:
			out = append(out, ev("auctions", at, "type", "bid", "user_id", user, "amount", float64(1+rng.IntN(500)), "livestream_id", "ls1"))
		default:
			out = append(out, ev("auctions", at, "type", "sold", "user_id", user, "amount", float64(1+rng.IntN(500)), "livestream_id", "ls1"))
		}
	}
	return out
}

// shuffleWithin reorders events so that each arrives at its event time
// plus a random delay below maxDelay: an order a consumer may see when
// every event is within the lateness.
func shuffleWithin(evs []MapEvent, maxDelay time.Duration, rng *rand.Rand) []MapEvent {
	type arr struct {
		e  MapEvent
		at time.Time
	}
	a := make([]arr, len(evs))
	for i, e := range evs {
		a[i] = arr{e, e.At.Add(time.Duration(rng.Int64N(int64(maxDelay))))}
	}
	sort.SliceStable(a, func(i, j int) bool { return a[i].at.Before(a[j].at) })
	out := make([]MapEvent, len(a))
	for i := range a {
		out[i] = a[i].e
	}
	return out
}

func testOrderIndependence(t *testing.T, n int, rng *rand.Rand) {
	set := allAggregations(t)
	evs := simEvents(n, rng)
	var inOrder State
	for _, e := range evs {
		if o := set.ApplyEvent(&inOrder, e); o.Late > 0 {
			t.Fatalf("in-order event late: %+v", o)
		}
	}
	for trial := range 3 {
		var shuffled State
		for _, e := range shuffleWithin(evs, 2*time.Minute, rng) {
			if o := set.ApplyEvent(&shuffled, e); o.Late > 0 {
				t.Fatalf("trial %d: event at %v dropped", trial, e.At)
			}
		}
		end := evs[len(evs)-1].At
		for _, now := range []time.Time{end, end.Add(-time.Minute), end.Add(7 * time.Minute), end.Add(time.Hour)} {
			a, b := set.Results(&inOrder, now), set.Results(&shuffled, now)
			for name, ra := range a {
				rb := b[name]
				if name == "decayed" || name == "decayed_count" {
					if math.Abs(ra.Number-rb.Number) > 1e-9*math.Abs(ra.Number) {
						t.Errorf("trial %d %s at %v: %v vs %v", trial, name, now, ra.Number, rb.Number)
					}
					continue
				}
				if !reflect.DeepEqual(ra, rb) {
					t.Errorf("trial %d %s at %v: in order %+v, shuffled %+v", trial, name, now, ra, rb)
				}
			}
		}
		// Apart from the decayed sums' float rounding, the states encode
		// to the same bytes.
		ea, _ := withoutDecay(&inOrder).MarshalBinary()
		eb, _ := withoutDecay(&shuffled).MarshalBinary()
		if !bytes.Equal(ea, eb) {
			t.Errorf("trial %d: encodings differ (%d vs %d bytes)", trial, len(ea), len(eb))
			for name := range inOrder.Series {
				x := State{Series: map[string]*Series{name: inOrder.Series[name]}}
				y := State{Series: map[string]*Series{name: shuffled.Series[name]}}
				bx, _ := x.MarshalBinary()
				by, _ := y.MarshalBinary()
				if !bytes.Equal(bx, by) {
					t.Errorf("  series %s differs", name)
				}
			}
		}
	}
}

func withoutDecay(st *State) *State {
	c := *st
	c.Series = map[string]*Series{}
	for k, v := range st.Series {
		if v.kind != pDecay {
			c.Series[k] = v
		}
	}
	return &c
}
