package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func feats(t testing.TB) *features.Set {
	s, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var categories = []string{"trading-cards", "sneakers", "watches", "comics"}

func randomItems(n, dim int, seed uint64) []*Item {
	rng := rand.New(rand.NewPCG(seed, 7))
	items := make([]*Item, n)
	for i := range items {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		items[i] = &Item{
			ID: fmt.Sprintf("ls-%06d", i), SellerID: fmt.Sprintf("s-%d", i%50),
			Category: categories[i%len(categories)], Language: []string{"en", "es"}[i%2],
			Status: events.StatusLive, ViewersNow: i % 40, Vector: models.Normalize(v),
		}
	}
	return items
}

// clusteredItems: vectors around 20 centres (noise of norm ~0.6, as in
// bench/servingbench); category follows the cluster (correlated, 10
// values), language (2), seller (100) and viewers (0..999) do not.
func clusteredItems(n, dim int, seed uint64) []*Item {
	return clusteredItemsSpread(n, dim, seed, 0.6)
}

func clusteredItemsSpread(n, dim int, seed uint64, spread float64) []*Item {
	rng := rand.New(rand.NewPCG(seed, 11))
	centres := make([][]float32, 20)
	for i := range centres {
		centres[i] = gauss(rng, dim, 1)
		models.Normalize(centres[i])
	}
	items := make([]*Item, n)
	for i := range items {
		c := rng.IntN(len(centres))
		v := gauss(rng, dim, spread/math.Sqrt(float64(dim)))
		for j := range v {
			v[j] += centres[c][j]
		}
		items[i] = &Item{
			ID: fmt.Sprintf("ls-%06d", i), SellerID: fmt.Sprintf("s-%03d", rng.IntN(100)),
			Category: fmt.Sprintf("cat-%d", c%10), Language: []string{"en", "es"}[rng.IntN(2)],
			Status: events.StatusLive, ViewersNow: rng.IntN(1000), Vector: models.Normalize(v),
		}
	}
	return items
}

func gauss(rng *rand.Rand, dim int, scale float64) []float32 {
	v := make([]float32, dim)
	for j := range v {
		v[j] = float32(rng.NormFloat64() * scale)
	}
	return v
}

func build(t testing.TB, items []*Item, partitions int, opts Options) *Index {
	ix := NewWithOptions(partitions, feats(t), opts)
	for i, it := range items {
		ix.Upsert(int32(i%partitions), it)
	}
	return ix
}

// bruteForce is the reference: filter, score every item, sort.
func bruteForce(items []*Item, q []float32, k int, f *Filter, fs *features.Set) []string {
	cf := compileFilter(f, fs, now)
	type scored struct {
		id string
		s  float32
	}
	var all []scored
	for _, it := range items {
		if it != nil && cf.match(it) {
			all = append(all, scored{it.ID, models.Dot(q, it.Vector)})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].s != all[j].s {
			return all[i].s > all[j].s
		}
		return all[i].id < all[j].id
	})
	var ids []string
	for i := 0; i < k && i < len(all); i++ {
		ids = append(ids, all[i].id)
	}
	return ids
}

func f64(x float64) *float64 { return &x }

func TestExactPlanEqualsBruteForceUnderFilters(t *testing.T) {
	items := randomItems(3000, 32, 1)
	ix := build(t, items, 8, Options{ExactThreshold: 1 << 30})
	q := items[17].Vector
	filters := []*Filter{
		{},
		{Categories: []string{"sneakers"}},
		{Categories: []string{"sneakers", "comics"}, Languages: []string{"es"}},
		{ExcludeSellers: []string{"s-1", "s-2", "s-3"}, Ranges: []Range{{Field: AttrViewersNow, Min: f64(10)}}},
		{ExcludeStreams: []string{items[17].ID}, Ranges: []Range{{Field: AttrViewersNow, Min: f64(3), Max: f64(7)}}},
		{Categories: []string{"nope"}},
	}
	for i, f := range filters {
		if err := ValidateFilter(f, ix.feats); err != nil {
			t.Fatal(err)
		}
		hits, st := ix.Search(q, 20, f, now)
		want := bruteForce(items, q, 20, f, ix.feats)
		if len(hits) != len(want) {
			t.Fatalf("filter %d: %d hits, want %d", i, len(hits), len(want))
		}
		for j, h := range hits {
			if h.Item.ID != want[j] {
				t.Fatalf("filter %d rank %d: %s, want %s", i, j, h.Item.ID, want[j])
			}
		}
		if len(want) > 0 && (st.Plan != PlanExact || len(st.Partitions) != 8) {
			t.Fatalf("filter %d: plan %q, %d partitions", i, st.Plan, len(st.Partitions))
		}
		if len(f.Ranges) == 0 && st.Matched != st.Estimated {
			t.Fatalf("filter %d: matched %d, estimated %d without ranges", i, st.Matched, st.Estimated)
		}
	}
}

