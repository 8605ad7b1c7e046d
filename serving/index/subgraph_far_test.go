package index

import (
	"slices"
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
