package index

import (
	"fmt"
	"math/rand/v2"
	"sort"
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

func build(t testing.TB, items []*Item, partitions int) *Index {
	ix := New(partitions, feats(t))
	for i, it := range items {
		ix.Upsert(int32(i%partitions), it)
	}
	return ix
}

// bruteForce is the reference: filter, score every item, sort.
func bruteForce(items []*Item, q []float32, k int, f *Filter, fs *features.Set) []string {
	cf := f.compile(fs, now)
	type scored struct {
		id string
		s  float32
	}
	var all []scored
	for _, it := range items {
		if cf.match(it) {
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

func TestSearchEqualsBruteForceUnderFilters(t *testing.T) {
	items := randomItems(3000, 32, 1)
	ix := build(t, items, 8)
	q := items[17].Vector
	ten := 10.0
	filters := []*Filter{
		{},
		{Categories: []string{"sneakers"}},
		{Categories: []string{"sneakers", "comics"}, Languages: []string{"es"}},
		{ExcludeSellers: []string{"s-1", "s-2", "s-3"}, Ranges: []Range{{Field: AttrViewersNow, Min: &ten}}},
		{Categories: []string{"nope"}},
	}
	for i, f := range filters {
		if err := f.Validate(ix.feats); err != nil {
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
		if st.Scanned != len(items) {
			t.Fatalf("scanned %d", st.Scanned)
		}
	}
}

func TestUpsertDeleteAndEndedLeave(t *testing.T) {
	items := randomItems(10, 4, 2)
	ix := build(t, items, 2)
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
	// Re-upserting replaces in place.
	moved := *items[5]
	moved.Category = "watches"
	ix.Upsert(5%2, &moved)
	hits, _ = ix.Search(items[5].Vector, 1, &Filter{Categories: []string{"watches"}}, now)
	if len(hits) != 1 || hits[0].Item.ID != items[5].ID || ix.Len() != 8 {
		t.Fatalf("upsert did not replace: %v len %d", hits, ix.Len())
	}
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
		if err := f.Validate(fs); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	ok := Filter{Ranges: []Range{{Field: "chat_1m", Min: &one}, {Field: AttrLiveMinutes, Max: &two}}}
	if err := ok.Validate(fs); err != nil {
		t.Fatal(err)
	}
}

func TestPopularRanksByEngagement(t *testing.T) {
	items := randomItems(100, 4, 3)
	ix := build(t, items, 4)
	hits, _ := ix.Popular(5, &Filter{}, now)
	for i := 1; i < len(hits); i++ {
		if hits[i-1].Score < hits[i].Score {
			t.Fatal("not sorted")
		}
	}
	if hits[0].Item.ViewersNow != 39 {
		t.Fatalf("top has %d viewers", hits[0].Item.ViewersNow)
	}
}

// BenchmarkSearch: exact filtered k-NN, k=20, over 10k live streams × 384 dims
// in 8 partitions (the skeleton's serving path, without HTTP).
func BenchmarkSearch(b *testing.B) {
	for _, tc := range []struct {
		name string
		f    *Filter
	}{
		{"nofilter", &Filter{}},
		{"category", &Filter{Categories: []string{"sneakers"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			items := randomItems(10000, 384, 4)
			ix := build(b, items, 8)
			q := items[1].Vector
			b.ResetTimer()
			for b.Loop() {
				ix.Search(q, 20, tc.f, now)
			}
		})
	}
}
