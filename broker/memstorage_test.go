package broker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/lovoo/goka/storage"
)

// The view storage behaves as goka's own memory storage under random sets,
// deletes and offsets: the same gets, the same iteration order and values,
// the same ranges.
func TestMemStorageMatchesGokasMemory(t *testing.T) {
	ours, theirs := newMemStorage(), storage.NewMemory()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		k := fmt.Sprintf("ls-%04d", rng.IntN(800))
		switch rng.IntN(10) {
		case 0, 1:
			if err := ours.Delete(k); err != nil {
				t.Fatal(err)
			}
			_ = theirs.Delete(k)
		case 2:
			_ = ours.SetOffset(int64(i))
			_ = theirs.SetOffset(int64(i))
		default:
			v := fmt.Appendf(nil, "v%d", i)
			if err := ours.Set(k, v); err != nil {
				t.Fatal(err)
			}
			_ = theirs.Set(k, v)
		}
	}
	for j := range 800 {
		k := fmt.Sprintf("ls-%04d", j)
		a, _ := ours.Get(k)
		b, _ := theirs.Get(k)
		ha, _ := ours.Has(k)
		hb, _ := theirs.Has(k)
		if string(a) != string(b) || ha != hb {
			t.Fatalf("key %s: ours %q %v, goka's %q %v", k, a, ha, b, hb)
		}
	}
	oa, _ := ours.GetOffset(-1)
	ob, _ := theirs.GetOffset(-1)
	if oa != ob {
		t.Fatalf("offset %d, goka's %d", oa, ob)
	}
	dump := func(it storage.Iterator, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer it.Release()
		var out []string
		for it.Next() {
			v, _ := it.Value()
			out = append(out, string(it.Key())+"="+string(v))
		}
		return out
	}
	a, b := dump(ours.Iterator()), dump(theirs.Iterator())
	if !slices.Equal(a, b) || len(a) == 0 {
		t.Fatalf("iteration differs: %d vs %d entries", len(a), len(b))
	}
	a, b = dump(ours.IteratorWithRange([]byte("ls-01"), nil)), dump(theirs.IteratorWithRange([]byte("ls-01"), nil))
	if !slices.Equal(a, b) || len(a) == 0 {
		t.Fatalf("range iteration differs: %v vs %v", a, b)
	}
}

// Recovering a view partition of n new keys: goka's memory storage re-sorts
// on every new key.
func BenchmarkViewStorageRecovery(b *testing.B) {
	for _, n := range []int{15_000, 60_000} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("ls-%016x", rand.Uint64())
		}
		for _, c := range []struct {
			name string
			new  func() storage.Storage
		}{{"livefeed", func() storage.Storage { return newMemStorage() }}, {"goka", storage.NewMemory}} {
			b.Run(fmt.Sprintf("keys=%d/storage=%s", n, c.name), func(b *testing.B) {
				v := []byte("value")
				for b.Loop() {
					st := c.new()
					for _, k := range keys {
						_ = st.Set(k, v)
					}
				}
			})
		}
	}
}
