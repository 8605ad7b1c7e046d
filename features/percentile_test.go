package features

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
)

// refQuantile is the reference for approx_percentile: the inverted
// empirical CDF, the smallest value x of vals with #{v ≤ x} ≥ p·n. It
// does not sort or index by rank, so it checks the engine's ⌈p·n⌉ rather
// than restating it.
func refQuantile(vals []float64, p float64) float64 {
	best := math.Inf(1)
	for _, x := range vals {
		le := 0
		for _, v := range vals {
			if v <= x {
				le++
			}
		}
		if float64(le) >= p*float64(len(vals)) && x < best {
			best = x
		}
	}
	return best
}

var testPs = []float64{0.01, 0.1, 0.25, 1.0 / 3, 0.5, 0.7, 0.75, 0.9, 0.95, 0.99}

// pctSet has one approx_percentile feature per p of testPs ("p0".."p9")
// over w, fed by auctions bids.
func pctSet(t testing.TB, w Window, lateness time.Duration) *Set {
	t.Helper()
	var defs []Definition
	for i, p := range testPs {
		defs = append(defs, Definition{Name: fmt.Sprint("p", i), Sources: []string{"auctions"}, Filter: `type == "bid"`,
			Field: "amount", Aggregation: ApproxPercentile, P: p, Window: w, Lateness: lateness})
	}
	return mustSet(t, defs...)
}

func bidAt(at time.Duration, amount float64) MapEvent {
	return ev("auctions", at, "type", "bid", "amount", amount)
}

// roundTrip is st after an encode and a decode (tiles stay encoded until
// read: the lazy path serving reads).
func roundTrip(t testing.TB, st *State) *State {
	t.Helper()
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &back
}

// The numpy table: numpy.quantile(vals[:n], p, method="inverted_cdf") for
// testPs (numpy 2.4), the method approx_percentile's README names.
func TestPercentileMatchesNumpyInvertedCDF(t *testing.T) {
	vals := []float64{455.5, 407.5, 12, 12, 99.99, 250, 250, 250, 3.5, 1000, 87, 87, 42.25, 310, 5, -20, 0}
	numpy := map[int][]float64{
		1:  {455.5, 455.5, 455.5, 455.5, 455.5, 455.5, 455.5, 455.5, 455.5, 455.5},
		2:  {407.5, 407.5, 407.5, 407.5, 407.5, 455.5, 455.5, 455.5, 455.5, 455.5},
		7:  {12.0, 12.0, 12.0, 99.99, 250.0, 250.0, 407.5, 455.5, 455.5, 455.5},
		15: {3.5, 5.0, 12.0, 42.25, 99.99, 250.0, 310.0, 455.5, 1000.0, 1000.0},
		17: {-20.0, 0.0, 12.0, 12.0, 87.0, 250.0, 250.0, 455.5, 1000.0, 1000.0},
	}
	// (numpy's method="lower" — pandas' interpolation="lower", the
	// DDSketch's own convention — gives 407.5 for p = 0.9, n = 15: the
	// value issue 14 reported.)
	set := pctSet(t, SlidingWindow(time.Hour, 5*time.Minute), time.Hour)
	for n, want := range numpy {
		var st State
		for i, x := range vals[:n] {
			set.ApplyEvent(&st, bidAt(time.Duration(i)*3*time.Minute, x))
		}
		now := t0.Add(59 * time.Minute)
		for _, s := range []*State{&st, roundTrip(t, &st)} {
			for i, p := range testPs {
				r, _ := set.Result(s, fmt.Sprint("p", i), now)
				if r.Empty || r.Number != want[i] || refQuantile(vals[:n], p) != want[i] {
					t.Errorf("n=%d p=%v: got %v (empty %v), numpy %v, reference %v", n, p, r.Number, r.Empty, want[i], refQuantile(vals[:n], p))
				}
			}
		}
	}
}

