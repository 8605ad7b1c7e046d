// Package index is serving's in-memory index of livestreams, kept current
// from the goka view's update callback: one shard per table partition for
// the rows and their attributes, and one HNSW graph per vector dimension
// over every partition the replica holds.
//
// Each shard holds
//   - the items, one dense row each;
//   - an attribute index (package attrs): roaring bitmaps per status,
//     category, language and seller, power-of-two buckets for viewers now;
//   - per row, its node in the graph of its vector's dimension.
//
// The graphs (package hnsw) store the vectors contiguously, and only there
// (the items kept have no Vector); each node knows its partition and row,
// so the partition is just one more attribute a filter reads. Optionally
// the vectors are quantized to int8 (Options.Quantize): the graph search
// and the exact scan then run on the codes and the best k·Options.Rescore
// candidates are rescored with the float32 vectors. One graph instead of
// one per partition makes a broad query cost one graph search, whatever
// the partition count (a graph search grows with the logarithm of its
// size, so eight small graphs cost several times one large one).
//
// An update that leaves the vector unchanged (viewers, status, windowed
// features: the frequent case) changes the attribute columns and the item
// only; the graph changes only when the vector does (in place: the node is
// unlinked and reconnected at its new position).
//
// A query plans once for the replica (plan.go): each shard's attribute
// bitmaps give its share of the filter's cardinality; a small filtered set
// is scanned exactly, shard by shard in parallel, a large one is searched
// in the graph with the filter (partition and row attributes) applied
// during traversal. Vectors are unit length, so cosine = dot.
package index

import (
	"errors"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/serving/index/attrs"
	"github.com/livefeed/livefeed/serving/index/hnsw"
	"github.com/livefeed/livefeed/serving/index/vec"
	"github.com/livefeed/livefeed/tables"
)

// Item is one indexed livestream: its vector and the attributes filters and
// scores read. Upsert keeps a shallow copy without the Vector (the vector
// is stored once, in the shard's graph): items in Hits have a nil Vector.
// Do not modify the fields an upserted item shares with its copy (the
// Features maps); upsert a new one.
type Item struct {
	ID         string
	SellerID   string
	Title      string
	Category   string
	Language   string
	Status     events.Status
	LiveSince  time.Time
	ViewersNow int
	Vector     []float32 // unit length; nil if the stream has no embedding yet
	Features   features.State

	// engagement caches Engagement per second of query time for this
	// version of the item (Upsert and snapshot loading give every version
	// its own; nil: not cached).
	engagement *atomic.Pointer[scoreAt]
}

// scoreAt is a score computed for one second of query time (Unix).
type scoreAt struct {
	sec   int64
	score float64
}

// ItemFrom builds an index item from a livestream table value.
func ItemFrom(st *tables.Livestream) *Item {
	var v []float32
	if len(st.Embedding) > 0 {
		v = models.Normalized(st.Embedding)
	}
	return &Item{
		ID: st.LivestreamID, SellerID: st.SellerID, Title: st.Title, Category: st.Category,
		Language: st.Language, Status: st.Status, LiveSince: st.LiveSince,
		ViewersNow: st.ViewersNow(), Vector: v, Features: st.Features,
	}
}

