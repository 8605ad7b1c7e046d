package index

import (
	"testing"
)

// TestLargeGraphEntryPoints: a graph at or over Options.LargeGraph is
// searched from level 1's list with the longer list, and answers as well
// as the small-graph search with the same list (here the threshold is
// lowered so that a test-sized graph counts as large).
func TestLargeGraphEntryPoints(t *testing.T) {
	const n, dim, k = 6000, 32, 10
	items := clusteredItems(n, dim, 1)
	queries := clusteredItems(50, dim, 2)
	small := build(t, items, 4, Options{EfSearch: 384, ExactThreshold: -1})
	large := build(t, items, 4, Options{EfSearch: 96, LargeEfSearch: 384, LargeGraph: n, ExactThreshold: -1})
	for _, f := range []*Filter{{}, {Languages: []string{"es"}}} {
		var rs, rl float64
		for _, qi := range queries {
			want := bruteForce(items, qi.Vector, k, f, small.feats)
			hits, _ := small.Search(qi.Vector, k, f, now)
			rs += recall(hits, want)
			hits, st := large.Search(qi.Vector, k, f, now)
			rl += recall(hits, want)
			if st.Plan != PlanGraph {
				t.Fatalf("plan %s", st.Plan)
			}
		}
		rs /= float64(len(queries))
		rl /= float64(len(queries))
		t.Logf("filter %+v: recall@10 small-graph search %.4f, large-graph search %.4f", f, rs, rl)
		if rl < 0.99 || rl < rs-0.005 {
			t.Errorf("filter %+v: recall@10 %.4f with level 1's entry points (%.4f without)", f, rl, rs)
		}
	}
	// Below the threshold the efSearch of 96 alone is used: fewer
	// distances than the large-graph search's list of 384.
	_, a := large.Search(queries[0].Vector, k, nil, now)
	large.opts.LargeGraph = n + 1
	_, b := large.Search(queries[0].Vector, k, nil, now)
	if b.Scanned >= a.Scanned {
		t.Errorf("distances: %d under the large-graph threshold, %d over it", b.Scanned, a.Scanned)
	}
}
