package index

import (
	"fmt"
	"math"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/livefeed/livefeed/serving/index/hnsw"
	"github.com/livefeed/livefeed/serving/index/vec"
)

// Plans a query can run (Stats.Plan; each partition with candidates shows
// the same one).
const (
	PlanExact = "exact" // score every item of the filtered set
	PlanGraph = "graph" // HNSW search with the filter applied during traversal
	// PlanGraphExact: the graph search found fewer than k items that pass
	// the filter, so the filtered set was scanned exactly after it.
	PlanGraphExact = "graph+exact"
	// PlanFarExact: the filtered set lies away from the query (few of its
	// members near where the graph's upper levels lead) and is at most
	// Options.FarExactThreshold per partition holding some: scanned
	// exactly.
	PlanFarExact = "far-exact"
	PlanNone     = "none" // nothing passes the filter (or no comparable vector)
	// PlanSubGraph: as PlanGraph, in the sub-graph of the one value the
	// filter asks of an attribute with sub-graphs (Options.SubGraphs),
	// the rest of the filter applied there (Stats.SubGraph says which).
	PlanSubGraph = "subgraph"
)

// pred is a filter compiled against one shard's columns (valid under the
// index's read lock): the per-row test used by the exact scan and, through
// replicaPred, by the graph traversal.
type pred struct {
	s                 *shard
	status, cat, lang []bool // by dictionary code; nil: any
	noSeller          []bool
	noRows            map[uint32]struct{}
	viewers           []Range // on viewers_now: exact values from the column
	residual          []compiledRange
	now               time.Time
	sink              float32 // exact scans' touches (kept live)
}

func (s *shard) compile(f *Filter, cf *compiled) *pred {
	p := &pred{s: s, now: cf.now}
	if len(f.Status) > 0 {
		vals := make([]string, len(f.Status))
		for i, st := range f.Status {
			vals[i] = string(st)
		}
		p.status = s.status.Mask(vals)
	}
	if len(f.Categories) > 0 {
		p.cat = s.category.Mask(f.Categories)
	}
	if len(f.Languages) > 0 {
		p.lang = s.language.Mask(f.Languages)
	}
	if len(f.ExcludeSellers) > 0 {
		p.noSeller = s.seller.Mask(f.ExcludeSellers)
	}
	for _, id := range f.ExcludeStreams {
		if row, ok := s.rowOf[id]; ok {
			if p.noRows == nil {
				p.noRows = map[uint32]struct{}{}
			}
			p.noRows[row] = struct{}{}
		}
	}
	for _, r := range cf.ranges {
		if r.def == nil && r.Field == AttrViewersNow {
			p.viewers = append(p.viewers, r.Range)
		} else {
			p.residual = append(p.residual, r)
		}
	}
	return p
}

// match is the exact per-row test.
func (p *pred) match(row uint32) bool {
	s := p.s
	if p.status != nil && !p.status[s.status.Code(row)] {
		return false
	}
	if p.cat != nil && !p.cat[s.category.Code(row)] {
		return false
	}
	if p.lang != nil && !p.lang[s.language.Code(row)] {
		return false
	}
	if p.noSeller != nil && p.noSeller[s.seller.Code(row)] {
		return false
	}
	if p.noRows != nil {
		if _, ok := p.noRows[row]; ok {
			return false
		}
	}
	for _, r := range p.viewers {
		v := float64(s.viewers.Value(row))
		if (r.Min != nil && v < *r.Min) || (r.Max != nil && v > *r.Max) {
			return false
		}
	}
	if len(p.residual) > 0 {
		it := s.items[row]
		for i := range p.residual {
			r := &p.residual[i]
			if !r.in(attr(it, r.Field, r.def, p.now)) {
				return false
			}
		}
	}
	return true
}

// replicaPred is the filter of a graph search: a node passes if its
// partition has candidates and its row passes that partition's pred.
type replicaPred struct {
	refs  []rowRef
	preds []*pred // by partition; nil: nothing of it passes
}

