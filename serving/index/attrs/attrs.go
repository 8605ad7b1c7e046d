// Package attrs is the attribute index beside the vectors: columns keyed by
// a dense row number, each with roaring bitmaps that give a filter's rows
// and its cardinality without touching the rows.
//
//   - Dict: a categorical column (status, category, language, seller),
//     dictionary-encoded, one bitmap of rows per value.
//   - Ints: an integer column (viewers now) with one bitmap per bucket of
//     values (exact below 16, then 16 buckets per power of two); a range is
//     the union of the buckets it touches, refined by the exact values kept
//     in an array.
//
// Updates change a row's bitmaps only when its value changes. Not safe for
// concurrent use: serving/index guards each partition's columns with its
// lock.
package attrs

import (
	"math"
	"math/bits"

	"github.com/RoaringBitmap/roaring/v2"
)

// Dict is a dictionary-encoded categorical column.
type Dict struct {
	codes []uint32 // row → code+1; 0: no value
	ids   map[string]uint32
	names []string
	rows  []*roaring.Bitmap // code → rows
}

// NewDict returns an empty column.
func NewDict() *Dict { return &Dict{ids: map[string]uint32{}} }

func (d *Dict) code(v string) uint32 {
	c, ok := d.ids[v]
	if !ok {
		c = uint32(len(d.names))
		d.ids[v] = c
		d.names = append(d.names, v)
		d.rows = append(d.rows, roaring.New())
	}
	return c
}

// Set gives row the value v.
func (d *Dict) Set(row uint32, v string) {
	for int(row) >= len(d.codes) {
		d.codes = append(d.codes, 0)
	}
	c := d.code(v)
	old := d.codes[row]
	if old == c+1 {
		return
	}
	if old != 0 {
		d.rows[old-1].Remove(row)
	}
	d.codes[row] = c + 1
	d.rows[c].Add(row)
}

// Remove clears row's value.
func (d *Dict) Remove(row uint32) {
	if int(row) < len(d.codes) && d.codes[row] != 0 {
		d.rows[d.codes[row]-1].Remove(row)
		d.codes[row] = 0
	}
}

// Code returns row's value code + 1 (0: none), for Mask lookups.
func (d *Dict) Code(row uint32) uint32 {
	if int(row) < len(d.codes) {
		return d.codes[row]
	}
	return 0
}

// Value returns row's value.
func (d *Dict) Value(row uint32) string {
	if c := d.Code(row); c != 0 {
		return d.names[c-1]
	}
	return ""
}

// Union returns the rows holding any of values (a new bitmap).
func (d *Dict) Union(values []string) *roaring.Bitmap {
	var bms []*roaring.Bitmap
	for _, v := range values {
		if c, ok := d.ids[v]; ok {
			bms = append(bms, d.rows[c])
		}
	}
	switch len(bms) {
	case 0:
		return roaring.New()
	case 1:
		return bms[0].Clone()
	}
	return roaring.FastOr(bms...)
}

// Rows returns the bitmap of rows holding v, nil if none ever did. The
// bitmap is the column's own: read it under the caller's lock, do not
// modify it.
func (d *Dict) Rows(v string) *roaring.Bitmap {
	if c, ok := d.ids[v]; ok {
		return d.rows[c]
	}
	return nil
}

// Mask returns a lookup indexed by Code(row): true for the given values.
func (d *Dict) Mask(values []string) []bool {
	m := make([]bool, len(d.names)+1)
	for _, v := range values {
		if c, ok := d.ids[v]; ok {
			m[c+1] = true
		}
	}
	return m
}

// Ints is an integer column with a bitmap per bucket of values: values
// below 16 (and all values ≤ 0) have a bucket each; above, each power of
// two is cut in 16 equal buckets (a bucket spans at most 1/16 of its
// values), so a range's bitmap superset holds little beyond the range.
// Buckets are made on first use.
type Ints struct {
	vals    []int64
	present []bool
	buckets []*roaring.Bitmap
}

// NewInts returns an empty column.
func NewInts() *Ints { return &Ints{} }

const subBuckets = 16 // per power of two, and the count of exact small values

