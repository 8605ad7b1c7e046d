// Package hnsw is a hierarchical navigable small world graph (Malkov &
// Yashunin) over unit float32 vectors, distance 1 − dot, with:
//
//   - contiguous storage: vectors in one []float32, level-0 links in one
//     []uint32 with a fixed stride;
//   - seeded randomness (levels), so a build is reproducible;
//   - tombstones: Delete unlinks a node from its neighbours (each neighbour's
//     list is refilled from the deleted node's neighbours with the selection
//     heuristic) and keeps it as a routing node that is never returned; the
//     next Add reuses its slot;
//   - in-place vector updates (Update = unlink + reconnect at the new place);
//   - optional int8 scalar quantization (Config.Quantize): codes with one
//     scale per vector, stored contiguously and used for every distance of
//     the build and the search; the float32 vectors are then kept only for
//     the caller's rescoring (or not at all: Config.DropFloats), in the
//     heap or in a file (Config.FloatsDir);
//   - sub-graphs (NewSub) over a subset of another graph's nodes, reading
//     that graph's vectors (no copy): e.g. one per value of an attribute
//     that filters use often, searched instead of the whole graph;
//   - more level-0 entry points than the one a greedy descent ends in:
//     level 1's list (Params.UpperEf), or the nearest of an exact pass
//     over an upper level (Params.ScanSeeds); and a level-0 search that
//     floods past its list's bound (Params.MinDistances);
//   - filtered search with the filter applied during traversal: nodes that
//     fail the filter are either routed through (high selectivity) or, in
//     ACORN-style expansion (restrictive filters), skipped in favour of their
//     own neighbours that pass it.
//
// A Graph is not safe for concurrent mutation: callers serialise writers and
// exclude readers while writing (serving/index holds a RWMutex per
// partition). Concurrent searches are safe.
package hnsw

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/livefeed/livefeed/serving/index/vec"
)

// Config sets the graph's shape. Zero values take the defaults.
type Config struct {
	M              int    // links per node above level 0 (default 16); level 0 keeps 2·M
	EfConstruction int    // candidate list size while inserting (default 100)
	Seed           uint64 // level draws
	// NoPrefetch turns off the touching of a batch's vectors before
	// scoring them (see prefetch), for measuring it.
	NoPrefetch bool
	// Quantize stores int8 codes (vec.Quantize: one scale per vector) and
	// computes every distance of the build and the search on them; the
	// query is quantized the same way. Distances are then approximate
	// (a few thousandths at 384 dimensions): callers rescore the best with
	// Vector.
	Quantize bool
	// DropFloats (with Quantize) keeps no float32 vectors at all: Vector
	// returns nil, Dist and results use the codes.
	DropFloats bool
	// FloatsDir (with Quantize, without DropFloats) keeps the float32
	// vectors in an unlinked file in this directory instead of the heap
	// (see floatFile): the heap holds the codes and the links; a vector,
	// read only for rescoring, costs a pread (a disk read when its page
	// is not in the page cache). If the file cannot be created, the
	// floats stay in the heap; if a write to it fails, the graph carries
	// on without floats, scoring with the codes (FloatsErr).
	FloatsDir string
}

func (c Config) withDefaults() Config {
	if c.M <= 1 {
		c.M = 16
	}
	if c.EfConstruction <= 0 {
		c.EfConstruction = 100
	}
	return c
}