// TestRecallAtSelectivities: recall@10 against brute force on clustered
// data at 100/50/10/1/0.1 % filters, a two-attribute AND and a filter
// correlated with the clusters, with the planner's choice and with the
// graph forced.
func TestRecallAtSelectivities(t *testing.T) {
	const n, dim, k = 6000, 32, 10
	items := clusteredItems(n, dim, 1)
	queries := clusteredItems(50, dim, 2)
	sellers := make([]string, 99) // exclude 99 of 100 sellers: ~1 %
	for i := range sellers {
		sellers[i] = fmt.Sprintf("s-%03d", i+1)
	}
	// low: below ACORN's regime (a handful of members per partition), where
	// the planner scans exactly; with the graph forced, recall there is only
	// logged.
	cases := []struct {
		name string
		f    *Filter
		low  bool
	}{
		{"100%", &Filter{}, false},
		{"50%", &Filter{Languages: []string{"es"}}, false},
		{"10%", &Filter{Ranges: []Range{{Field: AttrViewersNow, Min: f64(900)}}}, false},
		{"1%", &Filter{ExcludeSellers: sellers}, true},
		{"0.1%", &Filter{Ranges: []Range{{Field: AttrViewersNow, Min: f64(999)}}}, true},
		{"AND 5%", &Filter{Languages: []string{"en"}, Categories: []string{"cat-3"}}, false},
		{"correlated 10%", &Filter{Categories: []string{"cat-7"}}, false},
	}
	// efSearch 384: these 32-d clusters (gaussian noise around 20 centres:
	// intrinsic dimension near the full 32) are much harder than the
	// benchmark's 384-d ones, where the default 80 reaches 0.99; the 50 %
	// filter, applied to an unfiltered search's list, needs the longest.
	ix := build(t, items, 4, Options{EfSearch: 384})
	want := make([][][]string, len(cases))
	for ci, tc := range cases {
		for _, qi := range queries {
			want[ci] = append(want[ci], bruteForce(items, qi.Vector, k, tc.f, ix.feats))
		}
	}
	for _, mode := range []struct {
		name      string
		threshold int
	}{{"planner", 300}, {"graph", -1}} {
		ix.opts.ExactThreshold = mode.threshold // no query runs: safe to change
		for ci, tc := range cases {
			var sum float64
			plans := map[string]int{}
			for qn, qi := range queries {
				hits, st := ix.Search(qi.Vector, k, tc.f, now)
				plans[st.Plan]++
				sum += recall(hits, want[ci][qn])
			}
			r := sum / float64(len(queries))
			t.Logf("%s %-15s recall@10 %.4f plans %v", mode.name, tc.name, r, plans)
			if r < 0.99 && (mode.threshold >= 0 || !tc.low) {
				t.Errorf("%s %s: recall@10 %.4f < 0.99", mode.name, tc.name, r)
			}
		}
	}
}

func recall(hits []Hit, want []string) float64 {
	if len(want) == 0 {
		return 1
	}
	got := 0
	for _, h := range hits {
		if slices.Contains(want, h.Item.ID) {
			got++
		}
	}
	return float64(got) / float64(len(want))
}

// TestRecallOnHardData: nearly unclustered vectors (noise of norm 2 around
// the centres: intrinsic dimension ≈ the full 32) need a larger efSearch.
func TestRecallOnHardData(t *testing.T) {
	items := clusteredItemsSpread(4000, 32, 1, 2)
	queries := clusteredItemsSpread(40, 32, 2, 2)
	ix := build(t, items, 4, Options{ExactThreshold: -1, EfSearch: 256})
	var sum float64
	for _, qi := range queries {
		hits, _ := ix.Search(qi.Vector, 10, &Filter{}, now)
		sum += recall(hits, bruteForce(items, qi.Vector, 10, &Filter{}, ix.feats))
	}
	if r := sum / float64(len(queries)); r < 0.99 {
		t.Fatalf("recall@10 %.4f with efSearch 256", r)
	}
}

