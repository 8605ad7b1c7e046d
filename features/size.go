package features

import "unsafe"

// Estimated sizes in memory, for caches bounded by bytes (see
// processors/pipeline, StateOptions.CacheBytes). They count what a value
// holds (slices by capacity, strings by length) plus a fixed overhead per
// map entry and per allocation; they are estimates, cheap enough to take
// on every flush, not measurements.
const (
	// allocBytes is the estimated overhead of one small heap object.
	allocBytes = 16
	// sketchTileBytes is the estimate of a decoded sketch tile whose size
	// is not known from its encoding (a HyperLogLog or DDSketch built
	// since the last flush).
	sketchTileBytes = 512
)

// MapBytes estimates the memory of a Go map of n entries whose key and
// value take slot bytes together (not counting what they point to): Go's
// maps hold entries in groups of 8 slots, a small map one group whatever
// n, a larger one a power of two of slots filled to at most 7/8.
func MapBytes(n, slot int) int {
	const header = 48
	switch {
	case n == 0:
		return 0
	case n <= 8:
		return header + 8 + 8*slot
	}
	c := 16
	for c*7/8 < n {
		c *= 2
	}
	return header + 64 + c*(slot+1)
}

// SizeBytes is the estimated memory held by st, its own struct included.
func (st *State) SizeBytes() int {
	if st == nil {
		return 0
	}
	n := int(unsafe.Sizeof(*st))
	n += MapBytes(len(st.Sources), 16+int(unsafe.Sizeof(st.Watermark)))
	n += MapBytes(len(st.Series), 16+8)
	n += MapBytes(len(st.Dropped), 16+8)
	// The names are the definitions' (shared), not counted.
	for _, s := range st.Series {
		n += s.sizeBytes()
	}
	return n
}

// sizeBytes is the estimated memory held by s, its struct included.
func (s *Series) sizeBytes() int {
	if s == nil {
		return 0
	}
	n := int(unsafe.Sizeof(*s)) + allocBytes
	n += cap(s.b)*int(unsafe.Sizeof(bucket{})) + cap(s.refs)*int(unsafe.Sizeof(tileRef{}))
	// raw is a slice of the decoded state's buffer: its length, not its
	// capacity (which runs to the buffer's end).
	n += len(s.raw) + cap(s.enc)
	if !s.kind.hasRefs() {
		return n
	}
	// A decoded sketch or list is about as large as its encoding; a tile
	// changed since the last encoding is counted at a fixed estimate.
	perTile := sketchTileBytes
	if s.encOK && len(s.b) > 0 {
		perTile = len(s.enc) / len(s.b)
	}
	for i := range s.refs {
		r := &s.refs[i]
		n += len(r.s)
		switch x := r.ext.(type) {
		case nil:
		case rawExt:
			n += cap(x) + allocBytes
		case *lastK:
			n += allocBytes + cap(x.e)*int(unsafe.Sizeof(timedValue{}))
			for _, e := range x.e {
				n += len(e.v)
			}
		case *topK:
			n += allocBytes + cap(x.e)*int(unsafe.Sizeof(KeyCount{}))
			for _, e := range x.e {
				n += len(e.Key)
			}
		case *pctExact:
			n += allocBytes + cap(x.v)*8
		default: // HyperLogLog, DDSketch
			n += perTile + allocBytes
		}
	}
	return n
}