// Allowed implements hnsw.Filter.
func (rp *replicaPred) Allowed(node uint32) bool {
	r := rp.refs[node]
	p := rp.preds[r.part]
	return p != nil && p.match(r.row)
}

// candidates returns a superset of the rows that pass f, from the bitmaps
// (AND of the categorical unions and the viewers buckets, minus excluded
// sellers and streams), and the estimated number that pass: exact when
// there is no range, else the superset's size times the share of an even
// sample of it that passes. The bitmap may be the shard's own: read only.
func (p *pred) candidates(f *Filter) (*roaring.Bitmap, int) {
	s := p.s
	var bm *roaring.Bitmap // nil: all live rows
	and := func(x *roaring.Bitmap) {
		if bm == nil {
			bm = x
		} else {
			bm.And(x)
		}
	}
	if len(f.Status) > 0 {
		vals := make([]string, len(f.Status))
		for i, st := range f.Status {
			vals[i] = string(st)
		}
		and(s.status.Union(vals))
	}
	if len(f.Categories) > 0 {
		and(s.category.Union(f.Categories))
	}
	if len(f.Languages) > 0 {
		and(s.language.Union(f.Languages))
	}
	for _, r := range p.viewers {
		sup, _ := s.viewers.Range(r.Min, r.Max)
		and(sup)
	}
	owned := bm != nil
	if bm == nil {
		bm = s.live
	}
	var out *roaring.Bitmap
	if len(f.ExcludeSellers) > 0 {
		out = s.seller.Union(f.ExcludeSellers)
	}
	for row := range p.noRows {
		if out == nil {
			out = roaring.New()
		}
		out.Add(row)
	}
	if out != nil && !out.IsEmpty() {
		if owned {
			bm.AndNot(out)
		} else {
			bm = roaring.AndNot(bm, out)
		}
	}
	n := int(bm.GetCardinality())
	if n == 0 || (len(p.viewers) == 0 && len(p.residual) == 0) {
		return bm, n
	}
	const samples = 64
	if n <= samples {
		c := 0
		it := bm.Iterator()
		for it.HasNext() {
			if p.match(it.Next()) {
				c++
			}
		}
		return bm, c
	}
	pass := 0
	for i := range samples {
		row, err := bm.Select(uint32((2*i + 1) * n / (2 * samples)))
		if err == nil && p.match(row) {
			pass++
		}
	}
	return bm, (n*pass + samples - 1) / samples
}

// quickEstimate estimates how many rows pass f without building the
// candidate bitmap, where that is cheap and good enough to choose a graph
// plan: a filter on viewers_now alone, estimated from the buckets' sizes
// (a broad range would otherwise union dozens of bucket bitmaps per
// partition, as costly as the graph search itself). ok is false for any
// other filter.
func (p *pred) quickEstimate(f *Filter) (est int, ok bool) {
	if len(p.viewers) != 1 || len(p.residual) > 0 || len(f.Status) > 0 || len(f.Categories) > 0 ||
		len(f.Languages) > 0 || len(f.ExcludeSellers) > 0 || p.noRows != nil {
		return 0, false
	}
	r := p.viewers[0]
	return int(math.Ceil(p.s.viewers.Estimate(r.Min, r.Max))), true
}

// shardResult is one shard's answer.
type shardResult struct {
	top   topK
	stats PartitionStats
}