func TestAttributeOnlyUpdatesKeepTheGraph(t *testing.T) {
	items := clusteredItems(500, 16, 3)
	ix := build(t, items, 2, Options{})
	versions := func() []uint64 {
		var v []uint64
		for _, g := range ix.graphs {
			v = append(v, g.g.Version())
		}
		return v
	}
	before := versions()
	for i, it := range items {
		moved := *it // same vector (same values, new slice for half of them)
		if i%2 == 0 {
			moved.Vector = slices.Clone(it.Vector)
		}
		moved.ViewersNow = 5000 + i
		moved.Category = "hot"
		moved.Status = events.StatusScheduled
		ix.Upsert(int32(i%2), &moved)
	}
	if after := versions(); !slices.Equal(before, after) {
		t.Fatalf("graph versions %v → %v on attribute-only updates", before, after)
	}
	hits, st := ix.Search(items[0].Vector, 5, &Filter{Categories: []string{"hot"},
		Status: []events.Status{events.StatusScheduled}, Ranges: []Range{{Field: AttrViewersNow, Min: f64(5000)}}}, now)
	if len(hits) != 5 || hits[0].Item.ID != items[0].ID || hits[0].Item.ViewersNow != 5000 {
		t.Fatalf("updated attributes not seen: %+v %+v", hits, st)
	}
	if hits, _ := ix.Search(items[0].Vector, 5, &Filter{Categories: []string{items[0].Category}}, now); len(hits) != 0 {
		t.Fatalf("old category still matches: %v", hits)
	}
	// A changed vector does change the graph, in place.
	moved := *items[1]
	moved.Vector = items[2].Vector
	ix.Upsert(1, &moved)
	if after := versions(); slices.Equal(before, after) {
		t.Fatal("vector change left the graph unchanged")
	}
	if ix.Len() != len(items) {
		t.Fatalf("len %d", ix.Len())
	}
}

func TestUpsertDeleteAndEndedLeave(t *testing.T) {
	items := randomItems(10, 4, 2)
	ix := build(t, items, 2, Options{})
	if ix.Len() != 10 {
		t.Fatal(ix.Len())
	}
	ended := *items[3]
	ended.Status = events.StatusEnded
	ix.Upsert(3%2, &ended)
	ix.Delete(0, items[0].ID)
	ix.Delete(0, "missing")
	if ix.Len() != 8 {
		t.Fatalf("len %d, want 8", ix.Len())
	}
	hits, _ := ix.Search(items[3].Vector, 10, &Filter{}, now)
	for _, h := range hits {
		if h.Item.ID == items[3].ID || h.Item.ID == items[0].ID {
			t.Fatalf("removed item %s found", h.Item.ID)
		}
	}
	if len(hits) != 8 {
		t.Fatalf("%d hits, want 8", len(hits))
	}
	// Re-upserting replaces in place.
	moved := *items[5]
	moved.Category = "watches"
	ix.Upsert(5%2, &moved)
	hits, _ = ix.Search(items[5].Vector, 1, &Filter{Categories: []string{"watches"}}, now)
	if len(hits) != 1 || hits[0].Item.ID != items[5].ID || ix.Len() != 8 {
		t.Fatalf("upsert did not replace: %v len %d", hits, ix.Len())
	}
	// A stream without a vector is indexed (for popularity) but not
	// searchable; a later vector makes it so.
	novec := &Item{ID: "ls-novec", Category: "x", Status: events.StatusLive, ViewersNow: 1000}
	ix.Upsert(0, novec)
	if hits, _ := ix.Popular(1, &Filter{}, now); len(hits) != 1 || hits[0].Item.ID != "ls-novec" {
		t.Fatalf("popular: %v", hits)
	}
	if hits, _ := ix.Search(items[1].Vector, 10, &Filter{Categories: []string{"x"}}, now); len(hits) != 0 {
		t.Fatalf("vectorless item searched: %v", hits)
	}
	withVec := *novec
	withVec.Vector = items[1].Vector
	ix.Upsert(0, &withVec)
	if hits, _ := ix.Search(items[1].Vector, 10, &Filter{Categories: []string{"x"}}, now); len(hits) != 1 {
		t.Fatalf("item with new vector not found: %v", hits)
	}
	// A query of another dimension finds nothing.
	if hits, st := ix.Search(make([]float32, 7), 5, &Filter{}, now); len(hits) != 0 || st.Plan != PlanNone {
		t.Fatalf("other dimension: %v %+v", hits, st)
	}
}

