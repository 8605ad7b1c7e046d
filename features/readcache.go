package features

import (
	"slices"
	"time"

	"github.com/axiomhq/hyperloglog"
)

// ReadCache keeps, between reads of one approx_distinct series, the
// HyperLogLog merge of the window's tiles before the newest one, so that
// the next read of the same series merges only what changed since: the
// newest tile, and the tiles the window gained. A read whose window holds
// the same tiles, unchanged, returns the previous value. It is for a
// single reader that reads a key's series again and again as time moves
// forward (the training-set join); it is not safe for concurrent use.
//
// A tile counts as unchanged when it is the same sketch with the same
// event count: every write to a tile (an event, a merge) adds to its
// count, and an evicted or decoded tile is a new sketch.
type ReadCache struct {
	s     *Series
	tiles []cachedTile // the window's tiles at the last read
	// prefix is the merge of tiles[:merged], in the order result merges
	// them; nil while none of those tiles had a sketch.
	prefix *hyperloglog.Sketch
	merged int
	x      float64 // the value at the last read
	ok     bool
	cur    []cachedTile // scratch
}

type cachedTile struct {
	start, n int64
	sk       *hyperloglog.Sketch
}

// NumberCached is Number, equal to it for every series and instant; for
// an approx_distinct feature it reuses c's merge of the tiles that did not
// change since c's last read (c nil: no reuse), and a top_k feature's
// number (how many keys it lists) is counted without ranking the keys.
func (d Definition) NumberCached(s *Series, now time.Time, c *ReadCache) (x float64, ok bool) {
	f := d.compiled()
	if f != nil && f.kind == pTopK {
		return float64(f.topLen(s, now)), true
	}
	if f == nil || c == nil || f.kind != pHLL || s == nil || s.raw != nil || !f.fits(s) {
		return d.Number(s, now)
	}
	lo, hi := f.inWindow(s, now)
	if hi <= lo || len(s.refs) < hi {
		c.s = nil
		return d.Number(s, now)
	}
	cur := c.cur[:0]
	for i := lo; i < hi; i++ {
		sk, _ := peek(f.kind, s.b[i].start, s.refs, i).(*hyperloglog.Sketch)
		cur = append(cur, cachedTile{start: s.b[i].start, n: s.b[i].n, sk: sk})
	}
	c.cur = cur
	same := 0 // leading tiles unchanged since the last read
	if c.s == s {
		for same < min(len(cur), len(c.tiles)) && cur[same] == c.tiles[same] {
			same++
		}
		if same == len(cur) && same == len(c.tiles) {
			return c.x, c.ok
		}
	}
	if c.s != s || c.merged > same || c.merged > len(cur)-1 {
		c.s, c.prefix, c.merged = s, nil, 0
	}
	for ; c.merged < len(cur)-1; c.merged++ {
		c.prefix = mergeTile(c.prefix, cur[c.merged].sk)
	}
	var acc *hyperloglog.Sketch
	if c.prefix != nil {
		acc = c.prefix.Clone()
	}
	acc = mergeTile(acc, cur[len(cur)-1].sk)
	r := Result{Kind: NumberResult}
	if acc != nil {
		r.Number = float64(acc.Estimate())
	}
	c.x, c.ok = r.Numeric()
	c.tiles = append(c.tiles[:0], cur...)
	return c.x, c.ok
}

// mergeTile folds tile sketch sk into acc (the caller's own copy) as
// result does: the first sketch is cloned, the next merged in, a nil
// tile skipped.
func mergeTile(acc, sk *hyperloglog.Sketch) *hyperloglog.Sketch {
	switch {
	case sk == nil:
		return acc
	case acc == nil:
		return sk.Clone()
	}
	_ = acc.Merge(sk) // another precision: skipped, as result skips it
	return acc
}

// topLen is the length of the top_k list result gives at now: the
// distinct keys of the window's tiles, at most k.
func (f *feature) topLen(s *Series, now time.Time) int {
	if s == nil || !f.readable(s) {
		return 0
	}
	v := s.view()
	lo, hi := f.inWindow(v, now)
	if len(v.refs) < hi {
		return 0 // as result: no refs, no keys
	}
	var keys []string
	for i := lo; i < hi; i++ {
		tk, ok := peek(f.kind, v.b[i].start, v.refs, i).(*topK)
		if !ok {
			continue
		}
		for _, kc := range tk.e {
			if !slices.Contains(keys, kc.Key) {
				if keys = append(keys, kc.Key); len(keys) >= f.k {
					return max(f.k, 0)
				}
			}
		}
	}
	return len(keys)
}
