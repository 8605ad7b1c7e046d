package index

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestSubGraphPlan: with category and language sub-graphs, a filter on one
// value of either (alone, correlated with the vectors, or with more
// conditions) is searched in that value's sub-graph, keeps recall against
// brute force, and keeps it after category moves, vector moves, deletes
// and a snapshot round trip.
func TestSubGraphPlan(t *testing.T) {
	const n, dim, k = 6000, 32, 10
	items := clusteredItems(n, dim, 1)
	queries := clusteredItems(40, dim, 2)
	cases := []struct {
		name string
		f    *Filter
		sub  string
	}{
		{"correlated 10%", &Filter{Categories: []string{"cat-7"}}, "category=cat-7"},
		{"50% language", &Filter{Languages: []string{"es"}}, "language=es"},
		{"AND 5%", &Filter{Languages: []string{"en"}, Categories: []string{"cat-3"}}, "category=cat-3"},
		{"category and viewers", &Filter{Categories: []string{"cat-2"}, Ranges: []Range{{Field: AttrViewersNow, Min: f64(500)}}}, "category=cat-2"},
		{"two categories", &Filter{Categories: []string{"cat-1", "cat-2"}}, ""},
	}
	// efSearch 384 as in TestRecallAtSelectivities: these 32-d clusters
	// are much harder than 384-d ones.
	opts := Options{EfSearch: 384, ExactThreshold: 20, SubGraphs: []string{SubGraphCategory, SubGraphLanguage}}
	ix := build(t, items, 4, opts)
	check := func(what string, ix *Index, items []*Item, min float64) {
		t.Helper()
		for _, tc := range cases {
			var sum float64
			subs := 0
			for _, qi := range queries {
				hits, st := ix.Search(qi.Vector, k, tc.f, now)
				far := st.Plan == PlanFarExact || st.Plan == PlanGraph && st.Partitions[0].Far
				if !far && ((st.Plan == PlanSubGraph) != (tc.sub != "") || !strings.HasPrefix(st.SubGraph, tc.sub)) {
					t.Fatalf("%s %s: plan %s sub-graph %q", what, tc.name, st.Plan, st.SubGraph)
				}
				if st.Plan == PlanSubGraph {
					subs++
				}
				sum += recall(hits, bruteForce(items, qi.Vector, k, tc.f, ix.feats))
			}
			if tc.sub != "" && subs == 0 {
				t.Errorf("%s %s: no query searched the sub-graph", what, tc.name)
			}
			r := sum / float64(len(queries))
			t.Logf("%s %-22s recall@10 %.4f, %d of %d in the sub-graph", what, tc.name, r, subs, len(queries))
			if r < min {
				t.Errorf("%s %s: recall@10 %.4f < %.2f", what, tc.name, r, min)
			}
		}
	}
	check("built", ix, items, 0.99)

	// Move categories, vectors, delete: the sub-graphs follow.
	cur := append([]*Item(nil), items...)
	for i := 0; i < n; i += 9 {
		it := *cur[i]
		switch i % 3 {
		case 0:
			it.Category = fmt.Sprintf("cat-%d", (i/9)%10)
		case 1:
			it.Vector = items[(i+500)%n].Vector
		case 2:
			ix.Delete(int32(i%4), it.ID)
			cur[i] = nil
			continue
		}
		ix.Upsert(int32(i%4), &it)
		cur[i] = &it
	}
	// Members moved to a category at random lie away from its cluster: a
	// hard case (the whole graph's plans reach 0.91 at AND 5 % here).
	check("updated", ix, cur, 0.98)

	path := filepath.Join(t.TempDir(), "index.snap")
	if _, err := ix.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	rx, _, err := LoadSnapshot(path, ix.feats, opts)
	if err != nil {
		t.Fatal(err)
	}
	filters := make([]*Filter, len(cases))
	for i, tc := range cases {
		filters[i] = tc.f
	}
	sameResults(t, ix, rx, queries, filters)
	if _, _, err := LoadSnapshot(path, ix.feats, Options{EfSearch: 384}); err == nil {
		t.Fatal("a snapshot with sub-graphs loaded without them")
	}
}

// TestSnapshotVersion2Loads: a version-2 snapshot (before sub-graphs)
// loads into an index without them, answering alike.
func TestSnapshotVersion2Loads(t *testing.T) {
	items := clusteredItems(2000, 32, 3)
	opts := Options{ExactThreshold: 50, Quantize: true}
	ix := build(t, items, 4, opts)
	var b bytes.Buffer
	if _, err := ix.writeSnapshot(&b, 2); err != nil {
		t.Fatal(err)
	}
	rx, info, err := ReadSnapshot(bytes.NewReader(b.Bytes()), ix.feats, opts)
	if err != nil || info.Version != 2 {
		t.Fatalf("version %d: %v", info.Version, err)
	}
	sameResults(t, ix, rx, clusteredItems(20, 32, 4), []*Filter{{}, {Categories: []string{"cat-7"}}, {Languages: []string{"es"}}})
	opts.SubGraphs = []string{SubGraphCategory}
	if _, _, err := ReadSnapshot(bytes.NewReader(b.Bytes()), ix.feats, opts); !errors.Is(err, ErrSnapshotMismatch) {
		t.Fatalf("version 2 loaded with sub-graphs asked for: %v", err)
	}
}
