package index

import (
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/livefeed/livefeed/serving/index/hnsw"
	"github.com/livefeed/livefeed/serving/index/vec"
)

// Plans a shard can run.
const (
	PlanExact = "exact" // score every item of the filtered set
	PlanGraph = "graph" // HNSW search with the filter applied during traversal
	// PlanGraphExact: the graph search found fewer than k items that pass
	// the filter, so the filtered set was scanned exactly after it.
	PlanGraphExact = "graph+exact"
	// PlanFarExact: the filtered set lies away from the query (few of its
	// members near where the graph's upper levels lead) and is at most
	// Options.FarExactThreshold: scanned exactly.
	PlanFarExact = "far-exact"
	PlanNone     = "none" // nothing passes the filter (or no comparable vector)
)

// pred is a filter compiled against one shard's columns (valid under the
// shard's read lock): the per-row test used by the exact scan and, through
// Allowed, by the graph traversal.
type pred struct {
	s                 *shard
	status, cat, lang []bool // by dictionary code; nil: any
	noSeller          []bool
	noRows            map[uint32]struct{}
	viewers           []Range // on viewers_now: exact values from the column
	residual          []compiledRange
	now               time.Time
	vg                *vgraph // for Allowed
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

// Allowed implements hnsw.Filter.
func (p *pred) Allowed(node uint32) bool { return p.match(p.vg.nodeRow[node]) }

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

// shardResult is one shard's answer.
type shardResult struct {
	top   topK
	stats PartitionStats
}

// searchShard plans and runs a vector query on one shard (under its read
// lock).
func (ix *Index) searchShard(s *shard, q []float32, k int, f *Filter, cf *compiled) shardResult {
	start := time.Now()
	r := shardResult{top: topK{k: k}, stats: PartitionStats{Plan: PlanNone}}
	defer func() { r.stats.Took = time.Since(start) }()
	s.mu.RLock()
	defer s.mu.RUnlock()
	gi := s.graphIndex(len(q), false)
	if gi < 0 {
		return r
	}
	vg := s.graphs[gi]
	p := s.compile(f, cf)
	p.vg = vg
	bm, est := p.candidates(f)
	r.stats.Estimated, r.stats.Matched = est, est
	if bm.IsEmpty() {
		return r
	}
	live := vg.g.Live()
	if est <= ix.opts.ExactThreshold || live == 0 {
		r.stats.Plan = PlanExact
		r.stats.Scanned, r.stats.Matched = s.exactScan(q, bm, p, uint8(gi+1), &r.top)
		return r
	}
	sel := float64(est) / float64(live)
	// A quantized graph returns Rescore·k candidates by their codes, then
	// the float32 vectors rank them (without floats: the codes' order).
	kk := k
	if vg.g.Quantized() && vg.g.HasFloats() {
		kk = k * ix.opts.Rescore
	}
	params := hnsw.Params{K: kk, Ef: max(ix.opts.EfSearch, kk), Filter: p}
	if sel >= 0.999 && len(p.residual) == 0 && len(p.viewers) == 0 && bm == s.live {
		params.Filter = nil // everything live passes
	}
	if sel < ix.opts.ExpandBelow {
		// A restrictive filter's members are fewer and further apart:
		// twice the list (measured: the correlated 10 % filter of
		// bench/servingbench needs it for 0.99).
		params.Mode, params.Ef = hnsw.Expand, 2*params.Ef
		// Seeds spread over the filtered set, so that members far from
		// where the upper levels lead (a filter correlated with the
		// vectors: its members sit in a few clusters, maybe not the
		// query's) are reached: best-first search expands the seeds
		// nearest the query and leaves the others.
		params.Seeds = p.seeds(bm, uint8(gi+1), ix.opts.Seeds)
		params.FarEf, params.FarBelow = ix.opts.FarFactor*params.Ef, sel/2
		// Clearly far from the query (under a quarter of the expected
		// share nearby), a filtered set that is not too large is cheaper
		// to scan than to search well: the graph needs a list of
		// hundreds there, and still misses some.
		if est <= ix.opts.FarExactThreshold {
			params.FarStopBelow = sel / 4
		}
	}
	res, st := vg.g.Search(q, params, nil)
	r.stats.Plan, r.stats.Scanned, r.stats.Far = PlanGraph, st.Distances, st.Far
	if st.Stopped {
		r.stats.Plan = PlanFarExact
		sc, m := s.exactScan(q, bm, p, uint8(gi+1), &r.top)
		r.stats.Scanned += sc
		r.stats.Matched = m
		return r
	}
	for _, h := range res {
		row := vg.nodeRow[h.Node]
		r.top.offer(s.items[row], vg.score(q, h))
	}
	if len(res) < k && uint64(len(res)) < bm.GetCardinality() {
		// Fewer than k found while more may pass: scan exactly.
		r.stats.Plan = PlanGraphExact
		r.top = topK{k: k}
		sc, m := s.exactScan(q, bm, p, uint8(gi+1), &r.top)
		r.stats.Scanned += sc
		r.stats.Matched = m
	}
	return r
}

// seeds picks up to n rows of bm evenly, that pass and have a node in the
// graph, as extra entry points.
func (p *pred) seeds(bm *roaring.Bitmap, g uint8, n int) []uint32 {
	card := bm.GetCardinality()
	var out []uint32
	for i := range uint64(n) {
		row, err := bm.Select(uint32((2*i + 1) * card / uint64(2*n)))
		if err == nil && p.s.rowG[row] == g && p.match(row) {
			out = append(out, p.s.rowNode[row])
		}
	}
	return out
}

// score is the cosine of q and a graph result: from the float32 vector if
// the graph keeps it, else from the result's distance (the codes').
func (vg *vgraph) score(q []float32, h hnsw.Result) float64 {
	if v := vg.g.Vector(h.Node); v != nil {
		return float64(vec.Dot(q, v))
	}
	return float64(1 - h.Dist)
}

// exactScan scores every row of bm that has a vector in graph g and passes
// p; it returns how many rows it looked at and how many passed.
func (s *shard) exactScan(q []float32, bm *roaring.Bitmap, p *pred, g uint8, top *topK) (scanned, matched int) {
	vg := s.graphs[g-1]
	if vg.g.Quantized() {
		return s.exactScanCodes(q, bm, p, g, top)
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
		// No Touch here: with float32 vectors (24 cache lines each, which
		// the hardware prefetcher streams) it measured slower
		// (BenchmarkExactScanLarge); with 6-line codes it helps.
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
func (ix *Index) popularShard(s *shard, k int, f *Filter, cf *compiled) shardResult {
	start := time.Now()
	r := shardResult{top: topK{k: k}, stats: PartitionStats{Plan: PlanNone}}
	defer func() { r.stats.Took = time.Since(start) }()
	s.mu.RLock()
	defer s.mu.RUnlock()
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
// its codes; with floats kept, the best Rescore·k are rescored with them.
func (s *shard) exactScanCodes(q []float32, bm *roaring.Bitmap, p *pred, g uint8, top *topK) (scanned, matched int) {
	vg := s.graphs[g-1]
	var pq hnsw.Query
	vg.g.Prepare(q, &pq)
	floats := vg.g.HasFloats()
	best := nearest{n: top.k * s.opts.Rescore}
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
			best.offer(hnsw.Result{Node: nodes[i], Dist: d})
		}
	}
	for _, h := range best.h {
		top.offer(s.items[vg.nodeRow[h.Node]], vg.score(q, h))
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