// searchVec plans and runs a vector query over the replica under the
// index's read lock: the filter is compiled for every partition, their
// estimates summed, and one plan chosen for all: an exact scan of the
// partitions' filtered sets (in parallel) when the estimate is small, else
// one search of the dimension's graph with the filter applied during
// traversal. It returns the best n (≥ k) hits; a quantized search rescores
// max(n, k·Rescore) candidates by their codes, so the top k are as exact
// as Search's and the rest of the n need no more.
func (ix *Index) searchVec(q []float32, k, n int, f *Filter, cf *compiled) ([]Hit, Stats) {
	n = max(n, k)
	rescoreN := max(n, k*ix.opts.Rescore)
	start := time.Now()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	shards := ix.shards
	st := Stats{Plan: PlanNone, Partitions: make([]PartitionStats, len(shards))}
	for i := range st.Partitions {
		st.Partitions[i] = PartitionStats{Partition: i, Plan: PlanNone}
	}
	gi := ix.graphIndex(len(q), false)
	if gi < 0 {
		return nil, st
	}
	vg, g := ix.graphs[gi], uint8(gi+1)
	preds := make([]*pred, len(shards))
	bms := make([]*roaring.Bitmap, len(shards)) // nil until materialised
	est, holding, card := 0, 0, uint64(0)
	everything := true // the filter passes every live row
	quick := true      // estimated by quickEstimate, no bitmaps yet
	for i, s := range shards {
		p := s.compile(f, cf)
		preds[i] = p
		e, ok := p.quickEstimate(f)
		if !ok {
			quick = false
			break
		}
		st.Partitions[i].Estimated, st.Partitions[i].Matched = e, e
		est += e
	}
	// materialise computes the candidate bitmaps and the estimates from
	// them (exact for categorical filters, sampled for ranges).
	materialise := func() {
		est, holding, card, quick = 0, 0, 0, false
		for i, s := range shards {
			p := preds[i]
			if p == nil {
				p = s.compile(f, cf)
			}
			bm, e := p.candidates(f)
			if bm != s.live || len(p.viewers) > 0 || len(p.residual) > 0 {
				everything = false
			}
			st.Partitions[i].Estimated, st.Partitions[i].Matched = e, e
			preds[i], bms[i] = nil, nil
			if bm.IsEmpty() {
				continue
			}
			preds[i], bms[i] = p, bm
			est += e
			holding++
			card += bm.GetCardinality()
		}
		st.Estimated, st.Matched = est, est
	}
	live := vg.g.Live()
	if quick {
		everything = false
		for i := range preds {
			if st.Partitions[i].Estimated > 0 {
				holding++
			} else {
				preds[i] = nil
			}
		}
		st.Estimated, st.Matched = est, est
		// Only a broad filter's graph search (routing through) goes on
		// without bitmaps; every other plan needs them.
		if live == 0 || est <= ix.opts.ExactThreshold*max(holding, 1) || float64(est) < ix.opts.ExpandBelow*float64(live) {
			materialise()
		}
	} else {
		materialise()
	}
	if holding == 0 {
		return nil, st
	}
	setPlan := func(plan string, took time.Duration) {
		st.Plan = plan
		for i := range st.Partitions {
			if preds[i] != nil {
				st.Partitions[i].Plan = plan
				st.Partitions[i].Took = took
			}
		}
	}
	// scan scores the filtered sets exactly, the partitions in parallel.
	scan := func(plan string) []Hit {
		tops := make([]topK, len(shards))
		nears := make([]nearest, len(shards))
		ix.forEachShard(shards, func(i int, s *shard) {
			if preds[i] == nil {
				return
			}
			t0 := time.Now()
			tops[i], nears[i] = topK{k: n}, nearest{n: rescoreN}
			sc, m := s.exactScan(q, bms[i], preds[i], vg, g, &nears[i], &tops[i])
			ps := &st.Partitions[i]
			ps.Plan, ps.Scanned, ps.Matched, ps.Took = plan, ps.Scanned+sc, m, time.Since(t0)
		})
		st.Plan, st.Matched = plan, 0
		var hits []Hit
		best := nearest{n: rescoreN}
		for i := range tops {
			hits = append(hits, tops[i].h...)
			for _, h := range nears[i].h {
				best.offer(h)
			}
			st.Scanned += st.Partitions[i].Scanned
			st.Matched += st.Partitions[i].Matched
		}
		// The replica's best rescoreN by their codes, rescored once (not
		// each partition's: a read each when the floats are on disk).
		buf := make([]float32, len(q))
		for _, h := range best.h {
			ref := vg.refs[h.Node]
			hits = append(hits, Hit{Item: shards[ref.part].items[ref.row], Score: vg.score(q, h, buf)})
		}
		return topHits(hits, n)
	}
	if est <= ix.opts.ExactThreshold*holding || live == 0 {
		return scan(PlanExact), st
	}
	// The graph searched: the whole graph, or the smallest sub-graph of
	// a value the filter asks for (its estimate relative to that).
	sg, plan := vg.g, PlanGraph
	rp := &replicaPred{refs: vg.refs, preds: preds}
	var filter hnsw.Filter = rp
	subFar := false // the sub-graph's set lies away from the query
	if sub, subs, only := vg.subFor(f); sub != nil {
		far := ix.farFromSet(vg, q, rp, est, live)
		if !far || ix.opts.ScanSeeds > 0 {
			sg, plan, live, subFar = sub, PlanSubGraph, sub.Live(), far
			filter = subFilter{rp: rp, g: sub}
			everything = only
			st.SubGraph = fmt.Sprintf("%s=%s (%d nodes)", subs.attr, subs.filterValue(f), live)
		}
	}
	sel := min(1, float64(est)/float64(live))
	// A quantized graph returns Rescore·k candidates by their codes, then
	// the float32 vectors rank them (without floats: the codes' order).
	efS, upper := ix.opts.EfSearch, ix.opts.UpperEf
	if sg.Live() >= ix.opts.LargeGraph {
		// A large graph: entry points from level 1's list, a longer
		// list (Options.LargeGraph).
		efS = max(efS, ix.opts.LargeEfSearch)
		if upper == 0 {
			upper = 32
		}
	}
	kk, ef := n, max(efS, n)
	if vg.g.Quantized() && vg.g.HasFloats() {
		// The codes' order is approximate: the list holds the kk
		// candidates to rescore on top of a float search's list.
		kk = rescoreN
		ef = max(efS, n) + kk
	}
	params := hnsw.Params{K: kk, Ef: ef, Filter: filter, UpperEf: upper}
	// A broad filter is applied after an unfiltered search of the same
	// list: its passing members among the list's ef nearest are enough
	// (half or more of them pass), and routing through failing nodes
	// with a list of ef passing ones would score about ef/sel nodes.
	postFilter := !everything && sel >= ix.opts.ExpandBelow
	if everything || postFilter {
		params.Filter = nil
	}
	if postFilter {
		params.K = ef
	}
	if subFar {
		// The sub-graph's members lie in clusters away from the query,
		// their nearest spread over several of those at nearly the same
		// distance: level 0 starts from the members nearest the query
		// among an exact pass over the sub-graph's upper-level nodes (an
		// even sample of its clusters), with the far list.
		params.ScanSeeds, params.ScanLimit = ix.opts.ScanSeeds, ix.opts.ScanLimit
		params.MinDistances = int(ix.opts.FarVisit * float64(live))
		params.Ef = ix.opts.FarFactor*max(efS, n) + ef - max(efS, n)
		if postFilter {
			params.K = params.Ef
		}
	} else if sg != vg.g && sel >= ix.opts.ExpandBelow {
		// A sub-graph of a value whose members lie in several clusters
		// away from the query (a category following the vectors' topics)
		// has nearest members spread over those clusters at nearly the
		// same distance: one entry point reaches one of them. Seeds
		// spread over the members start the search in each, and the
		// longer list follows several (at 1M × 384 the plain search's
		// recall@10 there was 0.40).
		for i, p := range preds {
			if p != nil {
				n := (ix.opts.Seeds*st.Partitions[i].Estimated + est - 1) / max(est, 1)
				params.Seeds = p.seeds(bms[i], g, max(n, 1), params.Seeds)
			}
		}
		params.Seeds = vg.subSeeds(sg, params.Seeds)
		params.Ef *= 2
	}
	if sel < ix.opts.ExpandBelow {
		// A restrictive filter's members are fewer and further apart:
		// twice the list (measured: the correlated 10 % filter of
		// bench/servingbench needs it for 0.99).
		params.Mode, params.Ef = hnsw.Expand, max(params.Ef, 2*max(efS, kk))
		// Seeds spread over the filtered set, so that members far from
		// where the upper levels lead (a filter correlated with the
		// vectors: its members sit in a few clusters, maybe not the
		// query's) are reached: best-first search expands the seeds
		// nearest the query and leaves the others. Each partition gives
		// its share (partitions hold random samples of the catalogue).
		for i, p := range preds {
			if p != nil {
				n := (ix.opts.Seeds*st.Partitions[i].Estimated + est - 1) / max(est, 1)
				params.Seeds = p.seeds(bms[i], g, max(n, 1), params.Seeds)
			}
		}
		if sg != vg.g {
			params.Seeds = vg.subSeeds(sg, params.Seeds)
		}
		params.FarEf, params.FarBelow = ix.opts.FarFactor*params.Ef, sel/2
		// Clearly far from the query (under a quarter of the expected
		// share nearby), a filtered set that is not too large is cheaper
		// to scan than to search well: the graph needs a list of
		// hundreds there, and still misses some.
		if est <= ix.opts.FarExactThreshold*holding {
			params.FarStopBelow = sel / 4
		}
	}
	res, gst := sg.Search(q, params, nil)
	toBase(sg, res)
	if subFar {
		gst.Far = true
		st.SubGraph += fmt.Sprintf(", away from the query: %d entry points from %d upper-level nodes, %d scored",
			params.ScanSeeds, gst.Scanned, gst.Distances)
	}
	if postFilter {
		listed := len(res)
		kept := res[:0]
		for _, h := range res {
			if rp.Allowed(h.Node) {
				kept = append(kept, h)
			}
		}
		res = kept[:min(len(kept), kk)]
		if len(kept) < k || float64(len(kept)) < 0.75*sel*float64(listed) {
			// Fewer than k of the list pass, or clearly under the
			// expected share: the filter's members lie away from the
			// query (a filter correlated with the vectors), those in
			// the list are at its fringe, where it is not accurate.
			// Search with the filter applied during traversal and the
			// far list (see hnsw.Params.FarEf).
			params.Filter, params.K, params.Ef = filter, kk, ix.opts.FarFactor*ef
			gst.Far = true
			var again hnsw.Stats
			res, again = sg.Search(q, params, res[:0])
			toBase(sg, res)
			gst.Distances += again.Distances
		}
	}
	st.Scanned = gst.Distances
	setPlan(plan, time.Since(start))
	if gst.Far {
		for i := range st.Partitions {
			st.Partitions[i].Far = preds[i] != nil
		}
	}
	if gst.Stopped {
		// quick is false here: FarStopBelow is set only below ExpandBelow.
		return scan(PlanFarExact), addScanned(&st, gst.Distances)
	}
	top := topK{k: n}
	buf := make([]float32, len(q))
	for _, h := range res {
		ref := vg.refs[h.Node]
		top.offer(shards[ref.part].items[ref.row], vg.score(q, h, buf))
	}
	if len(res) < k {
		if quick {
			materialise()
		}
		if uint64(len(res)) < card {
			// Fewer than k found while more may pass: scan exactly.
			return scan(PlanGraphExact), addScanned(&st, gst.Distances)
		}
	}
	return topHits(top.h, n), st
}

