package pipeline

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	var budget, cached atomic.Int64
	budget.Store(1 << 20)
	l := newLRU[int](2, &budget, &cached)
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

// sized is a value of a given estimated size.
type sized struct{ n int }

func (v *sized) SizeBytes() int { return v.n }

func TestLRUHonoursItsByteBound(t *testing.T) {
	// Every entry costs its value's estimate and its bookkeeping.
	one := cachedSize("00", &sized{n: 1000})
	var budget, cached atomic.Int64
	budget.Store(10 * one)
	l := newLRU[sized](1000, &budget, &cached)
	vals := make([]*sized, 100)
	for i := range vals {
		vals[i] = &sized{n: 1000}
		l.put(fmt.Sprintf("%02d", i), vals[i])
		if l.bytes > 10*one || cached.Load() != l.bytes {
			t.Fatalf("after %d puts: %d bytes cached (counter %d), bound %d", i+1, l.bytes, cached.Load(), 10*one)
		}
	}
	if l.len() != 10 {
		t.Fatalf("%d values of %d bytes under a %d-byte bound, want 10", l.len(), one, 10*one)
	}
	if _, ok := l.get("99"); !ok {
		t.Fatal("the newest value was evicted")
	}
	// A value that grew in place counts its new size once a flush
	// measures it again: older values make room.
	vals[99].n += int(5 * one)
	l.resize("99", vals[99])
	if l.bytes > 10*one || l.len() != 5 {
		t.Fatalf("after growing: %d values, %d bytes", l.len(), l.bytes)
	}
	if _, ok := l.get("94"); ok {
		t.Fatal("94 is among the least recently used and should have gone")
	}
	// One value over the whole bound stays alone (the one in use).
	l.put("big", &sized{n: int(20 * one)})
	if l.len() != 1 || l.bytes != cachedSize("big", &sized{n: int(20 * one)}) {
		t.Fatalf("a value over the bound: %d values, %d bytes", l.len(), l.bytes)
	}
	l.remove("big")
	if l.bytes != 0 || cached.Load() != 0 {
		t.Fatalf("empty cache counts %d bytes (counter %d)", l.bytes, cached.Load())
	}
}

func TestStateCacheBytesSharedByPartitions(t *testing.T) {
	m := NewMetrics(nil)
	s := NewState[sized]("t-table", nil, StateOptions{CacheBytes: 40_000, Metrics: m})
	for p := range int32(4) {
		for i := range 1000 {
			s.part(p).cache.put(fmt.Sprint(i), &sized{n: 100 + i%50})
		}
	}
	// The first partitions filled a larger share before the others came;
	// each shrinks to its share with its next put.
	for p := range int32(4) {
		s.part(p).cache.put("again", &sized{n: 100})
	}
	if got := s.CachedBytes(); got > 40_000 || got < 25_000 {
		t.Fatalf("4 partitions cache %d bytes, bound 40000", got)
	}
	for p, ps := range s.partitions() {
		if ps.cache.bytes > 10_000 {
			t.Fatalf("partition %d caches %d bytes, its share is 10000", p, ps.cache.bytes)
		}
	}
	s.Reset(nil)
	if s.CachedBytes() != 0 || s.Len() != 0 {
		t.Fatalf("after a reset: %d bytes, %d values", s.CachedBytes(), s.Len())
	}
	// Two partitions of the four assigned now: each has half the bound.
	s.Reset(map[int32]int64{0: 0, 1: 0})
	for i := range 1000 {
		s.part(0).cache.put(fmt.Sprint(i), &sized{n: 100})
	}
	if got := s.CachedBytes(); got > 20_000 || got < 15_000 {
		t.Fatalf("one of two assigned partitions caches %d bytes, its share is 20000", got)
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