func bucket(v int64) int {
	if v < subBuckets {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 1 // ≥ 4
	sub := int(v>>(e-4)) & (subBuckets - 1)
	return subBuckets + (e-4)*subBuckets + sub
}

// bucketBounds returns bucket b's smallest and largest value (bucket 0 also
// holds every value below 0).
func bucketBounds(b int) (lo, hi float64) {
	if b < subBuckets {
		return float64(b), float64(b)
	}
	e := (b-subBuckets)/subBuckets + 4
	sub := (b - subBuckets) % subBuckets
	width := math.Ldexp(1, e-4)
	lo = math.Ldexp(1, e) + float64(sub)*width
	return lo, lo + width - 1
}

func (c *Ints) bitmap(b int) *roaring.Bitmap {
	for len(c.buckets) <= b {
		c.buckets = append(c.buckets, nil)
	}
	if c.buckets[b] == nil {
		c.buckets[b] = roaring.New()
	}
	return c.buckets[b]
}

// Set gives row the value v.
func (c *Ints) Set(row uint32, v int64) {
	for int(row) >= len(c.vals) {
		c.vals = append(c.vals, 0)
		c.present = append(c.present, false)
	}
	nb := bucket(v)
	if c.present[row] {
		ob := bucket(c.vals[row])
		if ob == nb {
			c.vals[row] = v
			return
		}
		c.buckets[ob].Remove(row)
	}
	c.vals[row], c.present[row] = v, true
	c.bitmap(nb).Add(row)
}

// Remove drops row from the column.
func (c *Ints) Remove(row uint32) {
	if int(row) < len(c.vals) && c.present[row] {
		c.buckets[bucket(c.vals[row])].Remove(row)
		c.vals[row], c.present[row] = 0, false
	}
}

// Value returns row's value.
func (c *Ints) Value(row uint32) int64 { return c.vals[row] }

// Range returns a superset of the rows within [lo, hi] (nil bounds are
// open): the union of the buckets the range touches. estimate is the number
// of rows expected inside, counting a partly covered bucket in proportion
// to the part covered.
func (c *Ints) Range(lo, hi *float64) (rows *roaring.Bitmap, estimate float64) {
	first, last := c.bucketSpan(lo, hi)
	var bms []*roaring.Bitmap
	for b := first; b <= last; b++ {
		if c.buckets[b] == nil {
			continue
		}
		n := c.buckets[b].GetCardinality()
		if n == 0 {
			continue
		}
		bms = append(bms, c.buckets[b])
		estimate += float64(n) * coverage(b, lo, hi)
	}
	switch len(bms) {
	case 0:
		return roaring.New(), 0
	case 1:
		return bms[0].Clone(), estimate
	}
	return roaring.FastOr(bms...), estimate
}

// Estimate is Range's estimate alone: the number of rows expected within
// [lo, hi], from the buckets' sizes, without building their union.
func (c *Ints) Estimate(lo, hi *float64) float64 {
	first, last := c.bucketSpan(lo, hi)
	var estimate float64
	for b := first; b <= last; b++ {
		if c.buckets[b] != nil {
			estimate += float64(c.buckets[b].GetCardinality()) * coverage(b, lo, hi)
		}
	}
	return estimate
}

// bucketSpan is the first and last bucket that [lo, hi] touches.
func (c *Ints) bucketSpan(lo, hi *float64) (first, last int) {
	first, last = 0, len(c.buckets)-1
	if lo != nil {
		first = bucket(int64(math.Ceil(math.Max(*lo, math.MinInt64/2))))
	}
	if hi != nil {
		if *hi < 0 {
			last = 0
		} else {
			last = min(last, bucket(int64(math.Floor(math.Min(*hi, math.MaxInt64/2)))))
		}
	}
	return first, last
}

// coverage is the fraction of bucket b's integer values within [lo, hi].
func coverage(b int, lo, hi *float64) float64 {
	a, z := bucketBounds(b)
	if b == 0 && hi != nil && *hi < 0 {
		return 0.5 // bucket 0 also holds the negative values
	}
	from, to := a, z
	if lo != nil && *lo > from {
		from = math.Ceil(*lo)
	}
	if hi != nil && *hi < to {
		to = math.Floor(*hi)
	}
	if to < from {
		return 0
	}
	return (to - from + 1) / (z - a + 1)
}

// MemoryBytes estimates the column's memory.
func (d *Dict) MemoryBytes() int {
	n := 4*cap(d.codes) + 16*cap(d.names) + 48*len(d.ids)
	for i, bm := range d.rows {
		n += int(bm.GetSizeInBytes()) + len(d.names[i])
	}
	return n
}

// MemoryBytes estimates the column's memory.
func (c *Ints) MemoryBytes() int {
	n := 9*cap(c.vals) + 8*cap(c.buckets)
	for _, bm := range c.buckets {
		if bm != nil {
			n += int(bm.GetSizeInBytes())
		}
	}
	return n
}
