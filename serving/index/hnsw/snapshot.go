package hnsw

import (
	"fmt"
	"math"

	"github.com/livefeed/livefeed/serving/index/internal/binio"
)

const graphFormat = 1

// WriteTo writes the graph (shape, vectors or codes, links, tombstones,
// the level generator's state) to w; ReadGraph restores it exactly, so
// searches and later inserts behave as on the original.
func (g *Graph) WriteTo(w *binio.Writer) {
	w.Uvarint(graphFormat)
	for _, x := range []int{g.dim, g.m, g.efC, g.nodes, int(g.entry), g.top + 1} {
		w.Uvarint(uint64(x))
	}
	flags := uint64(0)
	if g.quant {
		flags |= 1
	}
	if g.floats {
		flags |= 2
	}
	if g.touch {
		flags |= 4
	}
	if g.base != nil {
		flags |= 8 // a sub-graph: no vectors, the base's node of each
	}
	w.Uvarint(flags)
	w.Uvarint(g.version)
	st, err := g.src.MarshalBinary()
	if err != nil {
		panic(err) // PCG's MarshalBinary cannot fail
	}
	w.Blob(st)
	if g.base != nil {
		binio.Slice[float32](w, nil)
		binio.Slice[int8](w, nil)
		binio.Slice[float32](w, nil)
	} else if g.ff != nil {
		// As binio.Slice writes it: the format does not say where the
		// floats were kept.
		w.Uvarint(uint64(g.nodes * g.dim))
		if err := g.ff.writeTo(w, g.nodes); err != nil {
			w.Fail(err)
		}
	} else {
		binio.Slice(w, g.vecs[:g.nodes*g.dim*b2i(g.floats)])
	}
	if g.base == nil {
		binio.Slice(w, g.codes[:g.nodes*g.dim*b2i(g.quant)])
		binio.Slice(w, g.scales[:g.nodes*b2i(g.quant)])
	}
	binio.Slice(w, g.levels[:g.nodes])
	binio.Slice(w, g.links0[:g.nodes*(g.m0+1)])
	var upper int
	for _, u := range g.upper[:g.nodes] {
		upper += len(u)
	}
	w.Uvarint(uint64(upper))
	for _, u := range g.upper[:g.nodes] {
		binio.Slice(w, u)
	}
	binio.Slice(w, g.deleted)
	binio.Slice(w, g.free)
	if g.base != nil {
		binio.Slice(w, g.ext[:g.nodes])
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ReadGraph reads a graph written by WriteTo, checking that its arrays
// agree with each other (a corrupt or truncated snapshot is an error, not
// a panic later).
func ReadGraph(r *binio.Reader) (*Graph, error) { return ReadGraphWith(r, ReadOptions{}) }

// ReadOptions are the choices a restored graph makes afresh, not stored in
// the snapshot.
type ReadOptions struct {
	// FloatsDir: see Config.FloatsDir. A quantized graph's float32
	// vectors are copied from the snapshot to a new file there, a chunk at
	// a time, instead of the heap; a snapshot written with them in the
	// heap loads this way too, and the other way round.
	FloatsDir string
	// Base is the graph a sub-graph's snapshot refers to (restored
	// first); required for a sub-graph, refused for a graph.
	Base *Graph
}

// ReadGraphWith is ReadGraph with o; on error the graph's file (if any) is
// released.
func ReadGraphWith(r *binio.Reader, o ReadOptions) (_ *Graph, err error) {
	if v := r.Uvarint(); v != graphFormat && r.Err() == nil {
		return nil, fmt.Errorf("hnsw: graph format %d, this build reads %d", v, graphFormat)
	}
	var hdr [6]int
	for i := range hdr {
		hdr[i] = r.Len()
	}
	dim, m, efC, nodes, entry, top := hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5]-1
	flags := r.Uvarint()
	version := r.Uvarint()
	st := r.Blob()
	if err := r.Err(); err != nil {
		return nil, err
	}
	if dim == 0 || m < 2 || m > 1<<12 || efC == 0 || (nodes > 0 && (entry >= nodes || top < 0 || top > 32)) {
		return nil, fmt.Errorf("hnsw: bad graph header dim %d m %d efConstruction %d nodes %d entry %d top %d", dim, m, efC, nodes, entry, top)
	}
	sub := flags&8 != 0
	if sub != (o.Base != nil) || (sub && o.Base.dim != dim) {
		return nil, fmt.Errorf("hnsw: sub-graph %v of dimension %d, base given %v", sub, dim, o.Base != nil)
	}
	dir := o.FloatsDir
	if sub {
		dir = ""
	}
	g := New(dim, Config{M: m, EfConstruction: efC, Quantize: flags&1 != 0, DropFloats: flags&2 == 0, NoPrefetch: flags&4 == 0,
		FloatsDir: dir})
	g.base = o.Base
	defer func() {
		if err != nil {
			g.Close()
		}
	}()
	if err := g.src.UnmarshalBinary(st); err != nil {
		return nil, fmt.Errorf("hnsw: level generator state: %w", err)
	}
	g.nodes, g.entry, g.top, g.version = nodes, uint32(entry), top, version
	if nodes == 0 {
		g.top = -1
	}
	nvecs, wantVecs := 0, nodes*dim*b2i(g.floats)
	if sub {
		wantVecs = 0
		nvecs = len(binio.ReadSlice[float32](r))
	} else if g.ff != nil {
		nvecs = binio.ReadSliceFunc[float32](r, g.ff.appendRows)
	} else {
		g.vecs = binio.ReadSlice[float32](r)
		nvecs = len(g.vecs)
	}
	g.codes = binio.ReadSlice[int8](r)
	g.scales = binio.ReadSlice[float32](r)
	nq := b2i(g.quant && !sub)
	g.levels = binio.ReadSlice[uint8](r)
	g.links0 = binio.ReadSlice[uint32](r)
	upper := r.Len()
	if err := r.Err(); err != nil {
		return nil, err
	}
	if nvecs != wantVecs || len(g.codes) != nodes*dim*nq ||
		len(g.scales) != nodes*nq || len(g.levels) != nodes || len(g.links0) != nodes*(g.m0+1) {
		return nil, fmt.Errorf("hnsw: graph arrays disagree with %d nodes of dimension %d", nodes, dim)
	}
	g.upper = make([][]uint32, nodes)
	// upper is not trusted before the checksum: no allocation from it
	// beyond a bound (later appends grow; earlier nodes keep their slices).
	flat := make([]uint32, 0, min(upper, 1<<20))
	for n := range nodes {
		u := binio.ReadSlice[uint32](r)
		if len(u) != int(g.levels[n])*(g.m+1) || len(flat)+len(u) > upper {
			if r.Err() != nil {
				return nil, r.Err()
			}
			return nil, fmt.Errorf("hnsw: node %d: %d upper links for level %d", n, len(u), g.levels[n])
		}
		if len(u) > 0 {
			flat = append(flat, u...)
			g.upper[n] = flat[len(flat)-len(u) : len(flat) : len(flat)]
		}
	}
	g.deleted = binio.ReadSlice[uint64](r)
	g.free = binio.ReadSlice[uint32](r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	if len(g.deleted) != (nodes+63)/64 {
		return nil, fmt.Errorf("hnsw: tombstone bitset of %d words for %d nodes", len(g.deleted), nodes)
	}
	if sub {
		g.ext = binio.ReadSlice[uint32](r)
		if err := r.Err(); err != nil {
			return nil, err
		}
		if len(g.ext) != nodes {
			return nil, fmt.Errorf("hnsw: sub-graph of %d nodes with %d base nodes", nodes, len(g.ext))
		}
		for _, x := range g.ext {
			if int(x) >= o.Base.nodes {
				return nil, fmt.Errorf("hnsw: sub-graph node refers to node %d of %d", x, o.Base.nodes)
			}
		}
	}
	if err := g.check(); err != nil {
		return nil, err
	}
	return g, nil
}

// check verifies that every link names a node and every count fits, so a
// restored graph cannot index out of range.
func (g *Graph) check() error {
	for n := range g.nodes {
		for l := 0; l <= int(g.levels[n]); l++ {
			var s []uint32
			if l == 0 {
				b := n * (g.m0 + 1)
				s = g.links0[b : b+g.m0+1]
			} else {
				s = g.upper[n][(l-1)*(g.m+1) : l*(g.m+1)]
			}
			if int(s[0]) > len(s)-1 {
				return fmt.Errorf("hnsw: node %d level %d: %d links", n, l, s[0])
			}
			for _, x := range s[1 : 1+s[0]] {
				if int(x) >= g.nodes {
					return fmt.Errorf("hnsw: node %d links to %d of %d nodes", n, x, g.nodes)
				}
			}
		}
	}
	for _, f := range g.free {
		if int(f) >= g.nodes || !g.Deleted(f) {
			return fmt.Errorf("hnsw: free slot %d is not a tombstone", f)
		}
	}
	if g.top >= 0 && int(g.levels[g.entry]) != g.top {
		return fmt.Errorf("hnsw: entry %d has level %d, top is %d", g.entry, g.levels[g.entry], g.top)
	}
	if g.quant {
		for _, s := range g.scales {
			if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
				return fmt.Errorf("hnsw: bad scale %v", s)
			}
		}
	}
	return nil
}
