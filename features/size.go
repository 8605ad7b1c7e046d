package features

import "unsafe"

// Estimated sizes in memory, for caches bounded by bytes (see
// processors/pipeline, StateOptions.CacheBytes). They count what a value
// holds (slices by capacity, strings by length) plus a fixed overhead per
// map entry and per allocation; they are estimates, cheap enough to take
// on every flush, not measurements.
const (
	// MapEntryBytes is the estimated cost of one map entry beyond its key
	// and value: the map's control bytes, slack and groups.
	MapEntryBytes = 16
	// allocBytes is the estimated overhead of one small heap object.
	allocBytes = 16
	// sketchTileBytes is the estimate of a decoded sketch tile whose size
	// is not known from its encoding (a HyperLogLog or DDSketch built
	// since the last flush).
	sketchTileBytes = 512
)

// SizeBytes is the estimated memory held by st, its own struct included.
func (st *State) SizeBytes() int {
	if st == nil {
		return 0
	}
	n := int(unsafe.Sizeof(*st))
	for name := range st.Sources {
		n += len(name) + int(unsafe.Sizeof(st.Watermark)) + 16 + MapEntryBytes
	}
	for name, s := range st.Series {
		n += len(name) + 16 + 8 + MapEntryBytes + s.sizeBytes()
	}
	for name := range st.Dropped {
		n += len(name) + 16 + 8 + MapEntryBytes
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
	n += cap(s.raw) + cap(s.enc)
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
