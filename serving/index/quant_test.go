package index

import (
	"fmt"
	"testing"
)

// TestQuantizedExactPlanEqualsBruteForce: an exact scan on the codes,
// rescored with the float32 vectors, ranks like brute force.
func TestQuantizedExactPlanEqualsBruteForce(t *testing.T) {
	items := randomItems(3000, 64, 1)
	ix := build(t, items, 8, Options{ExactThreshold: 1 << 30, Quantize: true})
	for qi := range 20 {
		q := items[qi*37].Vector
		for fi, f := range []*Filter{{}, {Categories: []string{"sneakers"}, Languages: []string{"es"}}} {
			hits, st := ix.Search(q, 20, f, now)
			want := bruteForce(items, q, 20, f, ix.feats)
			if st.Plan != PlanExact || len(hits) != len(want) {
				t.Fatalf("query %d filter %d: plan %q, %d hits, want %d", qi, fi, st.Plan, len(hits), len(want))
			}
			for j, h := range hits {
				if h.Item.ID != want[j] {
					t.Fatalf("query %d filter %d rank %d: %s, want %s", qi, fi, j, h.Item.ID, want[j])
				}
			}
		}
	}
}

// TestQuantizedRecallAtSelectivities: the cases of TestRecallAtSelectivities
// on a quantized index, rescored (floats kept) and on the codes alone.
func TestQuantizedRecallAtSelectivities(t *testing.T) {
	const n, dim, k = 6000, 64, 10
	items := clusteredItems(n, dim, 1)
	queries := clusteredItems(50, dim, 2)
	cases := []struct {
		name string
		f    *Filter
	}{
		{"100%", &Filter{}},
		{"50%", &Filter{Languages: []string{"es"}}},
		{"10%", &Filter{Ranges: []Range{{Field: AttrViewersNow, Min: f64(900)}}}},
		{"0.1%", &Filter{Ranges: []Range{{Field: AttrViewersNow, Min: f64(999)}}}},
		{"AND 5%", &Filter{Languages: []string{"en"}, Categories: []string{"cat-3"}}},
		{"correlated 10%", &Filter{Categories: []string{"cat-7"}}},
	}
	for _, mode := range []struct {
		name string
		opts Options
		min  float64
	}{
		{"float32", Options{EfSearch: 96}, 0.99},
		{"int8+rescore", Options{EfSearch: 96, Quantize: true}, 0.99},
		{"int8 only", Options{EfSearch: 96, Quantize: true, DropFloats: true}, 0.95},
		{"int8+rescore, floats on disk", Options{EfSearch: 96, Quantize: true, FloatsDir: t.TempDir()}, 0.99},
	} {
		ix := build(t, items, 4, mode.opts)
		trav, resc := ix.VectorBytes()
		t.Logf("%s: vector bytes traversed %d, rescoring %d", mode.name, trav, resc)
		// Traversed: float32 (4 bytes a dimension) or codes (1) + a scale;
		// rescoring: the float32 vectors kept beside codes. Capacities may
		// exceed lengths by append's growth (under 2×).
		perDim := 4
		if mode.opts.Quantize {
			perDim = 1
		}
		if lo := n * dim * perDim; trav < lo || trav > 2*lo+8*n {
			t.Errorf("%s: traversed vector bytes %d, want ~%d", mode.name, trav, lo)
		}
		if wantResc := mode.opts.Quantize && !mode.opts.DropFloats && mode.opts.FloatsDir == ""; (resc >= 4*n*dim) != wantResc || (resc == 0) == wantResc {
			t.Errorf("%s: rescoring vector bytes %d", mode.name, resc)
		}
		if file := ix.FloatFileBytes(); (file == n*dim*4) != (mode.opts.FloatsDir != "") {
			t.Errorf("%s: float file of %d bytes", mode.name, file)
		}
		for _, tc := range cases {
			var sum float64
			for _, qi := range queries {
				hits, _ := ix.Search(qi.Vector, k, tc.f, now)
				for _, h := range hits {
					if h.Item.Vector != nil {
						t.Fatal("a hit's item kept its vector: the index stores it twice")
					}
				}
				sum += recall(hits, bruteForce(items, qi.Vector, k, tc.f, ix.feats))
			}
			r := sum / float64(len(queries))
			t.Logf("%-12s %-15s recall@10 %.4f", mode.name, tc.name, r)
			if r < mode.min {
				t.Errorf("%s %s: recall@10 %.4f < %.2f", mode.name, tc.name, r, mode.min)
			}
		}
	}
}

// TestQuantizedUpdatesInPlace: an unchanged vector leaves the graph alone
// (compared on the codes when no floats are kept); a moved one is found at
// its new place.
func TestQuantizedUpdatesInPlace(t *testing.T) {
	items := clusteredItems(2000, 64, 3)
	ix := build(t, items, 2, Options{Quantize: true, DropFloats: true})
	g := ix.graphs[0].g
	v0 := g.Version()
	it := *items[0]
	it.ViewersNow = 7
	ix.Upsert(0, &it) // same vector
	if g.Version() != v0 {
		t.Fatal("an attribute-only update changed the graph")
	}
	moved := *items[0]
	moved.Vector = items[1].Vector
	ix.Upsert(0, &moved)
	if g.Version() == v0 {
		t.Fatal("a vector move did not change the graph")
	}
	hits, _ := ix.Search(items[1].Vector, 2, &Filter{}, now)
	found := false
	for _, h := range hits {
		found = found || h.Item.ID == items[0].ID
	}
	if !found {
		t.Fatalf("moved item not among the 2 nearest of its new vector: %v", hits)
	}
}

// BenchmarkExactScan: the exact plan over 40k streams × 384 in one
// partition, float32 vs int8 codes (+ rescoring), k=10.
func BenchmarkExactScan(b *testing.B) {
	items := randomItems(40000, 384, 9)
	q := items[3].Vector
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"float32", Options{ExactThreshold: 1 << 30, M: 4, EfConstruction: 8}},
		{"int8", Options{ExactThreshold: 1 << 30, M: 4, EfConstruction: 8, Quantize: true}},
	} {
		ix := build(b, items, 1, mode.opts)
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				ix.Search(q, 10, &Filter{}, now)
			}
		})
	}
}

// BenchmarkExactScanLarge: an exact scan of a quarter of 200k streams ×
// 384 (one partition, a category filter: every 4th row), vectors well
// beyond the caches, with and without touching each batch's vectors first.
func BenchmarkExactScanLarge(b *testing.B) {
	items := randomItems(200000, 384, 10)
	q := items[5].Vector
	f := &Filter{Categories: []string{"sneakers"}}
	for _, quant := range []bool{false, true} {
		for _, noPrefetch := range []bool{true, false} {
			ix := build(b, items, 1, Options{ExactThreshold: 1 << 30, M: 2, EfConstruction: 2, Quantize: quant, NoPrefetch: noPrefetch})
			b.Run(fmt.Sprintf("int8=%v/touch=%v", quant, !noPrefetch), func(b *testing.B) {
				for b.Loop() {
					ix.Search(q, 10, f, now)
				}
			})
		}
	}
}