// n = 1…100 values with ties, negatives and zeros, spread over a window's
// tiles (each below PercentileExact): the value is exactly the reference's,
// live and after a codec round trip, and the same after shuffling the
// arrival order within the lateness.
func TestPercentileExactAtSmallN(t *testing.T) {
	set := pctSet(t, SlidingWindow(time.Hour, 5*time.Minute), time.Hour)
	rng := rand.New(rand.NewPCG(21, 22))
	now := t0.Add(time.Hour - time.Second)
	for n := 1; n <= 100; n++ {
		for trial := range 3 {
			var st, shuffled State
			vals := make([]float64, n)
			evs := make([]MapEvent, n)
			for i := range vals {
				switch trial {
				case 0: // few distinct values: ties
					vals[i] = float64(rng.IntN(6)) * 25
				case 1: // cents, some negative
					vals[i] = float64(rng.IntN(200000)-20000) / 100
				default: // log-normal prices: adjacent ranks differ by more than 1 %
					vals[i] = math.Round(math.Exp(rng.NormFloat64()*1.5+4)*100) / 100
				}
				evs[i] = bidAt(time.Duration(rng.Int64N(int64(time.Hour-time.Second))), vals[i])
			}
			for _, e := range evs {
				set.ApplyEvent(&st, e)
			}
			rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			for _, e := range evs {
				set.ApplyEvent(&shuffled, e)
			}
			for _, s := range []*State{&st, roundTrip(t, &st), &shuffled} {
				for i, p := range testPs {
					r, _ := set.Result(s, fmt.Sprint("p", i), now)
					if want := refQuantile(vals, p); r.Empty || r.Number != want {
						t.Fatalf("n=%d trial %d p=%v: got %v (empty %v), want %v (rank %v)", n, trial, p, r.Number, r.Empty, want, nearestRank(p, float64(n)))
					}
				}
			}
			a, _ := st.MarshalBinary()
			b, _ := shuffled.MarshalBinary()
			if string(a) != string(b) {
				t.Fatalf("n=%d trial %d: arrival order changed the encoding", n, trial)
			}
		}
	}
}

// Beyond PercentileExact values in a tile the sketch answers, within
// PercentileAccuracy of the value at rank ⌈p·n⌉ — at n just past the
// bound (where the sketch's own ⌊p·(n−1)⌋+1 convention is off by a rank),
// with exact and sketched tiles mixed in one window, with negatives and
// zeros, and at 50k.
func TestPercentileSketchWithinStatedError(t *testing.T) {
	w := SlidingWindow(time.Hour, 5*time.Minute)
	set := pctSet(t, w, time.Hour)
	rng := rand.New(rand.NewPCG(23, 24))
	price := func() float64 { return math.Round(math.Exp(rng.NormFloat64()*1.2+3)*100) / 100 }
	cases := []struct {
		name string
		n    int
		at   func(i int) time.Duration // event time
		val  func(i int) float64
	}{
		{"one tile of 129", 129, func(int) time.Duration { return time.Minute }, func(int) float64 { return price() }},
		{"one tile of 300", 300, func(int) time.Duration { return time.Minute }, func(int) float64 { return price() }},
		{"one sketch tile, 11 exact", 400, func(i int) time.Duration {
			if i < 290 {
				return time.Minute
			}
			return time.Duration(1+i%11) * 5 * time.Minute // 10 per later tile
		}, func(int) float64 { return price() }},
		{"negatives and zeros", 1000, func(i int) time.Duration { return time.Duration(i) * time.Hour / 1000 }, func(i int) float64 {
			switch i % 5 {
			case 0:
				return 0
			case 1, 2:
				return -price()
			}
			return price()
		}},
		{"50k", 50000, func(i int) time.Duration { return time.Duration(i) * time.Hour / 50000 }, func(int) float64 { return price() }},
	}
	now := t0.Add(time.Hour - time.Second)
	for _, c := range cases {
		var st State
		vals := make([]float64, c.n)
		for i := range vals {
			vals[i] = c.val(i)
			set.ApplyEvent(&st, bidAt(c.at(i), vals[i]))
		}
		sorted := slices.Sorted(slices.Values(vals))
		for _, s := range []*State{&st, roundTrip(t, &st)} {
			for i, p := range testPs {
				r, _ := set.Result(s, fmt.Sprint("p", i), now)
				want := sorted[int(math.Ceil(p*float64(c.n)))-1]
				if c.n <= 2000 && want != refQuantile(vals, p) {
					t.Fatalf("%s: reference disagrees", c.name)
				}
				if r.Empty || math.Abs(r.Number-want) > PercentileAccuracy*math.Abs(want)+1e-9 {
					t.Errorf("%s p=%v: got %v, exact %v at rank ⌈p·n⌉ = %v: error %.2f%% > %.0f%%", c.name, p, r.Number, want,
						math.Ceil(p*float64(c.n)), 100*math.Abs(r.Number-want)/math.Abs(want), 100*PercentileAccuracy)
				}
			}
		}
	}
}

