package hnsw

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestUpperNodes: the list is the nodes of the lowest upper level with at
// most limit of them, and follows the graph's changes.
func TestUpperNodes(t *testing.T) {
	vs := clustered(3000, 16, 10, 5)
	g := build(t, vs)
	check := func() {
		t.Helper()
		counts := map[int]int{}
		for n := range uint32(g.Nodes()) {
			for l := 1; l <= int(g.levels[n]); l++ {
				counts[l]++
			}
		}
		for _, limit := range []int{1, 10, 50, 200, 1000, 5000} {
			got := g.UpperNodes(limit)
			want := -1 // the level expected
			for l := 1; counts[l] > 0; l++ {
				if counts[l] <= limit {
					want = l
					break
				}
			}
			if want < 0 {
				if got != nil {
					t.Fatalf("limit %d: %d nodes, want none", limit, len(got))
				}
				continue
			}
			if len(got) != counts[want] {
				t.Fatalf("limit %d: %d nodes, want level %d's %d", limit, len(got), want, counts[want])
			}
			for _, n := range got {
				if int(g.levels[n]) < want {
					t.Fatalf("limit %d: node %d of level %d in level %d's list", limit, n, g.levels[n], want)
				}
			}
		}
	}
	check()
	before := len(g.UpperNodes(1 << 30))
	for _, v := range clustered(500, 16, 10, 6) {
		g.Add(v)
	}
	check()
	if after := len(g.UpperNodes(1 << 30)); after <= before {
		t.Fatalf("level 1 list %d nodes after 500 adds, %d before", after, before)
	}
}

// TestScanSeedsFindAFarSubGraphsNearest: a sub-graph over a few clusters
// searched with queries from the other clusters (a filter correlated with
// the vectors, its set away from the query): seeds from the scan of its
// upper levels find its nearest members at a short list, and the scan
// scores exactly that level's nodes.
func TestScanSeedsFindAFarSubGraphsNearest(t *testing.T) {
	const dim, clusters = 32, 40
	rng := rand.New(rand.NewPCG(7, 7))
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = unit(randVec(rng, dim, 1))
	}
	draw := func(c int) []float32 {
		v := randVec(rng, dim, 0.1)
		for j := range v {
			v[j] += centres[c][j]
		}
		return unit(v)
	}
	// Members: the nodes of clusters 0–3; queries from the others.
	type node struct {
		v       []float32
		cluster int
	}
	var nodes []node
	for i := range 8000 {
		c := i % clusters
		nodes = append(nodes, node{draw(c), c})
	}
	var queries [][]float32
	for i := range 60 {
		queries = append(queries, draw(4+i%(clusters-4)))
	}
	for _, quant := range []bool{false, true} {
		base := New(dim, Config{Seed: 1, Quantize: quant})
		sub := NewSub(base, Config{Seed: 2})
		member := map[uint32]bool{}
		for _, x := range nodes {
			n := base.Add(x.v)
			if x.cluster < 4 {
				member[n] = true
				sub.AddRef(n)
			}
		}
		if len(member) < 200 || len(member) > 3000 {
			t.Fatalf("%d members", len(member))
		}
		in := func(n uint32) bool { return member[n] }
		limit := 64
		var plain, seeded float64
		for _, q := range queries {
			want := exact(base, q, 10, in)
			res, _ := sub.Search(q, Params{K: 10, Ef: 24}, nil)
			toRefs(sub, res)
			plain += recall(res, want)
			res, st := sub.Search(q, Params{K: 10, Ef: 24, ScanSeeds: 8, ScanLimit: limit}, nil)
			toRefs(sub, res)
			seeded += recall(res, want)
			if n := len(sub.UpperNodes(limit)); st.Scanned != n || n == 0 {
				t.Fatalf("scanned %d upper-level nodes of %d", st.Scanned, n)
			}
			for i := 1; i < len(res); i++ {
				if res[i].Dist < res[i-1].Dist {
					t.Fatalf("results out of order: %v", res)
				}
			}
		}
		plain /= float64(len(queries))
		seeded /= float64(len(queries))
		// Flooding a third of the members past the list's bound.
		var flooded float64
		for _, q := range queries {
			res, st := sub.Search(q, Params{K: 10, Ef: 24, ScanSeeds: 8, ScanLimit: limit, MinDistances: len(member) / 3}, nil)
			if st.Distances < len(member)/3 {
				t.Fatalf("flooding scored %d nodes, want at least %d", st.Distances, len(member)/3)
			}
			toRefs(sub, res)
			flooded += recall(res, exact(base, q, 10, in))
		}
		flooded /= float64(len(queries))
		t.Logf("quantized %v: %d members, recall@10 plain %.3f, scan seeds %.3f, flooding a third %.3f", quant, len(member), plain, seeded, flooded)
		if seeded < 0.85 || seeded < plain {
			t.Errorf("quantized %v: recall with scan seeds %.3f (plain %.3f)", quant, seeded, plain)
		}
		if flooded < 0.9 || flooded < seeded {
			t.Errorf("quantized %v: recall flooding a third %.3f (scan seeds %.3f)", quant, flooded, seeded)
		}
		// Flooding without a bound scores every member: the exact answer
		// (by the codes' distances when quantized).
		for _, q := range queries[:10] {
			res, _ := sub.Search(q, Params{K: 10, Ef: 24, MinDistances: 1 << 30}, nil)
			toRefs(sub, res)
			want := exact(base, q, 10, in)
			if quant {
				want = exactCodes(base, q, 10, in)
			}
			if r := recall(res, want); r < 1 {
				t.Fatalf("quantized %v: unbounded flood recall %.2f", quant, r)
			}
		}
	}
}

