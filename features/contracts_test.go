package features

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"
)

// The stated contracts of README.md ("Aggregations", "Stated errors") at
// small n, on window edges and on empty windows, besides approx_percentile
// (percentile_test.go).

// approx_distinct counts exactly while the window's merged sketch is sparse
// (up to 25-bit hash collisions): at the default precision 12 that is the
// first ~1500 distinct values, over one tile or many.
func TestApproxDistinctExactWhileSparse(t *testing.T) {
	w := SlidingWindow(time.Hour, 5*time.Minute)
	set := mustSet(t,
		Definition{Name: "one_tile", Sources: []string{"viewing"}, Filter: `type == "join"`, Field: "user_id", Aggregation: ApproxDistinct, Window: w, Lateness: time.Hour},
		Definition{Name: "tiles", Sources: []string{"viewing"}, Filter: `type == "heartbeat"`, Field: "user_id", Aggregation: ApproxDistinct, Window: w, Lateness: time.Hour},
	)
	var st State
	now := t0.Add(time.Hour - time.Second)
	if r, _ := set.Result(&st, "tiles", now); r.Empty || r.Number != 0 {
		t.Fatalf("empty window: %+v, want 0", r)
	}
	for n := 1; n <= 1200; n++ {
		user := fmt.Sprint("user-", n)
		set.ApplyEvent(&st, ev("viewing", time.Minute, "type", "join", "user_id", user))
		set.ApplyEvent(&st, ev("viewing", time.Duration(n%12)*5*time.Minute, "type", "heartbeat", "user_id", user))
		set.ApplyEvent(&st, ev("viewing", time.Duration(n%7)*5*time.Minute, "type", "heartbeat", "user_id", user)) // seen twice
		if n > 200 && n%50 != 0 {
			continue
		}
		for _, name := range []string{"one_tile", "tiles"} {
			if r, _ := set.Result(&st, name, now); r.Number != float64(n) {
				t.Fatalf("%s: %d distinct counted %v", name, n, r.Number)
			}
		}
	}
}

// top_k lists count descending, then key ascending, over the window's
// tiles, and cuts at k after that order; arrival order does not matter.
func TestTopKTiesByKey(t *testing.T) {
	set := mustSet(t, Definition{Name: "top", Sources: []string{"chat"}, Field: "user_id", Aggregation: TopK, K: 3,
		Window: SlidingWindow(10*time.Minute, time.Minute), Lateness: time.Hour})
	var st State
	// z, y, x, v 3 each, w 4, in reverse key order and across tiles.
	for i, u := range []string{"z", "y", "x", "v", "z", "y", "x", "v", "w", "w", "z", "y", "x", "v", "w", "w"} {
		set.ApplyEvent(&st, ev("chat", time.Duration(i%4)*time.Minute, "user_id", u))
	}
	want := []KeyCount{{"w", 4}, {"v", 3}, {"x", 3}}
	for _, s := range []*State{&st, roundTrip(t, &st)} {
		for range 20 { // a map-ordered merge would vary
			if r, _ := set.Result(s, "top", t0.Add(5*time.Minute)); !slices.Equal(r.Top, want) {
				t.Fatalf("top %v, want %v", r.Top, want)
			}
		}
	}
	if r, _ := set.Result(&st, "top", t0.Add(time.Hour)); r.Top != nil && len(r.Top) != 0 {
		t.Fatalf("empty window: %v", r.Top)
	} else if j, _ := json.Marshal(r); string(j) != "[]" {
		t.Fatalf("empty window JSON %s", j)
	}
}

// Events at the same time: last gives the greater value (numbers by value,
// strings by bytes) and last_k_distinct lists the greater first, so that a
// last_k_distinct of k 1 on a string field is its last; whatever the
// arrival order.
func TestLastTies(t *testing.T) {
	w := SlidingWindow(10*time.Minute, time.Minute)
	defs := []Definition{
		{Name: "last_user", Sources: []string{"auctions"}, Field: "user_id", Aggregation: Last, Window: w, Lateness: time.Hour},
		{Name: "last_amount", Sources: []string{"auctions"}, Field: "amount", Aggregation: Last, Window: w, Lateness: time.Hour},
		{Name: "last_1", Sources: []string{"auctions"}, Field: "user_id", Aggregation: LastKDistinct, K: 1, Window: w, Lateness: time.Hour},
		{Name: "last_3", Sources: []string{"auctions"}, Field: "user_id", Aggregation: LastKDistinct, K: 3, Window: w, Lateness: time.Hour},
	}
	set := mustSet(t, defs...)
	type bid struct {
		at     time.Duration
		user   string
		amount float64
	}
	bids := []bid{{time.Minute, "ann", 9}, {2 * time.Minute, "bob", 5}, {2 * time.Minute, "cid", 30}, {2 * time.Minute, "abe", 100}, {90 * time.Second, "dan", 1}}
	orders := [][]int{{0, 1, 2, 3, 4}, {3, 2, 1, 0, 4}, {4, 2, 3, 1, 0}, {1, 3, 0, 4, 2}}
	for _, order := range orders {
		var st State
		for _, i := range order {
			b := bids[i]
			set.ApplyEvent(&st, ev("auctions", b.at, "type", "bid", "user_id", b.user, "amount", b.amount))
		}
		for _, s := range []*State{&st, roundTrip(t, &st)} {
			r := set.Results(s, t0.Add(5*time.Minute))
			if r["last_user"].Text != "cid" || r["last_amount"].Number != 100 ||
				!slices.Equal(r["last_1"].Items, []string{"cid"}) || !slices.Equal(r["last_3"].Items, []string{"cid", "bob", "abe"}) {
				t.Fatalf("order %v: last_user %q, last_amount %v, last_1 %q, last_3 %q", order,
					r["last_user"].Text, r["last_amount"].Number, r["last_1"].Items, r["last_3"].Items)
			}
		}
	}
}