// Options tune the graphs and the planner. Zero values take the defaults.
type Options struct {
	M              int // HNSW links per node (level 0: 2·M); default 16
	EfConstruction int // default 100
	// EfSearch is the graph search's candidate list (at least k; a
	// quantized search adds its Rescore·k candidates; doubled below
	// ExpandBelow; above it a filter is applied to the list of an
	// unfiltered search); default 80.
	EfSearch int
	// ExactThreshold: a filtered set estimated at most this many items per
	// partition holding some of it is scanned exactly (the partitions in
	// parallel) instead of searched in the graph; default 2000; negative:
	// always the graph (tests, benchmarks).
	ExactThreshold int
	// ExpandBelow: below this estimated selectivity the graph search uses
	// ACORN-style expansion (neighbours of a neighbour that fails the
	// filter) instead of routing through failing nodes; default 0.4.
	ExpandBelow float64
	// Seeds is how many members of the filtered set, spread evenly over
	// it, join the entry point of an ACORN-style search; default 32.
	Seeds int
	// FarFactor multiplies EfSearch for an ACORN-style search whose query
	// lies away from the filtered set (see hnsw.Params.FarEf); default 4.
	FarFactor int
	// FarExactThreshold: such a query scans the filtered set exactly
	// instead when it is estimated at most this many items per partition;
	// default 16000; negative: never.
	FarExactThreshold int
	// UpperEf, above 1, is the candidate list of a graph search's level
	// 1 (hnsw.Params.UpperEf): level 0 then starts from that many entry
	// points near the query instead of one; 1: a greedy walk; 0: 32 on
	// a graph of LargeGraph live nodes or more, else a greedy walk.
	UpperEf int
	// LargeGraph is the live node count from which a graph (or
	// sub-graph) search takes level 1's list as its entry points
	// (UpperEf 0) and a list of at least LargeEfSearch: on clustered
	// data at 1M nodes one entry point strands the search in a
	// neighbouring cluster, and a longer list alone does not help
	// (BENCHMARKS.md); default 500000.
	LargeGraph int
	// LargeEfSearch is the least efSearch on a large graph; default 160.
	LargeEfSearch int
	// ScanSeeds, when positive, lets a filtered set lying away from the
	// query be searched in its sub-graph, level 0 starting from the
	// ScanSeeds members nearest the query among an exact pass over the
	// sub-graph's upper-level nodes (at most ScanLimit of them; see
	// hnsw.Params.ScanSeeds), with the far list. Default 0: such a set
	// keeps the whole graph's far plans (far-exact when small enough),
	// which keep recall: at 1M the seeded search reached 0.90 (0.976
	// flooding a fifth of the sub-graph, FarVisit), BENCHMARKS.md.
	ScanSeeds int
	// FarVisit is the share of a far sub-graph search's sub-graph that
	// its level 0 scores at least (hnsw.Params.MinDistances), flooding
	// past the list's bound; default 0 (the list's bound alone).
	FarVisit float64
	// ScanLimit bounds the upper-level nodes scored for ScanSeeds: the
	// lowest upper level with at most this many is scanned; default 8192.
	ScanLimit int
	// NoPrefetch: see hnsw.Config.NoPrefetch.
	NoPrefetch bool
	// Quantize stores int8 codes (one scale per vector) for the graph and
	// the exact scan; the float32 vectors are read only to rescore the
	// best Rescore·k candidates of each partition.
	Quantize bool
	// Rescore is the quantized search's candidates per result (default 4).
	Rescore int
	// DropFloats (with Quantize) keeps no float32 vectors: no rescoring,
	// scores are those of the codes (about ±0.002 at 384 dimensions).
	DropFloats bool
	// FloatsDir (with Quantize, without DropFloats) keeps the float32
	// vectors read for rescoring in an unlinked file in this directory,
	// read with pread, instead of the heap (hnsw.Config.FloatsDir): the
	// heap then holds the codes, the links and the attributes. A snapshot
	// does not record where the floats were: either kind loads either way.
	// Close releases the files.
	FloatsDir string
	// SubGraphs names the attributes ("category", "language") whose
	// values each get a sub-graph of the dimension's graph: the value's
	// nodes linked among themselves (links only; the vectors are the
	// graph's). A query filtering on one value of such an attribute, too
	// many to scan, searches that value's sub-graph with the rest of the
	// filter applied there (plan "subgraph"): its members are near each
	// other in it, even when they lie away from the query, where the
	// whole graph has none of them. Each attribute costs about one more
	// graph's links and insert time. Other names are ignored.
	SubGraphs []string
	// Seed makes graph builds reproducible.
	Seed uint64
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.M == 0 {
		o.M = 16
	}
	if o.EfConstruction == 0 {
		o.EfConstruction = 100
	}
	if o.EfSearch == 0 {
		o.EfSearch = 80
	}
	if o.ExactThreshold == 0 {
		o.ExactThreshold = 2000
	}
	if o.ExpandBelow == 0 {
		o.ExpandBelow = 0.4
	}
	if o.Seeds == 0 {
		o.Seeds = 32
	}
	if o.FarFactor == 0 {
		o.FarFactor = 4
	}
	if o.FarExactThreshold == 0 {
		o.FarExactThreshold = 16000
	}
	if o.LargeGraph == 0 {
		o.LargeGraph = 500_000
	}
	if o.LargeEfSearch == 0 {
		o.LargeEfSearch = 160
	}
	if o.ScanLimit == 0 {
		o.ScanLimit = 8192
	}
	if o.Rescore == 0 {
		o.Rescore = 4
	}
	o.SubGraphs = validSubGraphs(o.SubGraphs)
	return o
}