// farFromSet reports whether a restrictive filtered set (est of the
// graph's live nodes) lies clearly away from q: near where the graph's
// upper levels lead, under a quarter of its share passes. Its nearest
// members are then spread over its clusters at nearly the same distance,
// which a sub-graph search misses too (measured: recall@10 0.40 at 1M ×
// 384 plainly, 0.81 at 200k with seeds and a doubled list), so the planner
// keeps the whole graph's far plans for it (far-exact when small enough).
func (ix *Index) farFromSet(vg *vgraph, q []float32, rp *replicaPred, est, live int) bool {
	sel := float64(est) / float64(max(live, 1))
	return sel < ix.opts.ExpandBelow && vg.g.Share(q, rp) < sel/4
}

// toBase turns a sub-graph's results into its base graph's nodes.
func toBase(g *hnsw.Graph, res []hnsw.Result) {
	if !g.Sub() {
		return
	}
	for i := range res {
		res[i].Node = g.Ref(res[i].Node)
	}
}

// subFor returns the smallest sub-graph of a value f asks of an attribute
// with sub-graphs (nil if none), its set, and whether f asks nothing else
// (then every member passes).
func (vg *vgraph) subFor(f *Filter) (*hnsw.Graph, *subGraphs, bool) {
	var best *hnsw.Graph
	var bestSet *subGraphs
	for _, sg := range vg.subs {
		v := sg.filterValue(f)
		if v == "" {
			continue
		}
		if g := sg.graph(v); g != nil && g.Live() > 0 && (best == nil || g.Live() < best.Live()) {
			best, bestSet = g, sg
		}
	}
	if best == nil {
		return nil, nil, false
	}
	only := len(f.Status) == 0 && len(f.ExcludeSellers) == 0 && len(f.ExcludeStreams) == 0 && len(f.Ranges) == 0 &&
		(bestSet.attr == SubGraphCategory && len(f.Languages) == 0 || bestSet.attr == SubGraphLanguage && len(f.Categories) == 0)
	return best, bestSet, only
}

