package features

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/axiomhq/hyperloglog"
)

// Merge folds the series of s's features held in src into dst, as if
// dst had also applied the events src applied. It is how a backfill joins
// the live state (processors/backfill): src holds a new feature computed
// over the events before the live path's first offset, dst the same
// feature computed from that offset on, and the two event sets are
// disjoint. For disjoint sets, merging equals applying every event to one
// state (TestMergeEqualsApplyingAll, per aggregation kind) with these
// exceptions, each also true of applying the events in another order:
// sums of non-integer values and decayed sums may differ in the last bits,
// and a top_k tile past its capacity holds another approximation than one
// pass would, within the same bound (a count never underestimates, and
// overestimates by at most the tile's events / capacity;
// TestTopKMergeBeyondCapacity).
//
// Lateness is judged where each event was applied: src's against its own
// watermarks, dst's against dst's. dst's source watermarks become the
// newer of both and the merged series are evicted at the resulting
// horizon. Series of features not in s are left alone in dst; dropped
// counts of s's features add up. src is not modified.
func (s *Set) Merge(dst, src *State) {
	for name, t := range src.Sources {
		if dst.Sources == nil {
			dst.Sources = map[string]time.Time{}
		}
		if t.After(dst.Sources[name]) {
			dst.Sources[name] = t
		}
	}
	if src.Watermark.After(dst.Watermark) {
		dst.Watermark = src.Watermark
	}
	for _, f := range s.feats {
		if n := src.Dropped[f.name]; n > 0 {
			if dst.Dropped == nil {
				dst.Dropped = map[string]int64{}
			}
			dst.Dropped[f.name] += n
		}
		from := src.Series[f.name]
		if from != nil && f.readable(from) && !from.empty() {
			if dst.Series == nil {
				dst.Series = map[string]*Series{}
			}
			to := dst.Series[f.name]
			if to == nil || !f.fits(to) {
				switch {
				case to != nil && f.legacy(to):
					to.load()
					to.kind, to.width = f.kind, f.width
					to.changed()
				case to != nil && f.oldPct(to):
					to.adoptOldPct()
				default:
					to = &Series{kind: f.kind, width: f.width}
					dst.Series[f.name] = to
				}
			}
			f.merge(to, from.view())
		}
		if ser := dst.Series[f.name]; ser != nil {
			f.evict(ser, dst.horizon(f))
			if ser.empty() {
				delete(dst.Series, f.name)
			}
		}
	}
}

// merge folds the decoded series from (of f's shape, or pDD for the
// percentile tiles written before pPct) into to (of f's shape), tile by
// tile.
func (f *feature) merge(to, from *Series) {
	to.load()
	to.changed()
	for i := range from.b {
		fb := &from.b[i]
		if fb.n == 0 {
			continue
		}
		ti := to.tile(fb.start, f.kind.hasRefs())
		b, ref := &to.b[ti], to.ref(ti)
		var other any
		var otherStr string
		if f.kind.hasRefs() {
			other = peek(from.kind, fb.start, from.refs, i)
			if i < len(from.refs) {
				otherStr = from.refs[i].s
			}
		}
		switch f.kind {
		case pCount:
		case pSum:
			b.x += fb.x
		case pMin:
			if b.n == 0 || fb.x < b.x {
				b.x = fb.x
			}
		case pMax:
			if b.n == 0 || fb.x > b.x {
				b.x = fb.x
			}
		case pLastNum:
			if b.n == 0 || fb.t > b.t || fb.t == b.t && fb.x > b.x {
				b.x, b.t = fb.x, fb.t
			}
		case pLastStr:
			if b.n == 0 || fb.t > b.t || fb.t == b.t && otherStr > ref.s {
				ref.s, b.t = strings.Clone(otherStr), fb.t
			}
		case pLastK:
			o, _ := other.(*lastK)
			if o == nil {
				break
			}
			lk, _ := materialize(f.kind, b.start, ref).(*lastK)
			if lk == nil {
				lk = &lastK{}
				ref.ext = lk
			}
			for _, e := range o.e {
				lk.add(e.v, e.t, f.k)
			}
		case pHLL:
			o, _ := other.(*hyperloglog.Sketch)
			if o == nil {
				break
			}
			sk, _ := materialize(f.kind, b.start, ref).(*hyperloglog.Sketch)
			if sk == nil {
				ref.ext = o.Clone()
			} else if sk.Merge(o) != nil {
				continue // another precision: the shape guard makes this unreachable
			}
		case pPct:
			ref.ext = mergePct(materialize(f.kind, b.start, ref), other)
		case pTopK:
			o, _ := other.(*topK)
			if o == nil {
				break
			}
			tk, _ := materialize(f.kind, b.start, ref).(*topK)
			if tk == nil {
				tk = &topK{}
				ref.ext = tk
			}
			tk.merge(o, f.capacity)
		case pDecay:
			switch {
			case b.n == 0:
				b.x, b.t = fb.x, fb.t
			case fb.t > b.t:
				b.x = b.x*math.Exp2(-float64(fb.t-b.t)/f.halfLife) + fb.x
				b.t = fb.t
			default:
				b.x += fb.x * math.Exp2(-float64(b.t-fb.t)/f.halfLife)
			}
		}
		b.n += fb.n
	}
}

