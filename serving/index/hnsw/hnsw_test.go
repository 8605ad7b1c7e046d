package hnsw

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/livefeed/livefeed/serving/index/vec"
)

// clustered returns n unit vectors around `clusters` random centres.
func clustered(n, dim, clusters int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	centres := make([][]float32, clusters)
	for i := range centres {
		centres[i] = unit(randVec(rng, dim, 1))
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[rng.IntN(clusters)]
		v := randVec(rng, dim, 0.35)
		for j := range v {
			v[j] += c[j]
		}
		out[i] = unit(v)
	}
	return out
}

func randVec(rng *rand.Rand, dim int, scale float64) []float32 {
	v := make([]float32, dim)
	for j := range v {
		v[j] = float32(rng.NormFloat64() * scale)
	}
	return v
}

func unit(v []float32) []float32 {
	n := float32(math.Sqrt(float64(vec.Dot8(v, v))))
	for i := range v {
		v[i] /= n
	}
	return v
}

type setFilter map[uint32]bool

func (f setFilter) Allowed(n uint32) bool { return f[n] }

// exact returns the k nearest allowed live nodes.
func exact(g *Graph, q []float32, k int, allowed func(uint32) bool) []uint32 {
	var cs []cand
	for n := range uint32(g.Nodes()) {
		if !g.Deleted(n) && (allowed == nil || allowed(n)) {
			cs = append(cs, cand{g.Dist(q, n), n})
		}
	}
	slices.SortFunc(cs, byDist)
	var ids []uint32
	for i := 0; i < k && i < len(cs); i++ {
		ids = append(ids, cs[i].id)
	}
	return ids
}

func recall(got []Result, want []uint32) float64 {
	if len(want) == 0 {
		return 1
	}
	hit := 0
	for _, r := range got {
		if slices.Contains(want, r.Node) {
			hit++
		}
	}
	return float64(hit) / float64(len(want))
}

func build(t testing.TB, vs [][]float32) *Graph {
	g := New(len(vs[0]), Config{Seed: 42})
	for i, v := range vs {
		if n := g.Add(v); int(n) != i {
			t.Fatalf("node %d for vector %d", n, i)
		}
	}
	return g
}

func meanRecall(g *Graph, queries [][]float32, k int, p Params, allowed func(uint32) bool) float64 {
	var sum float64
	for _, q := range queries {
		p.K = k
		got, _ := g.Search(q, p, nil)
		sum += recall(got, exact(g, q, k, allowed))
	}
	return sum / float64(len(queries))
}

func TestRecallUnfilteredAndFiltered(t *testing.T) {
	vs := clustered(2000, 32, 20, 1)
	g := build(t, vs)
	queries := clustered(30, 32, 20, 2)
	if r := meanRecall(g, queries, 10, Params{Ef: 64}, nil); r < 0.99 {
		t.Errorf("unfiltered recall %.3f", r)
	}
	for _, mod := range []int{2, 10, 30} {
		f := setFilter{}
		for n := range uint32(len(vs)) {
			if (n*2654435761)%uint32(mod) == 0 {
				f[n] = true
			}
		}
		for _, mode := range []Mode{RouteThrough, Expand} {
			if r := meanRecall(g, queries, 10, Params{Ef: 96, Filter: f, Mode: mode}, f.Allowed); r < 0.97 {
				t.Errorf("1/%d filter, mode %d: recall %.3f", mod, mode, r)
			}
		}
	}
}