// A tile is exact up to PercentileExact values and a sketch from the next
// one, and its encoding says which (the exact form also after a decode).
func TestPercentileTileTurnsIntoASketch(t *testing.T) {
	set := pctSet(t, SlidingWindow(time.Hour, 5*time.Minute), time.Hour)
	var st State
	var vals []float64
	now := t0.Add(10 * time.Minute)
	for i := range PercentileExact + 1 {
		x := float64((i*7919)%1000) + 0.25 // distinct, in no order
		vals = append(vals, x)
		set.ApplyEvent(&st, bidAt(time.Minute, x))
		back := roundTrip(t, &st)
		back.Expand()
		_, exact := back.Series["p0"].refs[0].ext.(*pctExact)
		_, sketch := back.Series["p0"].refs[0].ext.(*ddsketch.DDSketch)
		if exact != (i < PercentileExact) || sketch == exact {
			t.Fatalf("after %d values: exact %v, sketch %v", i+1, exact, sketch)
		}
		r, _ := set.Result(&st, "p7", now)
		if want := refQuantile(vals, testPs[7]); exact && r.Number != want ||
			math.Abs(r.Number-want) > PercentileAccuracy*want {
			t.Fatalf("after %d values: p90 %v, want %v", i+1, r.Number, want)
		}
	}
}

