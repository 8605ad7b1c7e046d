package index

import (
	"slices"
	"strings"
	"testing"
)

// TestSubGraphFarQueries: queries from clusters outside the category (its
// members lie away from them, in two clusters, nearly equidistant) keep
// recall: the planner leaves the sub-graph for the whole graph's far plans
// when it sees the set away from the query.
func TestSubGraphFarQueries(t *testing.T) {
	items := clusteredItems(6000, 32, 1)
	ix := build(t, items, 4, Options{EfSearch: 128, ExactThreshold: 20, SubGraphs: []string{SubGraphCategory}})
	f := &Filter{Categories: []string{"cat-7"}}
	var sum float64
	n := 0
	for _, qi := range clusteredItems(200, 32, 2) {
		if slices.Contains(f.Categories, qi.Category) {
			continue
		}
		hits, _ := ix.Search(qi.Vector, 10, f, now)
		sum += recall(hits, bruteForce(items, qi.Vector, 10, f, ix.feats))
		n++
	}
	if r := sum / float64(n); r < 0.98 {
		t.Fatalf("recall@10 %.4f over %d far queries", r, n)
	}
}

// TestSubGraphFarSeeded: with Options.ScanSeeds the same far queries
// search the category's sub-graph from the upper-level scan's entry
// points (plan subgraph, explain says so, partitions far) and keep most
// of the recall; flooding the whole sub-graph (FarVisit 1) is exact.
func TestSubGraphFarSeeded(t *testing.T) {
	items := clusteredItems(6000, 32, 1)
	f := &Filter{Categories: []string{"cat-7"}}
	for _, tc := range []struct {
		visit float64
		min   float64
	}{{0, 0.8}, {1, 1}} {
		ix := build(t, items, 4, Options{EfSearch: 128, ExactThreshold: 20, SubGraphs: []string{SubGraphCategory},
			ScanSeeds: 32, ScanLimit: 256, FarVisit: tc.visit})
		var sum float64
		n, far := 0, 0
		for _, qi := range clusteredItems(200, 32, 2) {
			if slices.Contains(f.Categories, qi.Category) {
				continue
			}
			hits, st := ix.Search(qi.Vector, 10, f, now)
			if st.Plan != PlanSubGraph {
				t.Fatalf("plan %s", st.Plan)
			}
			if strings.Contains(st.SubGraph, "away from the query") {
				far++
				if !st.Partitions[0].Far {
					t.Fatalf("a far query's partitions are not marked far: %+v", st.Partitions[0])
				}
			}
			sum += recall(hits, bruteForce(items, qi.Vector, 10, f, ix.feats))
			n++
		}
		r := sum / float64(n)
		t.Logf("far-visit %.0f: recall@10 %.4f over %d queries, %d of them seeded from the upper levels", tc.visit, r, n, far)
		if far == 0 || r < tc.min {
			t.Errorf("far-visit %.0f: recall@10 %.4f, %d seeded (want ≥ %.2f and some)", tc.visit, r, far, tc.min)
		}
	}
}