// An empty window — no event yet, or the window slid past them — is null
// (Result.Empty, JSON null, no Numeric) for mean, min, max, last and
// approx_percentile; 0 for count, sum, approx_distinct and the decayed
// sums; [] for top_k and last_k_distinct.
func TestEmptyWindows(t *testing.T) {
	w := SlidingWindow(10*time.Minute, time.Minute)
	tum := TumblingWindow(10*time.Minute, Complete)
	mk := func(name string, agg Aggregation, field string, win Window) Definition {
		d := Definition{Name: name, Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: field, Aggregation: agg, Window: win, Lateness: time.Minute}
		switch agg {
		case TopK, LastKDistinct:
			d.K = 2
		case ApproxPercentile:
			d.P = 0.5
		case DecayedSum, DecayedCount:
			d.HalfLife, d.Window = time.Second, AllTimeWindow()
		}
		return d
	}
	want := map[string]string{}
	var defs []Definition
	for _, c := range []struct {
		agg   Aggregation
		field string
		json  string
	}{
		{Count, "", "0"}, {Sum, "amount", "0"}, {Mean, "amount", "null"}, {Min, "amount", "null"}, {Max, "amount", "null"},
		{Last, "amount", "null"}, {Last, "user_id", "null"}, {LastKDistinct, "user_id", "[]"}, {ApproxDistinct, "user_id", "0"},
		{ApproxPercentile, "amount", "null"}, {TopK, "user_id", "[]"}, {DecayedSum, "amount", "0"}, {DecayedCount, "", "0"},
	} {
		for wi, win := range []Window{w, tum} {
			name := fmt.Sprintf("%s_%s_%d", c.agg, c.field, wi)
			defs = append(defs, mk(name, c.agg, c.field, win))
			want[name] = c.json
		}
	}
	set := mustSet(t, defs...)
	check := func(what string, st *State, now time.Time) {
		t.Helper()
		nums := set.Numbers(st, now)
		for name, r := range set.Results(st, now) {
			j, _ := json.Marshal(r)
			_, numeric := nums[name]
			if string(j) != want[name] || r.Empty != (want[name] == "null") || numeric == (want[name] == "null") {
				t.Errorf("%s: %s = %s (empty %v, numeric %v), want %s", what, name, j, r.Empty, numeric, want[name])
			}
		}
	}
	var st State
	check("no event", &st, t0)
	set.ApplyEvent(&st, ev("auctions", time.Minute, "type", "bid", "user_id", "ann", "amount", 10.0))
	set.ApplyEvent(&st, ev("auctions", 2*time.Hour, "type", "start")) // moves the watermark: tiles evicted
	check("slid past", &st, t0.Add(2*time.Hour))
	check("slid past, decoded", roundTrip(t, &st), t0.Add(2*time.Hour))
}

// Tumbling windows are [k·size, (k+1)·size): an event on a boundary is in
// the later window; complete reads the window that ended at or before now
// (at the boundary itself, the one just ended), current the one holding
// now. Mean and approx_percentile read null where it is empty.
func TestTumblingEdges(t *testing.T) {
	const size = 10 * time.Minute
	mk := func(name string, agg Aggregation, emit Emit) Definition {
		d := Definition{Name: name, Sources: []string{"auctions"}, Field: "amount", Aggregation: agg,
			Window: TumblingWindow(size, emit), Lateness: time.Minute}
		switch agg {
		case ApproxPercentile:
			d.P = 0.9
		case Count:
			d.Field = ""
		}
		return d
	}
	set := mustSet(t, mk("n_done", Count, Complete), mk("n_cur", Count, Current), mk("mean_done", Mean, Complete),
		mk("mean_cur", Mean, Current), mk("p90_done", ApproxPercentile, Complete), mk("p90_cur", ApproxPercentile, Current))
	var st State
	for _, e := range []struct {
		at time.Duration
		x  float64
	}{{time.Second, 1}, {size / 2, 2}, {size - time.Millisecond, 3}, {size, 100}, {size + time.Second, 200}} {
		set.ApplyEvent(&st, ev("auctions", e.at, "type", "bid", "amount", e.x))
	}
	null := -1.0
	for _, c := range []struct {
		now                                   time.Duration
		nDone, nCur, mDone, mCur, pDone, pCur float64
	}{
		{size - time.Millisecond, 0, 3, null, 2, null, 3},
		{size, 3, 2, 2, 150, 3, 200},
		{2*size - time.Millisecond, 3, 2, 2, 150, 3, 200},
		{2 * size, 2, 0, 150, null, 200, null},
	} {
		for _, s := range []*State{&st, roundTrip(t, &st)} {
			r := set.Results(s, t0.Add(c.now))
			for name, want := range map[string]float64{"n_done": c.nDone, "n_cur": c.nCur, "mean_done": c.mDone,
				"mean_cur": c.mCur, "p90_done": c.pDone, "p90_cur": c.pCur} {
				got := r[name]
				if want == null && !got.Empty || want != null && (got.Empty || got.Number != want) {
					t.Errorf("at %v: %s = %+v, want %v", c.now, name, got, want)
				}
			}
		}
	}
}
