package features

import (
	"runtime"
	"testing"
	"time"
)

// MapBytes is within a third of what maps of that many entries take on
// the heap, for small and large maps.
func TestMapBytesNearTheHeap(t *testing.T) {
	heap := func(n int) float64 { // bytes per map of n entries
		const maps = 2000
		keep := make([]map[uint64]int64, maps)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range keep {
			m := make(map[uint64]int64)
			for k := range n {
				m[uint64(k)] = int64(k)
			}
			keep[i] = m
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(keep)
		return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / maps
	}
	heap(1) // the first measure of a process is off
	for _, n := range []int{1, 3, 8, 9, 40, 1000} {
		got, want := heap(n), float64(MapBytes(n, 16))
		if got < want*2/3 || got > want*4/3 {
			t.Errorf("a map of %d entries takes %.0f bytes, estimated %.0f", n, got, want)
		}
	}
}

// A feature state's estimate grows with its tiles.
func TestStateSizeBytesGrows(t *testing.T) {
	set, err := NewSet(Definition{Name: "c", Entity: "livestream", Sources: []string{"chat"}, Aggregation: Count,
		Window: SlidingWindow(time.Hour, time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var st State
	base := st.SizeBytes()
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		set.Apply(&st, Observation{Source: "chat", Time: t0.Add(time.Duration(i) * time.Minute)})
	}
	if got := st.SizeBytes() - base; got < 30*32 {
		t.Fatalf("30 tiles add %d bytes", got)
	}
}