// vgraph is the replica's graph for one vector dimension.
type vgraph struct {
	g    *hnsw.Graph
	refs []rowRef     // node → partition and row (meaningful for live nodes)
	subs []*subGraphs // Options.SubGraphs, in that order
}

// setSubs puts node (its vector in g just added, or moved if moved) in
// the sub-graphs of it's values.
func (vg *vgraph) setSubs(node uint32, it *Item, moved bool) {
	for _, sg := range vg.subs {
		sg.set(node, sg.value(it), moved)
	}
}

// leaveSubs takes node out of its sub-graphs: before g deletes it.
func (vg *vgraph) leaveSubs(node uint32) {
	for _, sg := range vg.subs {
		sg.leave(node)
	}
}

// rowRef is where a graph node's item lives.
type rowRef struct {
	part, row uint32
}

// shard is one partition's rows and attributes. Its fields are guarded by
// the Index's mutex.
type shard struct {
	items []*Item // row → item; nil: a free row
	rowOf map[string]uint32
	free  []uint32
	live  *roaring.Bitmap // rows in use

	status, category, language, seller *attrs.Dict
	viewers                            *attrs.Ints

	rowG    []uint8  // row → the Index's graph index + 1; 0: no vector
	rowNode []uint32 // row → node in that graph

	offset int64 // table offset reflected (MarkOffset); −1: none
}

func newShard() *shard {
	return &shard{
		rowOf: map[string]uint32{}, live: roaring.New(), offset: -1,
		status: attrs.NewDict(), category: attrs.NewDict(), language: attrs.NewDict(),
		seller: attrs.NewDict(), viewers: attrs.NewInts(),
	}
}

// Index holds one shard per partition and one graph per vector dimension.
// One RWMutex guards them all: queries read under it (a graph search reads
// every partition's attributes), updates write under it.
type Index struct {
	mu     sync.RWMutex
	shards []*shard
	graphs []*vgraph
	feats  *features.Set
	opts   Options
}

// New returns an empty index with default options. feats evaluates windowed
// features for filters and scores.
func New(partitions int, feats *features.Set) *Index {
	return NewWithOptions(partitions, feats, Options{})
}

// NewWithOptions returns an empty index tuned by opts.
func NewWithOptions(partitions int, feats *features.Set, opts Options) *Index {
	ix := &Index{feats: feats, opts: opts.WithDefaults()}
	ix.grow(partitions)
	return ix
}

func (ix *Index) grow(n int) {
	for len(ix.shards) < n {
		ix.shards = append(ix.shards, newShard())
	}
}

// shard returns partition's shard, creating it (and those before it) if
// needed; the caller holds ix.mu for writing.
func (ix *Index) shard(partition int32) *shard {
	ix.grow(int(partition) + 1)
	return ix.shards[partition]
}

// SetSearchOptions replaces the options that only queries read (EfSearch,
// ExactThreshold, ExpandBelow, Seeds, FarFactor, FarExactThreshold,
// Rescore, UpperEf, ScanSeeds, ScanLimit) by o's, zero fields taking
// their defaults; the graph-shaping ones stay. For tuning and benchmarks:
// it must not run concurrently with queries.
func (ix *Index) SetSearchOptions(o Options) {
	o = o.WithDefaults()
	x := &ix.opts
	x.EfSearch, x.ExactThreshold, x.ExpandBelow, x.Seeds = o.EfSearch, o.ExactThreshold, o.ExpandBelow, o.Seeds
	x.FarFactor, x.FarExactThreshold, x.Rescore = o.FarFactor, o.FarExactThreshold, o.Rescore
	x.UpperEf, x.ScanSeeds, x.ScanLimit, x.FarVisit = o.UpperEf, o.ScanSeeds, o.ScanLimit, o.FarVisit
	x.LargeGraph, x.LargeEfSearch = o.LargeGraph, o.LargeEfSearch
}

// SearchOptions returns the index's options (with their defaults).
func (ix *Index) SearchOptions() Options { return ix.opts }

// SetEfSearch changes Options.EfSearch (tuning, benchmarks). It must not
// run concurrently with queries.
func (ix *Index) SetEfSearch(ef int) {
	if ef > 0 {
		ix.opts.EfSearch = ef
	}
}

