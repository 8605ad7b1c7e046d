package hnsw

import "slices"

// Filter decides which nodes a search may return. Allowed is called for
// live nodes only, at most once per node and search in Expand mode (twice in
// RouteThrough mode).
type Filter interface {
	Allowed(node uint32) bool
}

// Mode is how a filtered search treats a neighbour that fails the filter.
type Mode int

const (
	// RouteThrough scores it and keeps it as a candidate to route through,
	// but never returns it (hnswlib's filtered search). Cheap when most
	// nodes pass.
	RouteThrough Mode = iota
	// Expand (ACORN-1) does not score it but looks at its own neighbours
	// and takes those that pass: the search moves over the subgraph of
	// passing nodes and their two-hop links. For restrictive filters.
	Expand
)

// Params configures one search.
type Params struct {
	K, Ef  int    // results wanted; candidate list size (at least K)
	Filter Filter // nil: every live node
	Mode   Mode
	// Seeds are extra level-0 entry points besides the one the upper levels
	// lead to, e.g. a few members of the filtered set, so that a filter
	// whose members lie far from the query is still reached.
	Seeds []uint32
	// FarEf, when larger than Ef, is the candidate list used instead if the
	// query's own neighbourhood holds almost none of the filtered set: of
	// the nodes within two hops of where the upper levels lead, a share
	// below FarBelow passes the filter. Such a query (a filter correlated
	// with the vectors, its members in clusters away from the query) has
	// nearest members that are nearly equidistant: a hard search that needs
	// a longer list.
	FarEf    int
	FarBelow float64
	// FarStopBelow: when the share is below this (lower) bound, return at
	// once with Stats.Far and Stats.Stopped set and no results (the caller
	// scans the filtered set exactly instead).
	FarStopBelow float64
	// UpperEf, when above 1, searches level 1 with a candidate list of
	// this many instead of walking it greedily, and starts level 0 from
	// all of them: entry points in the several clusters near the query
	// rather than in the one a greedy walk ends in (on clustered data at
	// 1M nodes the single entry point strands the search in a
	// neighbouring cluster).
	UpperEf int
	// ScanSeeds, when positive, also starts level 0 from the ScanSeeds
	// nodes nearest the query among every node of the lowest upper level
	// holding at most ScanLimit nodes (scored exhaustively; see
	// UpperNodes): a coarse exact pass over an even sample of the graph.
	// For a query whose nearest nodes lie in clusters away from it (a
	// filter correlated with the vectors, its sub-graph searched), a
	// descent from one entry point reaches one of those clusters; the
	// sample's nearest lie in the right ones.
	ScanSeeds, ScanLimit int
	// MinDistances keeps level 0's best-first search going until it has
	// scored this many nodes, past the point where no candidate beats
	// the list's furthest: every scored node stays a candidate, so the
	// search floods outwards from the entry points, nearest first. For a
	// set whose nearest members are nearly equidistant (spread over
	// clusters away from the query), where the list's bound stops a
	// search after a few thousand nodes with a tenth of them missed.
	MinDistances int
}

// Result is a returned node and its distance (1 − dot) to the query.
type Result struct {
	Node uint32
	Dist float32
}

// Stats counts a search's work.
type Stats struct {
	Distances int  // vectors compared with the query
	Visited   int  // nodes whose links were read
	Far       bool // the query was judged far from the filtered set
	Stopped   bool // ... and the search stopped (FarStopBelow)
	// Scanned is how many upper-level nodes the ScanSeeds pass scored
	// (included in Distances).
	Scanned int
}

// prefetch reads one float of every cache line of the batch's vectors
// before they are scored: the loads are independent, so the processor has
// many cache misses in flight at once instead of one vector's at a time
// (Go has no prefetch instruction; the sum keeps the loads alive).
func (g *Graph) prefetch(batch []uint32) float32 {
	if g.base != nil {
		return g.base.prefetchRefs(batch, g.ext)
	}
	return g.prefetchRefs(batch, nil)
}

// prefetchRefs is prefetch of the nodes ext[n] (n itself without ext).
func (g *Graph) prefetchRefs(batch []uint32, ext []uint32) float32 {
	var sum float32
	if g.quant {
		var isum int32
		for _, n := range batch {
			if ext != nil {
				n = ext[n]
			}
			c := g.code(n)
			for i := 0; i < len(c); i += 64 {
				isum += int32(c[i])
			}
		}
		return float32(isum)
	}
	for _, n := range batch {
		if ext != nil {
			n = ext[n]
		}
		v := g.Vector(n)
		for i := 0; i < len(v); i += 16 {
			sum += v[i]
		}
	}
	return sum
}

