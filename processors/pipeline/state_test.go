package pipeline

import (
	"errors"
	"fmt"
	"testing"
	"time"
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

// The emit barrier: a flush waits for the emits counted before it, not for
// later ones, and a failed emit fails every later barrier.
func TestEmitBarrier(t *testing.T) {
	tr := newEmitTracker()
	stop := make(chan struct{})
	first := tr.add()
	e := tr.barrier()
	later := tr.add() // after the barrier: not waited for

	waited := make(chan error, 1)
	go func() { waited <- tr.wait(e, stop) }()
	select {
	case err := <-waited:
		t.Fatalf("barrier passed with an emit before it in flight: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	first(nil)
	if err := <-waited; err != nil {
		t.Fatal(err)
	}

	e2 := tr.barrier()
	later(errors.New("broker said no"))
	if err := tr.wait(e2, stop); err == nil {
		t.Fatal("a barrier passed after a failed emit")
	}

	// Stopping releases a waiting write with an error.
	tr2 := newEmitTracker()
	tr2.add()
	close(stop)
	if err := tr2.wait(tr2.barrier(), stop); !errors.Is(err, errStopped) {
		t.Fatalf("wait after stop: %v", err)
	}
}

// Origins parse from the header a group's emit sets; a header that is not
// one falls back to the record itself; the key of a carried origin is the
// OriginKey of its parts.
func TestOriginHeader(t *testing.T) {
	topic, p, off, ok := parseOrigin([]byte("lf-viewing/3/1234567890123"))
	if !ok || string(topic) != "lf-viewing" || p != 3 || off != 1234567890123 {
		t.Fatalf("parsed %q %d %d %v", topic, p, off, ok)
	}
	for _, bad := range []string{"", "x", "/1/2", "t/1", "t//2", "t/1/", "t/-1/2", "t/1/2x", "t/99999999999/2", "t/1/99999999999999999999"} {
		if _, _, _, ok := parseOrigin([]byte(bad)); ok {
			t.Errorf("%q parsed as an origin", bad)
		}
	}
	if originKey("in", topic, p) != OriginKey("in", "lf-viewing", 3) {
		t.Fatal("a header's origin key differs from the same origin's")
	}
	if OriginKey("a", "b", 1) == OriginKey("a", "b", 2) || OriginKey("a", "b", 1) == OriginKey("b", "a", 1) ||
		OriginKey("ab", "c", 1) == OriginKey("a", "bc", 1) {
		t.Fatal("origin keys collide")
	}
}
