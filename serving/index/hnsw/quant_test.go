package hnsw

import (
	"slices"
	"testing"

	"github.com/livefeed/livefeed/serving/index/vec"
)

// exactFloat is the float32 truth, independent of the graph's storage.
func exactFloat(vs [][]float32, q []float32, k int, alive func(uint32) bool) []uint32 {
	var cs []cand
	for i, v := range vs {
		if alive == nil || alive(uint32(i)) {
			cs = append(cs, cand{1 - vec.Dot(q, v), uint32(i)})
		}
	}
	slices.SortFunc(cs, byDist)
	var ids []uint32
	for i := 0; i < k && i < len(cs); i++ {
		ids = append(ids, cs[i].id)
	}
	return ids
}

// rescored asks the graph for k·factor nodes and keeps the k nearest by the
// float32 vectors, as serving/index does.
func rescored(g *Graph, vs [][]float32, q []float32, k, factor int, p Params) []Result {
	p.K, p.Ef = k*factor, max(p.Ef, k*factor)
	got, _ := g.Search(q, p, nil)
	for i := range got {
		got[i].Dist = 1 - vec.Dot(q, vs[got[i].Node])
	}
	slices.SortFunc(got, func(a, b Result) int {
		return byDist(cand{a.Dist, a.Node}, cand{b.Dist, b.Node})
	})
	return got[:min(k, len(got))]
}

func TestQuantizedRecall(t *testing.T) {
	vs := clustered(3000, 64, 20, 7)
	queries := clustered(40, 64, 20, 8)
	// The float32 graph on the same data is the bar (this data is hard at
	// small ef: 0.93 at 64 for both).
	const ef = 160
	fg := New(64, Config{Seed: 42})
	for _, v := range vs {
		fg.Add(v)
	}
	var base float64
	for _, q := range queries {
		got, _ := fg.Search(q, Params{K: 10, Ef: ef}, nil)
		base += recall(got, exactFloat(vs, q, 10, nil))
	}
	base /= float64(len(queries))
	for _, drop := range []bool{false, true} {
		g := New(64, Config{Seed: 42, Quantize: true, DropFloats: drop})
		for _, v := range vs {
			g.Add(v)
		}
		if !g.Quantized() || g.HasFloats() == drop {
			t.Fatalf("drop=%v: Quantized %v HasFloats %v", drop, g.Quantized(), g.HasFloats())
		}
		if drop && g.Vector(0) != nil {
			t.Fatal("DropFloats graph returned a float vector")
		}
		trav, resc := g.VectorBytes()
		if trav < 3000*64 || trav > 3000*64*2 || (resc == 0) == !drop {
			t.Errorf("drop=%v: VectorBytes %d, %d", drop, trav, resc)
		}
		var plain, withRescore float64
		for _, q := range queries {
			want := exactFloat(vs, q, 10, nil)
			got, _ := g.Search(q, Params{K: 10, Ef: ef}, nil)
			plain += recall(got, want)
			withRescore += recall(rescored(g, vs, q, 10, 4, Params{Ef: ef}), want)
		}
		plain /= float64(len(queries))
		withRescore /= float64(len(queries))
		t.Logf("drop=%v: recall@10 float graph %.3f, on codes %.3f, codes rescored from 40 %.3f", drop, base, plain, withRescore)
		if plain < base-0.05 {
			t.Errorf("drop=%v: recall on codes %.3f vs float graph %.3f", drop, plain, base)
		}
		if withRescore < base-0.01 || withRescore < 0.97 {
			t.Errorf("drop=%v: rescored recall %.3f vs float graph %.3f", drop, withRescore, base)
		}
	}
}

func TestQuantizedUpdateDeleteSame(t *testing.T) {
	vs := clustered(1500, 48, 10, 9)
	g := New(48, Config{Seed: 1, Quantize: true, DropFloats: true})
	for _, v := range vs {
		g.Add(v)
	}
	if !g.Same(5, vs[5]) || g.Same(5, vs[6]) || g.Same(5, vs[5][:10]) {
		t.Fatal("Same on codes is wrong")
	}
	// Move node 5 onto the far side; it must be found there.
	moved := negate(vs[5])
	g.Update(5, moved)
	if !g.Same(5, moved) {
		t.Fatal("update did not store the codes")
	}
	got, _ := g.Search(moved, Params{K: 1, Ef: 64}, nil)
	if len(got) != 1 || got[0].Node != 5 {
		t.Fatalf("moved node not found first: %v", got)
	}
	// Delete every third node: never returned, and the slot is reused.
	dead := func(n uint32) bool { return n%3 == 0 }
	for n := range uint32(len(vs)) {
		if dead(n) {
			g.Delete(n)
		}
	}
	vs[5] = moved
	var r float64
	for _, q := range vs[:60] {
		res, _ := g.Search(q, Params{K: 10, Ef: 64}, nil)
		for _, x := range res {
			if dead(x.Node) {
				t.Fatalf("deleted node %d returned", x.Node)
			}
		}
		r += recall(res, exactFloat(vs, q, 10, func(n uint32) bool { return !dead(n) }))
	}
	if r /= 60; r < 0.85 {
		t.Errorf("recall on codes after deletes %.3f", r)
	}
	if n := g.Add(vs[0]); !dead(n) {
		t.Errorf("Add did not reuse a tombstone: node %d", n)
	}
}