// mergePct merges two percentile tiles' partials (nil, *pctExact or
// *ddsketch.DDSketch) into a new one: exact while both are and the union
// holds at most PercentileExact values (as one pass would have kept it),
// otherwise a DDSketch of both — the bins one pass would have filled, the
// counts being sums.
func mergePct(a, b any) any {
	ea, aExact := a.(*pctExact)
	eb, bExact := b.(*pctExact)
	da, _ := a.(*ddsketch.DDSketch)
	db, _ := b.(*ddsketch.DDSketch)
	if a == nil || aExact && ea == nil {
		ea, aExact = &pctExact{}, true
	}
	if b == nil || bExact && eb == nil {
		eb, bExact = &pctExact{}, true
	}
	switch {
	case aExact && bExact && len(ea.v)+len(eb.v) == 0:
		return nil
	case aExact && bExact && len(ea.v)+len(eb.v) <= PercentileExact:
		v := make([]float64, 0, len(ea.v)+len(eb.v))
		v = append(append(v, ea.v...), eb.v...)
		slices.Sort(v)
		return &pctExact{v: v}
	}
	sk := newDD()
	for _, x := range []struct {
		e *pctExact
		d *ddsketch.DDSketch
	}{{ea, da}, {eb, db}} {
		switch {
		case x.e != nil:
			addAll(sk, x.e.v)
		case x.d != nil:
			_ = sk.MergeWith(x.d) // same mapping: never fails
		}
	}
	return sk
}

// merge adds o's counts to t's: exact while both are (neither ever held
// capacity keys). A full summary bounds the count of a key it no longer
// lists by its smallest count, which the key then takes from it, so a
// merged count still never underestimates and overestimates by at most the
// tile's events / capacity, as in one pass. Past capacity distinct keys it
// keeps the capacity largest counts (ties: the smaller key).
func (t *topK) merge(o *topK, capacity int) {
	m := make(map[string]int64, len(t.e)+len(o.e))
	floor := func(x *topK) int64 {
		if len(x.e) < capacity {
			return 0
		}
		f := x.e[0].Count
		for _, kc := range x.e {
			f = min(f, kc.Count)
		}
		return f
	}
	ft, fo := floor(t), floor(o)
	for _, kc := range t.e {
		m[kc.Key] += kc.Count
	}
	for _, kc := range o.e {
		m[kc.Key] += kc.Count
	}
	if ft > 0 || fo > 0 {
		inT := make(map[string]bool, len(t.e))
		for _, kc := range t.e {
			inT[kc.Key] = true
		}
		inO := make(map[string]bool, len(o.e))
		for _, kc := range o.e {
			inO[kc.Key] = true
		}
		for k := range m {
			if !inT[k] {
				m[k] += ft
			}
			if !inO[k] {
				m[k] += fo
			}
		}
	}
	e := make([]KeyCount, 0, len(m))
	for k, c := range m {
		e = append(e, KeyCount{Key: strings.Clone(k), Count: c})
	}
	if len(e) > capacity {
		sort.Slice(e, func(i, j int) bool {
			return e[i].Count > e[j].Count || e[i].Count == e[j].Count && e[i].Key < e[j].Key
		})
		e = e[:capacity]
	}
	sort.Slice(e, func(i, j int) bool { return e[i].Key < e[j].Key })
	t.e = e
}