// Window edges: a sliding window at now covers the tiles overlapping
// (now−size, now]; an empty window is null, not 0; a late event within the
// lateness counts, one beyond it is dropped and counted as dropped.
func TestPercentileWindowEdgesEmptyAndLate(t *testing.T) {
	const size, hop, lateness = 10 * time.Minute, time.Minute, 2 * time.Minute
	set := pctSet(t, SlidingWindow(size, hop), lateness)
	type bid struct {
		at time.Duration
		x  float64
	}
	var st State
	var kept []bid
	inWindow := func(now time.Duration) []float64 {
		var out []float64
		for _, b := range kept {
			start := b.at.Truncate(hop)
			if start+hop > now-size && start <= now {
				out = append(out, b.x)
			}
		}
		return out
	}
	check := func(now time.Duration) {
		t.Helper()
		want := inWindow(now)
		for _, s := range []*State{&st, roundTrip(t, &st)} {
			for i, p := range testPs {
				r, _ := set.Result(s, fmt.Sprint("p", i), t0.Add(now))
				switch {
				case len(want) == 0 && !r.Empty:
					t.Fatalf("at %v p=%v: %v for an empty window, want null", now, p, r.Number)
				case len(want) > 0 && (r.Empty || r.Number != refQuantile(want, p)):
					t.Fatalf("at %v p=%v: %v (empty %v), want %v of %v", now, p, r.Number, r.Empty, refQuantile(want, p), want)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(25, 26))
	check(0)
	for i := range 90 { // one bid every 20s for 30 minutes
		b := bid{time.Duration(i) * 20 * time.Second, float64(100 + rng.IntN(50))}
		set.ApplyEvent(&st, bidAt(b.at, b.x))
		kept = append(kept, b)
		for _, d := range []time.Duration{0, time.Second, 39 * time.Second, time.Minute} {
			check(b.at + d)
		}
		if i%3 == 0 { // on tile edges: the tile starting at now is in, the one ending at now−size out
			now := b.at.Truncate(time.Minute)
			check(now)
			check(now + size - time.Millisecond)
			check(now + size)
			check(now + size + hop)
		}
	}
	// A late bid within the lateness joins its tile; one beyond is dropped.
	late := bid{29*time.Minute + 40*time.Second - lateness + time.Second, 1}
	if o := set.ApplyEvent(&st, bidAt(late.at, late.x)); o.Late != 0 {
		t.Fatalf("within the lateness: %+v", o)
	}
	kept = append(kept, late)
	check(30 * time.Minute)
	if o := set.ApplyEvent(&st, bidAt(27*time.Minute, 1e6)); o.Late != len(testPs) || st.Dropped["p0"] != 1 {
		t.Fatalf("beyond the lateness: %+v, dropped %v", o, st.Dropped)
	}
	check(30 * time.Minute)
	check(40*time.Minute + hop) // empty again
	r, _ := set.Result(&st, "p5", t0.Add(45*time.Minute))
	if j, _ := json.Marshal(r); string(j) != "null" || !r.Empty {
		t.Fatalf("empty window: %s", j)
	}
	if _, ok := r.Numeric(); ok {
		t.Fatal("empty window has a number")
	}
	if _, ok := set.Numbers(&st, t0.Add(45*time.Minute))["p5"]; ok {
		t.Fatal("Numbers gives a number for an empty window")
	}
}

// State written before the exact tiles (every percentile tile a DDSketch,
// partial kind 9) still decodes and reads at the stated rank, and becomes
// the current kind on its next write. testdata/codec/ddsketch_tiles_v1.hex
// is a p90 over 15 bids 100.5, 125.5, …, 450.5 at minutes 0..14 as the
// version before wrote it (it read 399.5, rank 13).
func TestPercentileOldSketchTilesStillDecode(t *testing.T) {
	data, err := os.ReadFile("testdata/codec/ddsketch_tiles_v1.hex")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	set := mustSet(t, Definition{Name: "p90", Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: "amount",
		Aggregation: ApproxPercentile, P: 0.9, Window: SlidingWindow(time.Hour, 5*time.Minute), Lateness: 2 * time.Minute})
	var st State
	if err := st.UnmarshalBinary(bin); err != nil {
		t.Fatal(err)
	}
	vals := make([]float64, 15)
	for i := range vals {
		vals[i] = float64(100+25*i) + 0.5
	}
	now := t0.Add(15 * time.Minute)
	within := func(what string, s *State, vals []float64) {
		t.Helper()
		r, _ := set.Result(s, "p90", now)
		want := refQuantile(vals, 0.9)
		if r.Empty || math.Abs(r.Number-want) > PercentileAccuracy*want {
			t.Fatalf("%s: p90 %v, want %v ± 1%%", what, r.Number, want)
		}
	}
	if st.Series["p90"].kind != pDD {
		t.Fatalf("kind %d", st.Series["p90"].kind)
	}
	within("old tiles", &st, vals)
	set.ApplyEvent(&st, bidAt(14*time.Minute+30*time.Second, 999.5)) // into the old sketch tile
	set.ApplyEvent(&st, bidAt(15*time.Minute, 475.5))                // a new, exact tile
	vals = append(vals, 999.5, 475.5)
	if st.Series["p90"].kind != pPct {
		t.Fatalf("kind %d after a write", st.Series["p90"].kind)
	}
	within("after writes", &st, vals)
	within("after writes and a round trip", roundTrip(t, &st), vals)
}

// An exact tile's encoding keeps every value bit for bit, in the scaled
// form when all are whole units or cents and as floats otherwise.
func TestPercentileExactEncodings(t *testing.T) {
	big := float64(1 << 51)
	for _, c := range []struct {
		vals []float64
		form byte
	}{
		{[]float64{12, 12, -3, 0, 99, 1e12}, pctFormExactScaled},
		{[]float64{12.5, 0.01, -7.99, 42, 42}, pctFormExactScaled},
		{[]float64{big, -big, 1, 2}, pctFormExactScaled},             // integers up to 2^52
		{[]float64{big, 0.5}, pctFormExact},                          // big·100 beyond 2^52: floats
		{[]float64{1.0 / 3, 2, 1e-9, math.MaxFloat64}, pctFormExact}, // not cents
		{[]float64{math.Copysign(0, -1), 0.25}, pctFormExactScaled},  // -0 kept as 0
	} {
		set := mustSet(t, Definition{Name: "p", Sources: []string{"auctions"}, Field: "amount", Aggregation: ApproxPercentile, P: 0.5,
			Window: SlidingWindow(time.Hour, 5*time.Minute), Lateness: time.Hour})
		var st State
		for _, x := range c.vals {
			set.ApplyEvent(&st, ev("auctions", time.Minute, "amount", x))
		}
		tile, _ := appendExt(nil, pPct, st.Series["p"].refs[0].ext, 0)
		if tile[0] != c.form {
			t.Errorf("%v: form %d, want %d", c.vals, tile[0], c.form)
		}
		back := roundTrip(t, &st)
		back.Expand()
		got := back.Series["p"].refs[0].ext.(*pctExact).v
		want := slices.Sorted(slices.Values(c.vals))
		for i := range want {
			if want[i] == 0 {
				want[i] = 0
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%v: decoded %v", c.vals, got)
		}
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Errorf("%v: decoded %v, want %v", c.vals, got, want)
				break
			}
		}
	}
}

// kthOfRuns selects like sorting the runs' union would, for any rank,
// with ties, empty runs and more runs than its stack buffers.
func TestKthOfRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for trial := range 2000 {
		runs := make([][]float64, 1+rng.IntN(30))
		var all []float64
		for i := range runs {
			r := make([]float64, rng.IntN(20))
			for j := range r {
				r[j] = float64(rng.IntN(1 + trial%50))
			}
			slices.Sort(r)
			runs[i] = r
			all = append(all, r...)
		}
		if len(all) == 0 {
			continue
		}
		slices.Sort(all)
		k := rng.IntN(len(all))
		if got := kthOfRuns(slices.Clone(runs), k); got != all[k] {
			t.Fatalf("trial %d: k=%d of %v: got %v, want %v", trial, k, runs, got, all[k])
		}
	}
}