// subSeeds maps seeds (nodes of vg.g) to sub-graph g's nodes, dropping
// those not in it.
func (vg *vgraph) subSeeds(g *hnsw.Graph, seeds []uint32) []uint32 {
	out := seeds[:0]
	for _, n := range seeds {
		for _, sg := range vg.subs {
			if x, ok := sg.subNode(n, g); ok {
				out = append(out, x)
				break
			}
		}
	}
	return out
}

// addScanned adds a graph search's distances to a scan's count.
func addScanned(st *Stats, n int) Stats {
	st.Scanned += n
	return *st
}

// seeds appends to out up to n rows of bm picked evenly, that pass and
// have a node in graph g, as extra entry points.
func (p *pred) seeds(bm *roaring.Bitmap, g uint8, n int, out []uint32) []uint32 {
	card := bm.GetCardinality()
	for i := range uint64(n) {
		row, err := bm.Select(uint32((2*i + 1) * card / uint64(2*n)))
		if err == nil && p.s.rowG[row] == g && p.match(row) {
			out = append(out, p.s.rowNode[row])
		}
	}
	return out
}

// score is the cosine of q and a graph result: from the float32 vector if
// the graph keeps it (read into buf when on disk), else from the result's
// distance (the codes').
func (vg *vgraph) score(q []float32, h hnsw.Result, buf []float32) float64 {
	if v := vg.g.VectorInto(h.Node, buf); v != nil {
		return float64(vec.Dot(q, v))
	}
	return float64(1 - h.Dist)
}

