package hnsw

import (
	"bytes"
	"slices"
	"testing"

	"github.com/livefeed/livefeed/serving/index/internal/binio"
)

// TestSubGraph: a sub-graph over a fifth of a graph's nodes finds their
// nearest as an exact search of that fifth does, follows the base's
// updates and deletes through Relink and Delete, and survives a snapshot.
func TestSubGraph(t *testing.T) {
	const dim = 32
	vs := clustered(2000, dim, 10, 4)
	for _, quant := range []bool{false, true} {
		base := New(dim, Config{Seed: 1, Quantize: quant})
		sub := NewSub(base, Config{Seed: 2})
		subOf := map[uint32]uint32{} // base node → sub node
		for i, v := range vs {
			n := base.Add(v)
			if i%5 == 0 {
				subOf[n] = sub.AddRef(n)
			}
		}
		member := func(n uint32) bool { _, ok := subOf[n]; return ok }
		check := func(what string) {
			t.Helper()
			var r float64
			for _, q := range vs[:50] {
				res, _ := sub.Search(q, Params{K: 10, Ef: 64}, nil)
				got := make([]Result, len(res))
				for i, x := range res {
					got[i] = Result{Node: sub.Ref(x.Node), Dist: x.Dist}
					if !member(got[i].Node) {
						t.Fatalf("%s: node %d is not in the sub-graph", what, got[i].Node)
					}
				}
				r += recall(got, exactFloat(vs, q, 10, member))
			}
			if r /= 50; r < 0.95 {
				t.Errorf("quantized %v, %s: recall %.3f", quant, what, r)
			}
		}
		check("built")
		// Move 20 members, delete 20 (sub first, as its owner must).
		for i := 0; i < 200; i += 10 {
			n := uint32(i)
			vs[n] = negate(vs[n])
			base.Update(n, vs[n])
			sub.Relink(subOf[n])
			d := uint32(i + 5)
			sub.Delete(subOf[d])
			delete(subOf, d)
			base.Delete(d)
		}
		check("after moves and deletes")
		var b bytes.Buffer
		w := binio.NewWriter(&b)
		base.WriteTo(w)
		sub.WriteTo(w)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r := binio.NewReader(bytes.NewReader(b.Bytes()))
		rb, err := ReadGraph(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ReadGraphWith(binio.NewReader(bytes.NewReader(b.Bytes())), ReadOptions{Base: rb}); err == nil {
			t.Fatal("a graph read as a sub-graph")
		}
		rs, err := ReadGraphWith(r, ReadOptions{Base: rb})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range vs[:20] {
			a, _ := sub.Search(q, Params{K: 10, Ef: 64}, nil)
			c, _ := rs.Search(q, Params{K: 10, Ef: 64}, nil)
			if !slices.Equal(a, c) {
				t.Fatalf("restored sub-graph answers differently:\n%v\n%v", a, c)
			}
		}
	}
}