// Graph is an HNSW graph. Node ids are dense uint32s handed out by Add.
type Graph struct {
	dim, m, m0, efC int
	ml              float64
	src             *rand.PCG // rng's state (snapshots)
	rng             *rand.Rand

	vecs    []float32 // node·dim; empty when quantized with DropFloats or ff is used
	quant   bool
	floats  bool       // float32 vectors are kept (vecs or ff)
	ff      *floatFile // float32 vectors on disk (Config.FloatsDir); nil: vecs
	ffErr   error      // why the vectors on disk were given up
	codes   []int8     // node·dim, when quant
	scales  []float32  // per node, when quant
	levels  []uint8    // top level of each node
	links0  []uint32   // node·(m0+1): count, then up to m0 ids
	upper   [][]uint32 // per node, levels 1..top: (level−1)·(m+1): count, ids
	deleted []uint64   // tombstone bitset
	free    []uint32   // tombstoned slots to reuse
	nodes   int
	entry   uint32
	top     int // level of the entry point; −1 when empty

	// A sub-graph (NewSub) keeps no vectors: node n's is base's node
	// ext[n].
	base *Graph
	ext  []uint32

	version uint64 // bumped by every structural change
	pool    sync.Pool
	touch   bool // prefetch batches (Config.NoPrefetch unset)

	// UpperNodes' lists (lv[l−1]: the nodes of level l and above), as of
	// lvVersion; computed by the first search that needs them.
	lvMu      sync.Mutex
	lv        [][]uint32
	lvVersion uint64
}

// New returns an empty graph for vectors of dimension dim. With
// Config.FloatsDir it creates the vector file there; should that fail the
// graph keeps its floats in the heap and FloatsErr says why. Close
// releases the file.
func New(dim int, cfg Config) *Graph {
	cfg = cfg.withDefaults()
	src := rand.NewPCG(cfg.Seed, uint64(dim))
	g := &Graph{
		dim: dim, m: cfg.M, m0: 2 * cfg.M, efC: cfg.EfConstruction,
		ml:  1 / math.Log(float64(cfg.M)),
		src: src, rng: rand.New(src),
		top: -1, touch: !cfg.NoPrefetch,
		quant: cfg.Quantize, floats: !cfg.Quantize || !cfg.DropFloats,
	}
	if g.quant && g.floats && cfg.FloatsDir != "" {
		// On error the floats stay in the heap (FloatsErr says why).
		g.ff, g.ffErr = openFloatFile(cfg.FloatsDir, dim)
	}
	return g
}

// Close releases the vector file of a graph with Config.FloatsDir (the
// graph is unusable after); a no-op otherwise.
func (g *Graph) Close() error {
	if g.ff == nil {
		return nil
	}
	err := g.ff.close()
	g.ff, g.floats = nil, false
	return err
}

// FloatsOnDisk reports whether the float32 vectors are in a mapped file.
func (g *Graph) FloatsOnDisk() bool { return g.ff != nil }

// FloatsErr is why a graph with Config.FloatsDir does not keep its float32
// vectors on disk: the file could not be created (they are in the heap)
// or written (they were given up: scores are the codes'). nil: they are
// on disk, or were not asked to be.
func (g *Graph) FloatsErr() error { return g.ffErr }

// dropFloats gives up the float32 vectors after a write to their file
// failed: scores fall back to the codes' rather than read stale vectors.
func (g *Graph) dropFloats(err error) {
	g.ffErr = err
	g.ff.close()
	g.ff, g.floats = nil, false
}

// EvictFloats drops the vector file's pages from the page cache, so the
// next rescoring reads come from the disk (benchmarks: what a cold read
// costs). A no-op without a vector file.
func (g *Graph) EvictFloats() error {
	if g.ff == nil {
		return nil
	}
	return g.ff.evict()
}

// NewSub returns an empty sub-graph of src: its nodes are src's nodes
// (AddRef), their vectors read from src, so the sub-graph costs links
// only. src's writer must keep the sub-graph in step: RemoveRef a node
// before src deletes it, Relink it after src updates its vector. cfg's
// M, EfConstruction and Seed shape it; its vector options are src's.
func NewSub(src *Graph, cfg Config) *Graph {
	cfg.Quantize, cfg.DropFloats, cfg.FloatsDir = src.quant, !src.floats, ""
	g := New(src.dim, cfg)
	g.base = src
	return g
}

// Sub reports whether g is a sub-graph (NewSub).
func (g *Graph) Sub() bool { return g.base != nil }

// Ref is the node of the source graph that a sub-graph's node stands for
// (node itself in a graph that is not a sub-graph).
func (g *Graph) Ref(node uint32) uint32 {
	if g.base != nil {
		return g.ext[node]
	}
	return node
}