// Touch reads one value of every cache line of the nodes' stored vectors
// (codes if quantized) and returns their sum: a caller about to score a
// batch of nodes one by one (an exact scan) calls it first, so the batch's
// cache misses are in flight together instead of one node's at a time.
// A no-op with Config.NoPrefetch.
func (g *Graph) Touch(nodes []uint32) float32 {
	if !g.touch {
		return 0
	}
	return g.prefetch(nodes)
}

// localShare is the share of the level-0 nodes within two hops of ep (ep's
// links and the links of its first 4) that pass f.
func (g *Graph) localShare(ep uint32, f Filter) float64 {
	n, pass := 0, 0
	count := func(x uint32) {
		n++
		if g.ok(x, f, noNode) {
			pass++
		}
	}
	l1 := g.links(ep, 0)
	for i, x := range l1 {
		count(x)
		if i < 4 {
			for _, y := range g.links(x, 0) {
				count(y)
			}
		}
	}
	if n == 0 {
		return 1
	}
	return float64(pass) / float64(n)
}

func (g *Graph) ok(n uint32, f Filter, exclude uint32) bool {
	if n == exclude || g.deleted[n>>6]&(1<<(n&63)) != 0 {
		return false
	}
	return f == nil || f.Allowed(n)
}

const noNode = ^uint32(0)

// Search returns up to K nodes nearest to q (len Dim, unit length) among the
// live nodes that pass p.Filter, nearest first, appended to out. In a
// quantized graph the distances are those of the codes (approximate).
func (g *Graph) Search(q []float32, p Params, out []Result) ([]Result, Stats) {
	var st Stats
	if g.top < 0 || len(q) != g.dim || p.K <= 0 {
		return out, st
	}
	ef := max(p.Ef, p.K)
	s := g.getScratch()
	defer g.putScratch(s)
	var qq query
	qq, s.qcodes = g.makeQuery(q, s.qcodes)
	ep, epd := g.entry, g.dist(&qq, g.entry)
	st.Distances++
	for l := g.top; l > 1; l-- {
		ep, epd = g.greedy(&qq, ep, epd, l, &st)
	}
	// Extra level-0 entry points: level 1's list (UpperEf) and the
	// upper-level scan's nearest (ScanSeeds), with their distances.
	var entries []cand
	if g.top >= 1 {
		if p.UpperEf > 1 {
			s.seed(g, cand{epd, ep}, p.UpperEf, nil, noNode)
			g.searchLayer(&qq, s, p.UpperEf, 1, noNode, nil, RouteThrough, &st)
			entries = append(s.entries[:0], s.sortedResults()...)
			if len(entries) > 0 { // none if level 1 met only tombstones
				ep, epd = entries[0].id, entries[0].d
				entries = entries[1:]
			}
			s.nextGen() // level 0 starts with nothing visited
			s.cands = s.cands[:0]
		} else {
			ep, epd = g.greedy(&qq, ep, epd, 1, &st)
		}
	}
	if p.ScanSeeds > 0 {
		entries = g.scanSeeds(&qq, s, p.ScanSeeds, p.ScanLimit, entries, &st)
	}
	if (p.FarEf > ef || p.FarStopBelow > 0) && p.Filter != nil {
		share := g.localShare(ep, p.Filter)
		if share < p.FarStopBelow {
			st.Far, st.Stopped = true, true
			return out, st
		}
		if share < p.FarBelow {
			st.Far = true
			ef = max(ef, p.FarEf)
		}
	}
	s.seed(g, cand{epd, ep}, ef, p.Filter, noNode)
	for _, c := range entries {
		if s.visited[c.id] != s.gen {
			s.seed(g, c, ef, p.Filter, noNode)
		}
	}
	s.entries = entries[:0]
	for _, sd := range p.Seeds {
		if int(sd) < g.nodes && s.visited[sd] != s.gen {
			st.Distances++
			s.seed(g, cand{g.dist(&qq, sd), sd}, ef, p.Filter, noNode)
		}
	}
	s.minDist = p.MinDistances
	g.searchLayer(&qq, s, ef, 0, noNode, p.Filter, p.Mode, &st)
	s.minDist = 0
	res := s.sortedResults()
	for i := 0; i < len(res) && i < p.K; i++ {
		out = append(out, Result{Node: res[i].id, Dist: res[i].d})
	}
	return out, st
}

// Share descends the upper levels towards q (len Dim) as Search does and
// returns the share of the level-0 nodes within two hops of where it
// lands that pass f: how much of a filtered set lies near the query (see
// Params.FarBelow). 1 for an empty graph.
func (g *Graph) Share(q []float32, f Filter) float64 {
	if g.top < 0 || len(q) != g.dim {
		return 1
	}
	s := g.getScratch()
	defer g.putScratch(s)
	var qq query
	qq, s.qcodes = g.makeQuery(q, s.qcodes)
	var st Stats
	ep, epd := g.entry, g.dist(&qq, g.entry)
	for l := g.top; l > 0; l-- {
		ep, epd = g.greedy(&qq, ep, epd, l, &st)
	}
	return g.localShare(ep, f)
}