// TestUpperEf: starting level 0 from level 1's list returns valid nodes,
// nearest first, with recall at least that of the greedy walk.
func TestUpperEf(t *testing.T) {
	vs := clustered(6000, 32, 60, 10)
	g := build(t, vs)
	queries := clustered(60, 32, 60, 11)
	greedy := meanRecall(g, queries, 10, Params{Ef: 12}, nil)
	wide := meanRecall(g, queries, 10, Params{Ef: 12, UpperEf: 16}, nil)
	t.Logf("recall@10 at ef 12: greedy level 1 %.3f, level 1 list of 16 %.3f", greedy, wide)
	if wide < greedy || wide < 0.6 {
		t.Errorf("recall with UpperEf %.3f, greedy %.3f", wide, greedy)
	}
	res, _ := g.Search(queries[0], Params{K: 10, Ef: 12, UpperEf: 16}, nil)
	if !slices.IsSortedFunc(res, func(a, b Result) int {
		return cmpF(a.Dist, b.Dist)
	}) || len(res) != 10 {
		t.Fatalf("results: %v", res)
	}
}

func cmpF(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// toRefs turns a sub-graph's results into its base's nodes.
func toRefs(g *Graph, res []Result) {
	for i := range res {
		res[i].Node = g.Ref(res[i].Node)
	}
}

// exactCodes is exact by the codes' distances (as a quantized search
// computes them).
func exactCodes(g *Graph, q []float32, k int, allowed func(uint32) bool) []uint32 {
	var pq Query
	g.Prepare(q, &pq)
	var cs []cand
	for n := range uint32(g.Nodes()) {
		if !g.Deleted(n) && allowed(n) {
			cs = append(cs, cand{g.QueryDist(&pq, n), n})
		}
	}
	slices.SortFunc(cs, byDist)
	var ids []uint32
	for i := 0; i < k && i < len(cs); i++ {
		ids = append(ids, cs[i].id)
	}
	return ids
}

// TestUpperEfAllDeleted: with every node but one deleted, level 1's list
// holds no live node; the search still starts from the entry point.
func TestUpperEfAllDeleted(t *testing.T) {
	vs := clustered(400, 16, 4, 12)
	g := build(t, vs)
	for n := range uint32(len(vs) - 1) {
		g.Delete(n)
	}
	last := uint32(len(vs) - 1)
	res, _ := g.Search(vs[0], Params{K: 5, Ef: 8, UpperEf: 8, ScanSeeds: 4, ScanLimit: 100}, nil)
	if len(res) != 1 || res[0].Node != last {
		t.Fatalf("results %v, want the one live node %d", res, last)
	}
}