// AddRef inserts src's node into the sub-graph and returns its node id
// here (reusing a tombstoned slot if there is one).
func (g *Graph) AddRef(srcNode uint32) uint32 {
	g.version++
	if n := len(g.free); n > 0 {
		node := g.free[n-1]
		g.free = g.free[:n-1]
		g.setDeleted(node, false)
		g.ext[node] = srcNode
		g.connect(node, int(g.levels[node]))
		return node
	}
	node := uint32(g.nodes)
	g.nodes++
	g.ext = append(g.ext, srcNode)
	g.appendNode(node, g.randomLevel())
	return node
}

// Relink reconnects a sub-graph's node after its vector changed in src.
func (g *Graph) Relink(node uint32) {
	if g.Deleted(node) {
		panic(fmt.Sprintf("hnsw: relink of deleted node %d", node))
	}
	g.version++
	g.unlink(node)
	g.connect(node, int(g.levels[node]))
}

// Quantized reports whether distances are computed on int8 codes.
func (g *Graph) Quantized() bool { return g.quant }

// HasFloats reports whether Vector returns the float32 vectors.
func (g *Graph) HasFloats() bool { return g.floats }

// query is a search's query in the form the graph's distances take.
type query struct {
	f []float32 // float32 vector (not quantized)
	c []int8    // codes (quantized)
	s float32   // scale of c
}

// dist is 1 − the (approximate, if quantized) inner product of q and node.
func (g *Graph) dist(q *query, node uint32) float32 {
	if g.base != nil {
		return g.base.dist(q, g.ext[node])
	}
	if g.quant {
		i := int(node) * g.dim
		return 1 - q.s*g.scales[node]*float32(vec.DotInt8(q.c, g.codes[i:i+g.dim:i+g.dim]))
	}
	i := int(node) * g.dim
	return 1 - vec.Dot(q.f, g.vecs[i:i+g.dim:i+g.dim])
}

// nodeQuery is node's own vector as a query.
func (g *Graph) nodeQuery(node uint32) query {
	if g.base != nil {
		return g.base.nodeQuery(g.ext[node])
	}
	if g.quant {
		return query{c: g.code(node), s: g.scales[node]}
	}
	return query{f: g.Vector(node)}
}

// distNodes is the distance between two nodes.
func (g *Graph) distNodes(a, b uint32) float32 {
	q := g.nodeQuery(a)
	return g.dist(&q, b)
}

// makeQuery prepares v as a query, quantizing it into buf if the graph is
// quantized; it returns the query and the (possibly grown) buffer.
func (g *Graph) makeQuery(v []float32, buf []int8) (query, []int8) {
	if !g.quant {
		return query{f: v}, buf
	}
	if cap(buf) < g.dim {
		buf = make([]int8, g.dim)
	}
	buf = buf[:g.dim]
	return query{c: buf, s: vec.Quantize(buf, v)}, buf
}

func (g *Graph) code(node uint32) []int8 {
	i := int(node) * g.dim
	return g.codes[i : i+g.dim : i+g.dim]
}

// setVector stores v as node's vector (floats and/or codes).
func (g *Graph) setVector(node uint32, v []float32) {
	if g.ff != nil {
		if err := g.ff.set(node, v); err != nil {
			g.dropFloats(err)
		}
	} else if g.floats {
		copy(g.Vector(node), v)
	}
	if g.quant {
		g.scales[node] = vec.Quantize(g.code(node), v)
	}
}

// Same reports whether node's stored vector is v: equal floats, or, without
// them, equal codes and scale.
func (g *Graph) Same(node uint32, v []float32) bool {
	if len(v) != g.dim {
		return false
	}
	if g.floats && g.ff == nil {
		return slices.Equal(g.Vector(node), v)
	}
	// Codes first: with the floats on disk, a changed vector (different
	// codes) is told without reading them.
	var buf [64]int8
	c := buf[:0]
	if g.dim > len(buf) {
		c = make([]int8, g.dim)
	}
	c = c[:g.dim]
	if vec.Quantize(c, v) != g.scales[node] || !slices.Equal(c, g.code(node)) {
		return false
	}
	return !g.floats || slices.Equal(g.Vector(node), v)
}

