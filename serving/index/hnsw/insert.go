package hnsw

import (
	"slices"
)

func byDist(a, b cand) int {
	switch {
	case a.d < b.d:
		return -1
	case a.d > b.d:
		return 1
	}
	return int(a.id) - int(b.id)
}

// next starts a new visit generation (one per level searched).
func (s *scratch) next() {
	s.gen++
	if s.gen == 0 {
		clear(s.visited)
		s.gen = 1
	}
	s.cands, s.res = s.cands[:0], s.res[:0]
}

// connect links node (its vector already stored, levels 0..level) into the
// graph: on each level the efConstruction nearest live nodes are found, the
// heuristic picks up to M of them, and links are made both ways.
func (g *Graph) connect(node uint32, level int) {
	if g.Live() == 1 {
		// The only live node: it becomes the entry point; tombstones
		// before it are left unreachable until their slots are reused.
		for l := 0; l <= level; l++ {
			g.setLinks(node, l, nil)
		}
		g.entry, g.top = node, level
		return
	}
	q := g.nodeQuery(node)
	s := g.getScratch()
	defer g.putScratch(s)
	var st Stats
	ep := g.entry
	epd := g.dist(&q, ep)
	for l := g.top; l > level; l-- {
		ep, epd = g.greedy(&q, ep, epd, l, &st)
	}
	for l := level; l > g.top; l-- {
		g.setLinks(node, l, nil)
	}
	for l := min(level, g.top); l >= 0; l-- {
		s.next()
		s.seed(g, cand{epd, ep}, g.efC, nil, node)
		g.searchLayer(&q, s, g.efC, l, node, nil, RouteThrough, &st)
		found := s.sortedResults()
		if len(found) == 0 {
			g.setLinks(node, l, nil)
			continue
		}
		ep, epd = found[0].id, found[0].d
		s.ids = append(s.ids[:0], g.selectNeighbors(found, g.m, s)...)
		g.setLinks(node, l, s.ids)
		for _, nb := range s.ids {
			g.addLink(nb, node, l, s)
		}
	}
	if level > g.top {
		g.entry, g.top = node, level
	}
}

// selectNeighbors is HNSW's heuristic: walking the candidates nearest first,
// keep one only if it is nearer to the base than to every one kept, up to
// m. cands must be sorted by distance to the base.
func (g *Graph) selectNeighbors(cands []cand, m int, s *scratch) []uint32 {
	sel := s.sel[:0]
	for _, c := range cands {
		if len(sel) >= m {
			break
		}
		cq := g.nodeQuery(c.id)
		good := true
		for _, r := range sel {
			if g.dist(&cq, r) < c.d {
				good = false
				break
			}
		}
		if good {
			sel = append(sel, c.id)
		}
	}
	s.sel = sel
	return sel
}

// addLink adds node to nb's links on level l; a full list is re-selected
// with the heuristic over its links plus node.
func (g *Graph) addLink(nb, node uint32, l int, s *scratch) {
	ls := g.links(nb, l)
	if slices.Contains(ls, node) {
		return
	}
	if len(ls) < g.maxLinks(l) {
		// Room: append in place (the slot has capacity maxLinks).
		full := ls[:len(ls)+1]
		full[len(ls)] = node
		g.setCount(nb, l, len(ls)+1)
		return
	}
	base := g.nodeQuery(nb)
	tmp := s.tmp[:0]
	for _, x := range ls {
		tmp = append(tmp, cand{g.dist(&base, x), x})
	}
	tmp = append(tmp, cand{g.dist(&base, node), node})
	slices.SortFunc(tmp, byDist)
	s.tmp = tmp
	g.setLinks(nb, l, g.selectNeighbors(tmp, g.maxLinks(l), s))
}

func (g *Graph) setCount(node uint32, level, n int) {
	if level == 0 {
		g.links0[int(node)*(g.m0+1)] = uint32(n)
		return
	}
	g.upper[node][(level-1)*(g.m+1)] = uint32(n)
}

// unlink removes node from the links of its neighbours on every level of
// node; each such neighbour re-selects its links from its remaining ones
// and node's, so the neighbourhood stays connected. node keeps its own
// links (it may still be reached through links that were not mutual).
func (g *Graph) unlink(node uint32) {
	s := g.getScratch()
	defer g.putScratch(s)
	for l := 0; l <= int(g.levels[node]); l++ {
		s.ids = append(s.ids[:0], g.links(node, l)...)
		for _, n := range s.ids {
			if g.Deleted(n) {
				continue
			}
			ln := g.links(n, l)
			if !slices.Contains(ln, node) {
				continue
			}
			s.next()
			s.visit(n)
			s.visit(node)
			base := g.nodeQuery(n)
			tmp := s.tmp[:0]
			for _, x := range ln {
				if s.visit(x) {
					tmp = append(tmp, cand{g.dist(&base, x), x})
				}
			}
			for _, x := range s.ids {
				if !g.Deleted(x) && s.visit(x) {
					tmp = append(tmp, cand{g.dist(&base, x), x})
				}
			}
			slices.SortFunc(tmp, byDist)
			s.tmp = tmp
			g.setLinks(n, l, g.selectNeighbors(tmp, g.maxLinks(l), s))
		}
	}
}
