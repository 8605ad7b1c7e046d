package pipeline

import (
	"fmt"
	"testing"
)

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	l := newLRU[int](2)
	one, two, three := 1, 2, 3
	l.put("a", &one)
	l.put("b", &two)
	if _, ok := l.get("a"); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	l.put("c", &three) // evicts b
	if _, ok := l.get("b"); ok {
		t.Fatal("b should have been evicted")
	}
	if v, ok := l.get("a"); !ok || *v != 1 {
		t.Fatal("a evicted instead of b")
	}
	l.remove("a")
	if l.len() != 1 {
		t.Fatalf("len %d", l.len())
	}
}

func TestStateResetDropsCleanValues(t *testing.T) {
	s := NewState[int]("t-table", nil, StateOptions{CacheSize: 10})
	for p := range int32(4) {
		for i := range 5 {
			v := i
			s.part(p).cache.put(fmt.Sprint(i), &v)
		}
	}
	if s.Len() != 20 {
		t.Fatalf("len %d", s.Len())
	}
	s.Reset(nil)
	if s.Len() != 0 {
		t.Fatalf("len %d after reset", s.Len())
	}
}