// exactScan scores every row of bm that has a vector in graph vg (the
// index's graph g−1) and passes p into top; it returns how many rows it
// looked at and how many passed. A quantized graph with float32 vectors
// keeps its best by their codes in near instead, for the caller to
// rescore the replica's best.
func (s *shard) exactScan(q []float32, bm *roaring.Bitmap, p *pred, vg *vgraph, g uint8, near *nearest, top *topK) (scanned, matched int) {
	if vg.g.Quantized() {
		return s.exactScanCodes(q, bm, p, vg, g, near, top)
	}
	it := bm.ManyIterator()
	var buf, rows, nodes [256]uint32
	for {
		n := it.NextMany(buf[:])
		if n == 0 {
			return scanned, matched
		}
		m := s.passing(buf[:n], p, g, rows[:], nodes[:], &scanned)
		matched += m
		// No Touch here: with float32 vectors (24 cache lines each) it
		// measured slower (BenchmarkExactScanLarge), and so did touching
		// a few vectors ahead although a partition's rows are now
		// interleaved with the other partitions' in the one graph; with
		// 6-line codes it helps.
		for i := range m {
			top.offer(s.items[rows[i]], float64(vec.Dot(q, vg.g.Vector(nodes[i]))))
		}
	}
}

// passing writes the rows of batch that have a node in graph g and pass p
// to rows (and their nodes to nodes), counting the first in scanned; it
// returns how many passed.
func (s *shard) passing(batch []uint32, p *pred, g uint8, rows, nodes []uint32, scanned *int) int {
	m := 0
	for _, row := range batch {
		if s.rowG[row] != g {
			continue
		}
		*scanned++
		if !p.match(row) {
			continue
		}
		rows[m], nodes[m] = row, s.rowNode[row]
		m++
	}
	return m
}