// Upsert puts the item in the partition's shard; an ended stream leaves the
// index instead. The graph is touched only if the vector changed.
func (ix *Index) Upsert(partition int32, it *Item) {
	if it.Status == events.StatusEnded {
		ix.Delete(partition, it.ID)
		return
	}
	v := unitOrNil(it.Vector)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	s := ix.shard(partition)
	row, ok := s.rowOf[it.ID]
	if !ok {
		row = s.allocRow()
		s.rowOf[it.ID] = row
		s.live.Add(row)
	}
	s.status.Set(row, string(it.Status))
	s.category.Set(row, it.Category)
	s.language.Set(row, it.Language)
	s.seller.Set(row, it.SellerID)
	s.viewers.Set(row, int64(it.ViewersNow))
	ix.setVector(s, uint32(partition), row, v, it)
	cp := *it
	cp.Vector = nil
	cp.engagement = new(atomic.Pointer[scoreAt])
	s.items[row] = &cp
}

// unitOrNil returns v if it is (close to) unit length, else a normalised
// copy; nil for an empty or zero vector.
func unitOrNil(v []float32) []float32 {
	if len(v) == 0 {
		return nil
	}
	n := vec.Dot(v, v)
	if n == 0 || math.IsNaN(float64(n)) {
		return nil
	}
	if math.Abs(float64(n)-1) < 1e-4 {
		return v
	}
	return models.Normalized(v)
}

func (s *shard) allocRow() uint32 {
	if n := len(s.free); n > 0 {
		row := s.free[n-1]
		s.free = s.free[:n-1]
		return row
	}
	row := uint32(len(s.items))
	s.items = append(s.items, nil)
	s.rowG = append(s.rowG, 0)
	s.rowNode = append(s.rowNode, 0)
	return row
}

// setVector makes the graph node of partition's row hold v: nothing if it
// already does, an in-place update if the dimension is the same, else
// delete + insert; the node's sub-graphs follow it's attributes.
func (ix *Index) setVector(s *shard, partition, row uint32, v []float32, it *Item) {
	if gi := s.rowG[row]; gi != 0 {
		vg, node := ix.graphs[gi-1], s.rowNode[row]
		if len(v) == vg.g.Dim() {
			moved := !vg.g.Same(node, v)
			if moved {
				vg.g.Update(node, v)
			}
			vg.setSubs(node, it, moved)
			return
		}
		vg.leaveSubs(node)
		vg.g.Delete(node)
		s.rowG[row] = 0
	}
	if len(v) == 0 {
		return
	}
	gi := ix.graphIndex(len(v), true)
	if gi < 0 {
		return // 255 dimensions already: the row stays without a vector
	}
	vg := ix.graphs[gi]
	node := vg.g.Add(v)
	for int(node) >= len(vg.refs) {
		vg.refs = append(vg.refs, rowRef{})
	}
	vg.refs[node] = rowRef{part: partition, row: row}
	s.rowG[row], s.rowNode[row] = uint8(gi+1), node
	vg.setSubs(node, it, false)
}

// graphIndex returns the index of the graph for dimension dim, −1 if there
// is none and create is false.
func (ix *Index) graphIndex(dim int, create bool) int {
	for i, vg := range ix.graphs {
		if vg.g.Dim() == dim {
			return i
		}
	}
	if !create || len(ix.graphs) >= 255 {
		return -1
	}
	o := &ix.opts
	vg := &vgraph{g: hnsw.New(dim, hnsw.Config{
		M: o.M, EfConstruction: o.EfConstruction, Seed: o.Seed, NoPrefetch: o.NoPrefetch,
		Quantize: o.Quantize, DropFloats: o.DropFloats, FloatsDir: o.FloatsDir,
	})}
	vg.subs = ix.newSubs(vg.g)
	ix.graphs = append(ix.graphs, vg)
	return len(ix.graphs) - 1
}

// newSubs makes Options.SubGraphs' (empty) sub-graph sets over g.
func (ix *Index) newSubs(g *hnsw.Graph) []*subGraphs {
	o := &ix.opts
	var subs []*subGraphs
	for i, attr := range o.SubGraphs {
		subs = append(subs, newSubGraphs(attr, g, hnsw.Config{
			M: o.M, EfConstruction: o.EfConstruction, Seed: o.Seed + uint64(i) + 1, NoPrefetch: o.NoPrefetch}))
	}
	return subs
}