// TestConcurrentUpdatesAndQueries runs writers (vector moves, attribute
// changes, deletes, re-inserts) against readers; -race checks the locking,
// the final state is checked against brute force.
func TestConcurrentUpdatesAndQueries(t *testing.T) {
	const n, parts = 2000, 4
	items := clusteredItems(n, 16, 5)
	ix := build(t, items, parts, Options{ExactThreshold: 50, EfSearch: 128})
	final := slices.Clone(items)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range parts {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for range 400 {
				i := rng.IntN(n/parts)*parts + w // partition w's items only
				switch rng.IntN(4) {
				case 0:
					ix.Delete(int32(w), items[i].ID)
					final[i] = nil
				case 1:
					it := *items[i]
					it.Vector = items[rng.IntN(n)].Vector
					ix.Upsert(int32(w), &it)
					final[i] = &it
				default:
					it := *items[i]
					if final[i] != nil {
						it.Vector = final[i].Vector
					}
					it.ViewersNow = rng.IntN(1000)
					ix.Upsert(int32(w), &it)
					final[i] = &it
				}
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				q := items[(i*7+r)%n].Vector
				if hits, _ := ix.Search(q, 10, &Filter{Ranges: []Range{{Field: AttrViewersNow, Min: f64(100)}}}, now); len(hits) > 10 {
					t.Errorf("%d hits", len(hits))
				}
				ix.Popular(5, &Filter{Languages: []string{"en"}}, now)
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	live := 0
	for _, it := range final {
		if it != nil {
			live++
		}
	}
	if ix.Len() != live {
		t.Fatalf("len %d, want %d", ix.Len(), live)
	}
	var sum float64
	queries := clusteredItems(40, 16, 6)
	for _, qi := range queries {
		want := bruteForce(final, qi.Vector, 10, &Filter{}, ix.feats)
		hits, _ := ix.Search(qi.Vector, 10, &Filter{}, now)
		for _, h := range hits {
			if slices.Contains(want, h.Item.ID) {
				sum++
			}
			if final[idNum(h.Item.ID)] == nil {
				t.Fatalf("deleted %s returned", h.Item.ID)
			}
		}
	}
	if r := sum / float64(10*len(queries)); r < 0.98 {
		t.Fatalf("recall after concurrent churn %.3f", r)
	}
}

func idNum(id string) int {
	var i int
	fmt.Sscanf(id, "ls-%d", &i)
	return i
}

func TestFilterValidation(t *testing.T) {
	fs := feats(t)
	one, two := 1.0, 2.0
	bad := []Filter{
		{Status: []events.Status{"paused"}},
		{Status: []events.Status{events.StatusEnded}},
		{Ranges: []Range{{Field: "nope", Min: &one}}},
		{Ranges: []Range{{Field: AttrViewersNow}}},
		{Ranges: []Range{{Field: "chat_1m", Min: &two, Max: &one}}},
	}
	for i, f := range bad {
		if err := ValidateFilter(&f, fs); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	ok := Filter{Ranges: []Range{{Field: "chat_1m", Min: &one}, {Field: AttrLiveMinutes, Max: &two}}}
	if err := ValidateFilter(&ok, fs); err != nil {
		t.Fatal(err)
	}
}

func TestPopularRanksByEngagement(t *testing.T) {
	items := randomItems(100, 4, 3)
	ix := build(t, items, 4, Options{})
	hits, _ := ix.Popular(5, &Filter{}, now)
	for i := 1; i < len(hits); i++ {
		if hits[i-1].Score < hits[i].Score {
			t.Fatal("not sorted")
		}
	}
	if hits[0].Item.ViewersNow != 39 {
		t.Fatalf("top has %d viewers", hits[0].Item.ViewersNow)
	}
	hits, st := ix.Popular(100, &Filter{Ranges: []Range{{Field: AttrViewersNow, Max: f64(9)}}}, now)
	if len(hits) != 30 || st.Matched != 30 {
		t.Fatalf("%d hits, matched %d, want 30", len(hits), st.Matched)
	}
}

// BenchmarkSearch: filtered k-NN, k=20, over 10k live streams × 384 dims in
// 8 partitions, without HTTP.
func BenchmarkSearch(b *testing.B) {
	items := randomItems(10000, 384, 4)
	ix := build(b, items, 8, Options{})
	q := items[1].Vector
	for _, tc := range []struct {
		name string
		f    *Filter
	}{
		{"nofilter", &Filter{}},
		{"category", &Filter{Categories: []string{"sneakers"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				ix.Search(q, 20, tc.f, now)
			}
		})
	}
}

// Engagement is computed once per second of query time for each version of
// an item: within the second the cached score is returned, a new version
// (Upsert) and a later second are scored afresh.
func TestEngagementCachedPerSecondAndVersion(t *testing.T) {
	fs := feats(t)
	ix := NewWithOptions(1, fs, Options{})
	base := now.Truncate(time.Second)
	version := func(chats int) *Item {
		it := &Item{ID: "ls", Status: events.StatusLive, ViewersNow: 3}
		for i := range chats {
			fs.ForEntity("livestream").ApplyEvent(&it.Features, features.MapEvent{Src: "chat",
				At: base.Add(-time.Minute + time.Duration(i)*time.Millisecond), Fields: map[string]any{"user_id": "u", "text": "x"}})
		}
		ix.Upsert(0, it)
		hits, _ := ix.Popular(1, &Filter{}, base)
		return hits[0].Item
	}
	stored := version(10)
	first := ix.Engagement(stored, base)
	if want := ix.engagement(stored, base); first != want || first <= math.Log1p(3) {
		t.Fatalf("engagement %v, computed %v (viewers alone give %v)", first, want, math.Log1p(3))
	}
	if again := ix.Engagement(stored, base.Add(999*time.Millisecond)); again != first {
		t.Fatalf("same second as the first score: %v, cached %v", again, first)
	}
	// Ten minutes later the chat has left the 5-minute window: another
	// second, so it is recomputed; the cache is then per that second.
	if got := ix.Engagement(stored, base.Add(10*time.Minute)); got != math.Log1p(3) {
		t.Fatalf("engagement 10 min later %v, want viewers only %v", got, math.Log1p(3))
	}
	if got := ix.Engagement(stored, base.Add(10*time.Minute+900*time.Millisecond)); got != math.Log1p(3) {
		t.Fatalf("same second: %v", got)
	}
	// A new version with more chat is scored afresh.
	if more := ix.Engagement(version(30), base); more <= first {
		t.Fatalf("a new version with 30 chats scored %v, the old one with 10 %v", more, first)
	}
}

// TestBroadCorrelatedFilterFallsBack: a broad filter (half the catalogue)
// whose members all lie away from the query: the unfiltered list holds
// none of them, so the search is repeated with the filter applied during
// traversal, and still finds the true top k.
func TestBroadCorrelatedFilterFallsBack(t *testing.T) {
	items := clusteredItems(4000, 32, 1)
	ix := build(t, items, 4, Options{ExactThreshold: -1, EfSearch: 128})
	f := &Filter{Categories: []string{"cat-0", "cat-1", "cat-2", "cat-3", "cat-4"}}
	var sum float64
	n := 0
	for _, qi := range clusteredItems(200, 32, 2) {
		if slices.Contains(f.Categories, qi.Category) {
			continue // the query's own cluster passes: not this case
		}
		hits, st := ix.Search(qi.Vector, 10, f, now)
		if st.Plan != PlanGraph || len(hits) != 10 {
			t.Fatalf("plan %s, %d hits", st.Plan, len(hits))
		}
		r := recall(hits, bruteForce(items, qi.Vector, 10, f, ix.feats))
		if testing.Verbose() && r < 0.9 {
			t.Logf("far %v recall %.2f scanned %d", st.Partitions[0].Far, r, st.Scanned)
		}
		sum += r
		n++
	}
	if n == 0 {
		t.Fatal("no query outside the filter")
	}
	if r := sum / float64(n); r < 0.99 {
		t.Fatalf("recall@10 %.4f over %d queries", r, n)
	}
}