// popularShard scores every item of the shard's filtered set by engagement.
// The caller holds ix.mu for reading.
func (ix *Index) popularShard(s *shard, k int, f *Filter, cf *compiled) shardResult {
	start := time.Now()
	r := shardResult{top: topK{k: k}, stats: PartitionStats{Plan: PlanNone}}
	defer func() { r.stats.Took = time.Since(start) }()
	p := s.compile(f, cf)
	bm, est := p.candidates(f)
	r.stats.Estimated = est
	if bm.IsEmpty() {
		return r
	}
	r.stats.Plan = PlanExact
	it := bm.ManyIterator()
	var buf [256]uint32
	for {
		n := it.NextMany(buf[:])
		if n == 0 {
			return r
		}
		for _, row := range buf[:n] {
			r.stats.Scanned++
			if !p.match(row) {
				continue
			}
			r.stats.Matched++
			item := s.items[row]
			r.top.offer(item, ix.Engagement(item, cf.now))
		}
	}
}

// exactScanCodes is exactScan on a quantized graph: every row is scored on
// its codes; with floats kept, the best go to near (for rescoring).
func (s *shard) exactScanCodes(q []float32, bm *roaring.Bitmap, p *pred, vg *vgraph, g uint8, near *nearest, top *topK) (scanned, matched int) {
	var pq hnsw.Query
	vg.g.Prepare(q, &pq)
	floats := vg.g.HasFloats()
	it := bm.ManyIterator()
	var buf, rows, nodes [256]uint32
	for {
		n := it.NextMany(buf[:])
		if n == 0 {
			break
		}
		m := s.passing(buf[:n], p, g, rows[:], nodes[:], &scanned)
		matched += m
		p.sink += vg.g.Touch(nodes[:m])
		for i := range m {
			d := vg.g.QueryDist(&pq, nodes[i])
			if !floats {
				top.offer(s.items[rows[i]], float64(1-d))
				continue
			}
			near.offer(hnsw.Result{Node: nodes[i], Dist: d})
		}
	}
	return scanned, matched
}

// nearest keeps the n results of smallest distance (a max-heap: the root
// is the furthest kept).
type nearest struct {
	n int
	h []hnsw.Result
}

func (b *nearest) offer(x hnsw.Result) {
	h := b.h
	if len(h) < b.n {
		h = append(h, x)
		for i := len(h) - 1; i > 0; {
			p := (i - 1) / 2
			if h[p].Dist >= h[i].Dist {
				break
			}
			h[p], h[i] = h[i], h[p]
			i = p
		}
		b.h = h
		return
	}
	if b.n == 0 || x.Dist >= h[0].Dist {
		return
	}
	h[0] = x
	for i := 0; ; {
		w := i
		if l := 2*i + 1; l < len(h) && h[l].Dist > h[w].Dist {
			w = l
		}
		if r := 2*i + 2; r < len(h) && h[r].Dist > h[w].Dist {
			w = r
		}
		if w == i {
			break
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}