// Delete removes a stream from the partition's shard.
func (ix *Index) Delete(partition int32, id string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	s := ix.shard(partition)
	row, ok := s.rowOf[id]
	if !ok {
		return
	}
	if gi := s.rowG[row]; gi != 0 {
		vg := ix.graphs[gi-1]
		vg.leaveSubs(s.rowNode[row])
		vg.g.Delete(s.rowNode[row])
		s.rowG[row] = 0
	}
	s.status.Remove(row)
	s.category.Remove(row)
	s.language.Remove(row)
	s.seller.Remove(row)
	s.viewers.Remove(row)
	s.live.Remove(row)
	s.items[row] = nil
	delete(s.rowOf, id)
	s.free = append(s.free, row)
}

// IDs returns the ids of the streams indexed in partition's shard.
func (ix *Index) IDs(partition int32) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if int(partition) >= len(ix.shards) || partition < 0 {
		return nil
	}
	s := ix.shards[partition]
	ids := make([]string, 0, len(s.rowOf))
	for id := range s.rowOf {
		ids = append(ids, id)
	}
	return ids
}

// Len is the number of indexed streams.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, s := range ix.shards {
		n += len(s.rowOf)
	}
	return n
}

// MemoryBytes estimates the index's own memory besides the items: graph
// vectors and links, row maps, attribute bitmaps.
func (ix *Index) MemoryBytes() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, vg := range ix.graphs {
		n += vg.g.MemoryBytes() + 8*cap(vg.refs)
		for _, sg := range vg.subs {
			n += sg.memoryBytes()
		}
	}
	for _, s := range ix.shards {
		n += 8*cap(s.items) + 5*cap(s.rowG) + 48*len(s.rowOf) + int(s.live.GetSizeInBytes())
		for _, d := range []*attrs.Dict{s.status, s.category, s.language, s.seller} {
			n += d.MemoryBytes()
		}
		n += s.viewers.MemoryBytes()
	}
	return n
}

// VectorBytes is the vector storage of every graph: what searches read
// (int8 codes and scales when quantized, else the float32 vectors) and what
// only rescoring reads (the float32 vectors kept beside the codes).
func (ix *Index) VectorBytes() (traversed, rescoring int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, vg := range ix.graphs {
		t, r := vg.g.VectorBytes()
		traversed += t
		rescoring += r
	}
	return traversed, rescoring
}

// FloatFileBytes is the size of the float32 vector files
// (Options.FloatsDir): on disk and in the kernel's page cache, not in the
// process's memory.
func (ix *Index) FloatFileBytes() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, vg := range ix.graphs {
		n += vg.g.FileBytes()
	}
	return n
}

// FloatsErr is the first graph's reason not to keep its float32 vectors on
// disk as Options.FloatsDir asked (hnsw.Graph.FloatsErr); nil if none.
func (ix *Index) FloatsErr() error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, vg := range ix.graphs {
		if err := vg.g.FloatsErr(); err != nil {
			return err
		}
	}
	return nil
}

// EvictFloats drops the float32 vector files' pages from the page cache,
// so that the next rescoring reads come from the disk: for measuring what
// a cold read costs.
func (ix *Index) EvictFloats() error {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var errs []error
	for _, vg := range ix.graphs {
		errs = append(errs, vg.g.EvictFloats())
	}
	return errors.Join(errs...)
}

// Close releases the float32 vector files (Options.FloatsDir); the index
// must not be used after. Without them it does nothing, and an index that
// is dropped without Close releases them when collected.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var errs []error
	for _, vg := range ix.graphs {
		errs = append(errs, vg.g.Close())
	}
	ix.graphs = nil
	for _, s := range ix.shards {
		clear(s.rowG)
	}
	return errors.Join(errs...)
}

// forEachShard runs fn on every shard, in parallel on up to GOMAXPROCS
// goroutines, each owned and awaited here. The caller holds ix.mu for
// reading: the goroutines read under it.
func (ix *Index) forEachShard(shards []*shard, fn func(i int, s *shard)) {
	workers := min(runtime.GOMAXPROCS(0), len(shards))
	if workers <= 1 {
		for i, s := range shards {
			fn(i, s)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, len(shards))
	for i := range shards {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i, shards[i])
			}
		})
	}
	wg.Wait()
}