func TestSeedsReachAFarFilteredSet(t *testing.T) {
	vs := clustered(2000, 32, 10, 3)
	g := build(t, vs)
	// Allowed: the 40 nodes furthest from the query, as a correlated
	// filter puts its members far from it.
	q := vs[0]
	far := exact(g, negate(q), 40, nil)
	f := setFilter{}
	for _, n := range far {
		f[n] = true
	}
	got, _ := g.Search(q, Params{K: 10, Ef: 64, Filter: f, Mode: Expand, Seeds: far[:4]}, nil)
	if r := recall(got, exact(g, q, 10, f.Allowed)); r < 0.9 {
		t.Fatalf("recall %.2f with seeds", r)
	}
	// The query's neighbourhood holds none of them: detected as far.
	got, st := g.Search(q, Params{K: 10, Ef: 16, Filter: f, Mode: Expand, FarBelow: 0.01, FarEf: 64}, nil)
	if !st.Far || len(got) == 0 {
		t.Fatalf("far: %v, %d results", st.Far, len(got))
	}
	if got, st = g.Search(q, Params{K: 10, Ef: 16, Filter: f, Mode: Expand, FarStopBelow: 0.01}, nil); !st.Stopped || len(got) != 0 {
		t.Fatalf("far stop: %v, %d results", st.Far, len(got))
	}
	// An unrestrictive filter is not far.
	all := setFilter{}
	for n := range uint32(len(vs)) {
		all[n] = true
	}
	if _, st = g.Search(q, Params{K: 10, Ef: 16, Filter: all, Mode: Expand, FarBelow: 0.5, FarStopBelow: 0.5}, nil); st.Far {
		t.Fatal("everything-passes filter judged far")
	}
}

func negate(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = -x
	}
	return out
}

func TestDeleteReuseAndUpdate(t *testing.T) {
	vs := clustered(2000, 32, 10, 4)
	g := build(t, vs)
	rng := rand.New(rand.NewPCG(5, 5))
	// Delete a third, including the entry point.
	deleted := map[uint32]bool{g.entry: true}
	g.Delete(g.entry)
	for len(deleted) < 700 {
		n := uint32(rng.IntN(len(vs)))
		g.Delete(n)
		deleted[n] = true
	}
	if g.Live() != len(vs)-700 {
		t.Fatalf("live %d", g.Live())
	}
	queries := clustered(25, 32, 10, 6)
	for _, q := range queries {
		got, _ := g.Search(q, Params{K: 10, Ef: 64}, nil)
		for _, r := range got {
			if deleted[r.Node] {
				t.Fatalf("deleted node %d returned", r.Node)
			}
		}
	}
	if r := meanRecall(g, queries, 10, Params{Ef: 64}, nil); r < 0.98 {
		t.Errorf("recall after deletes %.3f", r)
	}
	// New vectors reuse the slots.
	fresh := clustered(700, 32, 10, 7)
	for _, v := range fresh {
		if n := g.Add(v); int(n) >= len(vs) {
			t.Fatalf("slot %d not reused", n)
		}
	}
	if g.Nodes() != len(vs) || g.Live() != len(vs) {
		t.Fatalf("nodes %d live %d", g.Nodes(), g.Live())
	}
	// Move 200 vectors in place.
	for i := range 200 {
		g.Update(uint32(i*7), fresh[i])
	}
	if r := meanRecall(g, queries, 10, Params{Ef: 64}, nil); r < 0.98 {
		t.Errorf("recall after reuse and updates %.3f", r)
	}
	// A moved vector is found at its new place.
	got, _ := g.Search(fresh[3], Params{K: 1, Ef: 32}, nil)
	if len(got) == 0 || got[0].Dist > 1e-5 {
		t.Fatalf("updated vector not found: %v", got)
	}
}

func TestDeleteAllThenAdd(t *testing.T) {
	vs := clustered(50, 8, 3, 8)
	g := build(t, vs)
	for n := range uint32(50) {
		g.Delete(n)
	}
	if got, _ := g.Search(vs[0], Params{K: 5, Ef: 10}, nil); len(got) != 0 {
		t.Fatalf("got %v from an empty graph", got)
	}
	for _, v := range vs[:10] {
		g.Add(v)
	}
	got, _ := g.Search(vs[0], Params{K: 10, Ef: 20}, nil)
	if len(got) != 10 {
		t.Fatalf("%d results after re-adding 10", len(got))
	}
}

func TestDeterministicBuild(t *testing.T) {
	vs := clustered(500, 16, 5, 9)
	a, b := build(t, vs), build(t, vs)
	if !slices.Equal(a.links0, b.links0) || a.entry != b.entry {
		t.Fatal("same seed, different graphs")
	}
}
