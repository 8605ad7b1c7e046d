package features

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
)

// approx_percentile's contract (README.md, "Stated errors"): the value at
// the nearest rank ⌈p·n⌉ (1-based) of the window's n values — numpy's
// quantile(method="inverted_cdf"), SQL's PERCENTILE_DISC — exactly while
// every tile of the window holds at most PercentileExact values, and within
// PercentileAccuracy of it (relative) beyond.
//
// A tile keeps its values, sorted, in a pctExact until its
// (PercentileExact+1)-th value, then becomes a DDSketch holding them all. A
// window read whose tiles are all exact selects the rank from their values;
// otherwise it merges every tile into one sketch (exact tiles added value by
// value) and reads that rank from it. The sketch's own quantile method uses
// another convention (rank ⌊q·(n−1)⌋+1), so the rank is computed here and
// looked up in its stores.

// PercentileExact is how many values an approx_percentile tile keeps
// exactly before it becomes a DDSketch.
const PercentileExact = 128

// pctExact is a percentile tile's values, sorted ascending, with -0 stored
// as 0 (one encoding per tile whatever the arrival order).
type pctExact struct{ v []float64 }

// addPct adds x to the percentile tile whose materialized partial is ext
// (nil, *pctExact or *ddsketch.DDSketch), replacing ref.ext when the tile
// starts or turns into a sketch. It reports whether x was added (a sketch
// refuses values beyond its indexable range, about ±1.8e308).
func addPct(ref *tileRef, ext any, x float64) bool {
	if x == 0 {
		x = 0 // -0 → 0
	}
	switch e := ext.(type) {
	case *ddsketch.DDSketch:
		return e != nil && e.Add(x) == nil
	case *pctExact:
		if e != nil && len(e.v) < PercentileExact {
			i, _ := slices.BinarySearch(e.v, x)
			e.v = slices.Insert(e.v, i, x)
			return true
		}
		if e != nil {
			sk := e.sketch()
			if sk.Add(x) != nil {
				return false
			}
			ref.ext = sk
			return true
		}
	}
	v := make([]float64, 1, 8)
	v[0] = x
	ref.ext = &pctExact{v: v}
	return true
}

// sketch is a DDSketch holding the tile's values.
func (e *pctExact) sketch() *ddsketch.DDSketch {
	sk := newDD()
	addAll(sk, e.v)
	return sk
}

// nearestRank is the 1-based rank ⌈p·n⌉ of the p-quantile of n values,
// clamped to [1, n]; p·n is one float64 product, as numpy computes it.
func nearestRank(p, n float64) float64 {
	return min(max(math.Ceil(p*n), 1), n)
}

// percentile is the p-quantile of the window's tiles bs (refs rs) of a
// series of kind (pPct, or pDD for tiles written before pPct), and whether
// the window is empty.
func percentile(kind partialKind, bs []bucket, rs []tileRef, p float64) (q float64, empty bool) {
	var buf [16][]float64
	runs := buf[:0] // every exact tile's values, while no tile is a sketch
	n := 0
	var acc *ddsketch.DDSketch
	for i := range bs {
		switch e := peek(kind, bs[i].start, rs, i).(type) {
		case *pctExact:
			if acc != nil {
				addAll(acc, e.v)
			} else if len(e.v) > 0 {
				runs = append(runs, e.v)
				n += len(e.v)
			}
		case *ddsketch.DDSketch:
			if e == nil || e.IsEmpty() {
				continue
			}
			if acc == nil {
				acc = e.Copy()
				for _, r := range runs {
					addAll(acc, r)
				}
				runs = nil
			} else if acc.MergeWith(e) != nil {
				continue
			}
		}
	}
	if acc != nil {
		if acc.IsEmpty() {
			return 0, true
		}
		return ddAtRank(acc, nearestRank(p, acc.GetCount())-1), false
	}
	if n == 0 {
		return 0, true
	}
	return kthOfRuns(runs, int(nearestRank(p, float64(n)))-1), false
}

func addAll(sk *ddsketch.DDSketch, vals []float64) {
	for _, x := range vals {
		_ = sk.Add(x) // beyond the sketch's range: dropped, as Add would
	}
}

// kthOfRuns is the k-th smallest (0-based) of the values of the ascending
// runs, k below their total; it reslices runs. Each round takes as pivot
// the weighted median of the runs' middle values, counts the values below
// and up to it in every run by binary search, and keeps the runs' parts on
// rank k's side: a round drops at least a quarter of the values, without
// copying or sorting them.
func kthOfRuns(runs [][]float64, k int) float64 {
	if len(runs) == 1 {
		return runs[0][k]
	}
	type mid struct {
		x float64
		w int
	}
	var buf [16]mid
	var bbuf [16][2]int
	for {
		mids := buf[:0]
		total := 0
		for _, r := range runs {
			if len(r) > 0 {
				mids = append(mids, mid{r[len(r)/2], len(r)})
				total += len(r)
			}
		}
		slices.SortFunc(mids, func(a, b mid) int { return cmp.Compare(a.x, b.x) })
		var pivot float64
		for acc, i := 0, 0; i < len(mids); i++ {
			if acc += mids[i].w; 2*acc >= total {
				pivot = mids[i].x
				break
			}
		}
		bounds := bbuf[:0] // per run: values below the pivot, values up to it
		below, upTo := 0, 0
		for _, r := range runs {
			lo := countBelow(r, pivot, false)
			hi := lo + countBelow(r[lo:], pivot, true)
			bounds = append(bounds, [2]int{lo, hi})
			below += lo
			upTo += hi
		}
		switch {
		case k < below: // rank k is below the pivot
			for i, r := range runs {
				runs[i] = r[:bounds[i][0]]
			}
		case k < upTo:
			return pivot
		default:
			k -= upTo
			for i, r := range runs {
				runs[i] = r[bounds[i][1]:]
			}
		}
	}
}

