package index

import (
	"slices"
	"testing"
)

// SearchCandidates returns at most total hits in order, and its first k
// are as good as Search's top k (one search for total, with a list at least
// as long).
func TestSearchCandidatesKeepsTheTopK(t *testing.T) {
	items := clusteredItems(20000, 32, 3)
	for _, quant := range []bool{false, true} {
		t.Run(map[bool]string{false: "float32", true: "int8"}[quant], func(t *testing.T) {
			candidatesKeepTheTopK(t, items, build(t, items, 8, Options{Quantize: quant}))
		})
	}
}

func candidatesKeepTheTopK(t *testing.T, items []*Item, ix *Index) {
	fs := feats(t)
	if ix.Partitions() != 8 || ix.CandidatesPerPartition(20, 200) != 200 || ix.CandidatesPerPartition(40, 80) != 80 {
		t.Fatalf("partitions %d, per partition %d / %d", ix.Partitions(), ix.CandidatesPerPartition(20, 200), ix.CandidatesPerPartition(40, 80))
	}
	for i, f := range []*Filter{{}, {Categories: []string{"cat-3"}}} {
		var rs, rc float64
		const queries = 20
		for qi := range queries {
			q := items[qi*97].Vector
			want := bruteForce(items, q, 20, f, fs)
			top, _ := ix.Search(q, 20, f, now)
			cand, st := ix.SearchCandidates(q, 20, 200, f, now)
			if len(cand) > 200 || len(cand) < 20 || len(st.Partitions) != 8 {
				t.Fatalf("filter %d: %d candidates, %d partitions", i, len(cand), len(st.Partitions))
			}
			if !slices.IsSortedFunc(cand, func(a, b Hit) int {
				if better(a, b) {
					return -1
				}
				return 1
			}) {
				t.Fatal("candidates not in order")
			}
			rs += recall(top, want)
			rc += recall(cand[:20], want)
		}
		rs, rc = rs/queries, rc/queries
		if rc < rs || rc < 0.99 {
			t.Errorf("filter %d: recall@20 of the candidates' top 20 %.3f, of Search %.3f", i, rc, rs)
		}
	}
}