// Dim is the vector dimension.
func (g *Graph) Dim() int { return g.dim }

// Nodes is the number of slots, live or tombstoned.
func (g *Graph) Nodes() int { return g.nodes }

// Live is the number of live (not deleted) nodes.
func (g *Graph) Live() int { return g.nodes - len(g.free) }

// Version changes whenever a vector or a link changes; attribute updates in
// the caller never touch it.
func (g *Graph) Version() uint64 { return g.version }

// VectorInto returns node's stored float32 vector: read into buf (grown
// to Dim if short) when the vectors are on disk, else as Vector; nil if
// the graph keeps none or the read failed. Concurrent searches each pass
// their own buf.
func (g *Graph) VectorInto(node uint32, buf []float32) []float32 {
	if g.base != nil {
		return g.base.VectorInto(g.ext[node], buf)
	}
	if g.ff == nil {
		return g.Vector(node)
	}
	if cap(buf) < g.dim {
		buf = make([]float32, g.dim)
	}
	buf = buf[:g.dim]
	if g.ff.read(node, buf) != nil {
		return nil
	}
	return buf
}

// Vector returns node's stored float32 vector (valid until the next
// mutation); nil if the graph keeps none (DropFloats). With the vectors
// on disk it reads a copy (VectorInto avoids the allocation).
func (g *Graph) Vector(node uint32) []float32 {
	if g.base != nil {
		return g.base.Vector(g.ext[node])
	}
	if !g.floats {
		return nil
	}
	if g.ff != nil {
		return g.VectorInto(node, nil)
	}
	i := int(node) * g.dim
	return g.vecs[i : i+g.dim : i+g.dim]
}

// Deleted reports whether node is a tombstone.
func (g *Graph) Deleted(node uint32) bool {
	return g.deleted[node>>6]&(1<<(node&63)) != 0
}

// Dist is the distance between q and node's vector: 1 − dot, on the
// float32 vectors when the graph keeps them, else on the codes.
func (g *Graph) Dist(q []float32, node uint32) float32 {
	if g.floats {
		return 1 - vec.Dot(q, g.Vector(node))
	}
	qq, _ := g.makeQuery(q, nil)
	return g.dist(&qq, node)
}

// VectorBytes is the size of the vector storage in the heap: the part
// every search reads (codes and scales when quantized, else the float32
// vectors) and the part only rescoring reads (the float32 vectors kept
// beside codes, unless they are on disk: FileBytes).
func (g *Graph) VectorBytes() (traversed, rescoring int) {
	if g.quant {
		return cap(g.codes) + 4*cap(g.scales), 4 * cap(g.vecs)
	}
	return 4 * cap(g.vecs), 0
}

// FileBytes is the size of the float32 vector file (Config.FloatsDir).
func (g *Graph) FileBytes() int {
	if g.ff == nil {
		return 0
	}
	return g.ff.bytes()
}

// MemoryBytes is the size of the graph's own arrays (vectors and links).
func (g *Graph) MemoryBytes() int {
	n := 4*cap(g.ext) + 4*cap(g.vecs) + cap(g.codes) + 4*cap(g.scales) + cap(g.levels) + 4*cap(g.links0) + 8*cap(g.deleted) + 4*cap(g.free) + 24*cap(g.upper)
	for _, u := range g.upper {
		n += 4 * cap(u)
	}
	return n
}

func (g *Graph) links(node uint32, level int) []uint32 {
	if level == 0 {
		b := int(node) * (g.m0 + 1)
		return g.links0[b+1 : b+1+int(g.links0[b])]
	}
	u := g.upper[node][(level-1)*(g.m+1):]
	return u[1 : 1+u[0]]
}