// countBelow is how many values of r (ascending) are below x, or up to x
// when orEqual.
func countBelow(r []float64, x float64, orEqual bool) int {
	lo, hi := 0, len(r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r[m] < x || orEqual && r[m] == x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// ddAtRank is the sketch's value at 0-based rank r (an integer): the
// library's GetValueAtQuantile with the rank given rather than derived
// from a quantile.
func ddAtRank(sk *ddsketch.DDSketch, r float64) float64 {
	neg := sk.GetNegativeValueStore()
	nNeg := neg.TotalCount()
	zero := sk.GetZeroCount()
	switch {
	case r < nNeg:
		return -sk.Value(neg.KeyAtRank(nNeg - 1 - r))
	case r < nNeg+zero:
		return 0
	}
	return sk.Value(sk.GetPositiveValueStore().KeyAtRank(r - nNeg - zero))
}

// The forms of an encoded percentile tile: a first byte, then
const (
	pctFormExact  = 0 // uvarint count, that many floats, ascending
	pctFormSketch = 1 // the DDSketch's encoding (as a pDD tile's)
	// uvarint count, byte d (0: integers, 2: cents), svarint the first
	// value·10^d, then uvarint the differences to the previous one: when
	// every value is a whole number of units (most prices), 1–2 bytes a
	// value.
	pctFormExactScaled = 2
)

// pctMaxScaled bounds |value·10^d| in the scaled form: exact in a float64,
// and differences fit a uint64.
const pctMaxScaled = 1 << 52

// scaledDigits is the d of the scaled form for vals (0 or 2), or -1 when
// some value is not a whole number of cents within pctMaxScaled.
func scaledDigits(vals []float64) int {
	ints := true
	for _, x := range vals {
		if x != math.Trunc(x) || math.Abs(x) >= pctMaxScaled {
			ints = false
			break
		}
	}
	if ints {
		return 0
	}
	for _, x := range vals {
		if c := math.Round(x * 100); math.Abs(c) >= pctMaxScaled || c/100 != x {
			return -1
		}
	}
	return 2
}

// unscale is x·10^-d as the scaled form reads it back.
func unscale(i int64, d byte) float64 {
	if d == 2 {
		return float64(i) / 100
	}
	return float64(i)
}

func appendPct(b []byte, ext any) []byte {
	switch e := ext.(type) {
	case *pctExact:
		if e == nil {
			break
		}
		if d := scaledDigits(e.v); d >= 0 {
			b = append(b, pctFormExactScaled)
			b = binary.AppendUvarint(b, uint64(len(e.v)))
			b = append(b, byte(d))
			var prev int64
			for i, x := range e.v {
				c := int64(x)
				if d == 2 {
					c = int64(math.Round(x * 100))
				}
				if i == 0 {
					b = binary.AppendVarint(b, c)
				} else {
					b = binary.AppendUvarint(b, uint64(c-prev))
				}
				prev = c
			}
			break
		}
		b = append(b, pctFormExact)
		b = binary.AppendUvarint(b, uint64(len(e.v)))
		for _, x := range e.v {
			b = appendFloat(b, x)
		}
	case *ddsketch.DDSketch:
		if e == nil {
			break
		}
		b = append(b, pctFormSketch)
		b = appendDD(b, e)
	}
	return b
}

// decodePct decodes a percentile tile; nil if corrupt (an empty tile). An
// exact form must be canonical: 1..PercentileExact finite values, sorted,
// no -0.
func decodePct(body []byte) any {
	if len(body) == 0 {
		return nil
	}
	switch body[0] {
	case pctFormExact:
		r := &reader{b: body[1:]}
		n := r.count(1)
		if n == 0 || n > PercentileExact {
			return nil
		}
		v := make([]float64, n)
		for i := range v {
			x := r.float()
			if !finite(x) || x == 0 && math.Signbit(x) || i > 0 && x < v[i-1] {
				return nil
			}
			v[i] = x
		}
		if r.err != nil || len(r.b) > 0 {
			return nil
		}
		return &pctExact{v: v}
	case pctFormExactScaled:
		r := &reader{b: body[1:]}
		n := r.count(1)
		d := r.byte()
		if n == 0 || n > PercentileExact || d != 0 && d != 2 {
			return nil
		}
		v := make([]float64, n)
		c := r.varint()
		for i := range v {
			if i > 0 {
				delta := r.uvarint()
				if delta > 2*pctMaxScaled {
					return nil
				}
				c += int64(delta)
			}
			if c <= -pctMaxScaled || c >= pctMaxScaled {
				return nil
			}
			v[i] = unscale(c, d)
		}
		if r.err != nil || len(r.b) > 0 {
			return nil
		}
		return &pctExact{v: v}
	case pctFormSketch:
		sk, err := ddsketch.DecodeDDSketch(body[1:], ddStore, ddMapping)
		if err != nil {
			return nil
		}
		return sk
	}
	return nil
}

// adoptOldPct turns a series of DDSketch-only tiles (pDD, written before
// pPct) into a pPct series before a write: its tiles stay sketches.
func (s *Series) adoptOldPct() {
	s.load()
	for i := range s.refs {
		materialize(pDD, s.b[i].start, &s.refs[i])
	}
	s.kind = pPct
	s.changed()
}
