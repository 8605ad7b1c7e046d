package hnsw

// cand is a node with its distance to the query.
type cand struct {
	d  float32
	id uint32
}

// minHeap pops the nearest candidate first.
type minHeap []cand

func (h *minHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].d <= s[i].d {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *minHeap) pop() cand {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s[r].d < s[l].d {
			l = r
		}
		if s[i].d <= s[l].d {
			break
		}
		s[i], s[l] = s[l], s[i]
		i = l
	}
	*h = s
	return top
}

// maxHeap keeps the furthest of the current results on top.
type maxHeap []cand

func (h *maxHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].d >= s[i].d {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *maxHeap) pop() cand {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && s[r].d > s[l].d {
			l = r
		}
		if s[i].d >= s[l].d {
			break
		}
		s[i], s[l] = s[l], s[i]
		i = l
	}
	*h = s
	return top
}

// scratch is one search's working memory, pooled per graph.
type scratch struct {
	visited []uint32 // node → generation that visited it
	gen     uint32
	cands   minHeap
	res     maxHeap
	sorted  []cand
	sel     []uint32
	tmp     []cand
	ids     []uint32
	batch   []uint32
	minDist int     // Params.MinDistances of the level-0 search
	entries []cand  // extra level-0 entry points
	best    maxHeap // scanSeeds' nearest
	qcodes  []int8  // the quantized query
	sink    float32 // prefetch's sums
}

func (g *Graph) getScratch() *scratch {
	s, _ := g.pool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	if len(s.visited) < g.nodes {
		s.visited = make([]uint32, g.nodes+g.nodes/4+64)
		s.gen = 0
	}
	s.nextGen()
	s.cands, s.res = s.cands[:0], s.res[:0]
	return s
}

// nextGen starts a new generation of visited marks: nothing is visited.
func (s *scratch) nextGen() {
	s.gen++
	if s.gen == 0 { // wrapped: clear
		clear(s.visited)
		s.gen = 1
	}
}

func (g *Graph) putScratch(s *scratch) { g.pool.Put(s) }

// visit marks node visited and reports whether it was new.
func (s *scratch) visit(node uint32) bool {
	if s.visited[node] == s.gen {
		return false
	}
	s.visited[node] = s.gen
	return true
}