// scanSeeds scores every live node of the lowest upper level with at most
// limit nodes and appends the n nearest q to out (in no order).
func (g *Graph) scanSeeds(q *query, s *scratch, n, limit int, out []cand, st *Stats) []cand {
	nodes := g.UpperNodes(limit)
	best := s.best[:0]
	for i := 0; i < len(nodes); i += 64 {
		batch := nodes[i:min(i+64, len(nodes))]
		if g.touch {
			s.sink += g.prefetch(batch)
		}
		for _, x := range batch {
			if g.Deleted(x) {
				continue
			}
			d := g.dist(q, x)
			if len(best) < n || d < best[0].d {
				best.push(cand{d, x})
				if len(best) > n {
					best.pop()
				}
			}
		}
		st.Distances += len(batch)
		st.Scanned += len(batch)
	}
	s.best = best
	return append(out, best...)
}

// UpperNodes returns the nodes of the lowest upper level (1 and up) that
// holds at most limit nodes (nodes at that level or above; nil if every
// upper level holds more, or the graph has none). The lists are computed
// once per Version. The result is shared: read only.
func (g *Graph) UpperNodes(limit int) []uint32 {
	g.lvMu.Lock()
	defer g.lvMu.Unlock()
	if g.lv == nil || g.lvVersion != g.version {
		g.lv = nil
		for n := range uint32(g.nodes) {
			for l := 1; l <= int(g.levels[n]); l++ {
				for len(g.lv) < l {
					g.lv = append(g.lv, nil)
				}
				g.lv[l-1] = append(g.lv[l-1], n)
			}
		}
		g.lvVersion = g.version
	}
	for _, nodes := range g.lv {
		if len(nodes) <= limit {
			return nodes
		}
	}
	return nil
}

// seed marks c visited and adds it as a candidate (and a result if it may be
// returned).
func (s *scratch) seed(g *Graph, c cand, ef int, f Filter, exclude uint32) {
	s.visit(c.id)
	s.cands.push(c)
	if g.ok(c.id, f, exclude) {
		s.res.push(c)
		if len(s.res) > ef {
			s.res.pop()
		}
	}
}

// sortedResults empties the result heap into s.sorted, nearest first.
func (s *scratch) sortedResults() []cand {
	s.sorted = append(s.sorted[:0], s.res...)
	slices.SortFunc(s.sorted, func(a, b cand) int {
		switch {
		case a.d < b.d:
			return -1
		case a.d > b.d:
			return 1
		}
		return int(a.id) - int(b.id)
	})
	s.res = s.res[:0]
	return s.sorted
}

// greedy walks level l towards q from ep and returns the nearest node found.
func (g *Graph) greedy(q *query, ep uint32, epd float32, l int, st *Stats) (uint32, float32) {
	for changed := true; changed; {
		changed = false
		for _, n := range g.links(ep, l) {
			st.Distances++
			if d := g.dist(q, n); d < epd {
				ep, epd, changed = n, d, true
			}
		}
	}
	return ep, epd
}

// searchLayer is the best-first search of one level from the candidates
// already in s; s.res ends holding up to ef nodes that pass the filter.
func (g *Graph) searchLayer(q *query, s *scratch, ef, level int, exclude uint32, f Filter, mode Mode, st *Stats) {
	for len(s.cands) > 0 {
		c := s.cands.pop()
		if len(s.res) >= ef && c.d > s.res[0].d && st.Distances >= s.minDist {
			break
		}
		st.Visited++
		batch := s.batch[:0]
		for _, n := range g.links(c.id, level) {
			if !s.visit(n) {
				continue
			}
			if g.ok(n, f, exclude) || mode == RouteThrough {
				batch = append(batch, n)
				continue
			}
			// Expand: n fails; take its neighbours that pass instead.
			for _, nn := range g.links(n, level) {
				if len(batch) >= g.m0 {
					break
				}
				if s.visited[nn] != s.gen && g.ok(nn, f, exclude) {
					s.visit(nn)
					batch = append(batch, nn)
				}
			}
		}
		s.batch = batch
		if g.touch {
			s.sink += g.prefetch(batch)
		}
		for _, n := range batch {
			d := g.dist(q, n)
			st.Distances++
			if len(s.res) < ef || d < s.res[0].d {
				s.cands.push(cand{d, n})
				if mode == Expand || g.ok(n, f, exclude) {
					s.res.push(cand{d, n})
					if len(s.res) > ef {
						s.res.pop()
					}
				}
			} else if st.Distances < s.minDist {
				s.cands.push(cand{d, n}) // flooding (Params.MinDistances)
			}
		}
	}
}