func (g *Graph) setLinks(node uint32, level int, ids []uint32) {
	var s []uint32
	if level == 0 {
		b := int(node) * (g.m0 + 1)
		s = g.links0[b : b+g.m0+1]
	} else {
		s = g.upper[node][(level-1)*(g.m+1) : level*(g.m+1)]
	}
	s[0] = uint32(copy(s[1:], ids))
}

func (g *Graph) maxLinks(level int) int {
	if level == 0 {
		return g.m0
	}
	return g.m
}

func (g *Graph) randomLevel() int {
	l := int(-math.Log(1-g.rng.Float64()) * g.ml)
	if l > 32 {
		l = 32
	}
	return l
}

func (g *Graph) setDeleted(node uint32, on bool) {
	if on {
		g.deleted[node>>6] |= 1 << (node & 63)
	} else {
		g.deleted[node>>6] &^= 1 << (node & 63)
	}
}

// Add inserts v (len Dim, unit length) and returns its node id, reusing a
// tombstoned slot when there is one. The graph keeps a copy of v.
func (g *Graph) Add(v []float32) uint32 {
	g.checkDim(v)
	g.version++
	if n := len(g.free); n > 0 {
		node := g.free[n-1]
		g.free = g.free[:n-1]
		g.setDeleted(node, false)
		g.setVector(node, v)
		g.connect(node, int(g.levels[node]))
		return node
	}
	node := uint32(g.nodes)
	g.nodes++
	level := g.randomLevel()
	if g.ff != nil {
		if err := g.ff.appendRows(asBytes(v)); err != nil {
			g.dropFloats(err)
		}
	} else if g.floats {
		g.vecs = append(g.vecs, v...)
	}
	if g.quant {
		g.codes = append(g.codes, make([]int8, g.dim)...)
		g.scales = append(g.scales, vec.Quantize(g.code(node), v))
	}
	g.appendNode(node, level)
	return node
}

// appendNode adds the links and flags of a new node (its vector already
// stored) and connects it.
func (g *Graph) appendNode(node uint32, level int) {
	g.levels = append(g.levels, uint8(level))
	g.links0 = append(g.links0, make([]uint32, g.m0+1)...)
	var up []uint32
	if level > 0 {
		up = make([]uint32, level*(g.m+1))
	}
	g.upper = append(g.upper, up)
	if int(node)>>6 >= len(g.deleted) {
		g.deleted = append(g.deleted, 0)
	}
	if g.top < 0 {
		g.entry, g.top = node, level
		return
	}
	g.connect(node, level)
}

// Update replaces a live node's vector and reconnects it where it now
// belongs; its neighbours are repaired first.
func (g *Graph) Update(node uint32, v []float32) {
	g.checkDim(v)
	if g.Deleted(node) {
		panic(fmt.Sprintf("hnsw: update of deleted node %d", node))
	}
	g.version++
	g.unlink(node)
	g.setVector(node, v)
	g.connect(node, int(g.levels[node]))
}

// Delete tombstones node: it is unlinked from its neighbours (who get
// replacement links), stays a routing node for links that still point to
// it, is never returned by Search, and its slot is reused by a later Add.
func (g *Graph) Delete(node uint32) {
	if int(node) >= g.nodes || g.Deleted(node) {
		return
	}
	g.version++
	g.unlink(node)
	g.setDeleted(node, true)
	g.free = append(g.free, node)
}

func (g *Graph) checkDim(v []float32) {
	if len(v) != g.dim {
		panic(fmt.Sprintf("hnsw: vector of dimension %d in a graph of dimension %d", len(v), g.dim))
	}
}

// Query is a vector prepared for repeated distances to nodes (quantized
// once if the graph is).
type Query struct {
	q   query
	buf []int8
}

// Prepare makes q (len Dim) a Query, reusing into's buffer.
func (g *Graph) Prepare(q []float32, into *Query) {
	into.q, into.buf = g.makeQuery(q, into.buf)
}

// QueryDist is the distance between a prepared query and node, computed
// the way the graph's searches compute it (on the codes if quantized).
func (g *Graph) QueryDist(q *Query, node uint32) float32 { return g.dist(&q.q, node) }
