package attrs

import (
	"math/rand/v2"
	"testing"
)

func TestDictBitmapsFollowUpdates(t *testing.T) {
	d := NewDict()
	d.Set(0, "a")
	d.Set(1, "b")
	d.Set(2, "a")
	d.Set(2, "c") // moves
	d.Remove(1)
	d.Remove(7) // never set
	if got := d.Union([]string{"a", "c", "zzz"}).ToArray(); len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Fatalf("union %v", got)
	}
	if !d.Union([]string{"b"}).IsEmpty() || d.Value(1) != "" || d.Value(2) != "c" {
		t.Fatal("removed row still indexed")
	}
	m := d.Mask([]string{"c"})
	if !m[d.Code(2)] || m[d.Code(0)] || m[d.Code(1)] {
		t.Fatalf("mask %v", m)
	}
}

func TestIntsRangeIsSupersetWithFairEstimate(t *testing.T) {
	c := NewInts()
	rng := rand.New(rand.NewPCG(1, 1))
	vals := make([]int64, 5000)
	for i := range vals {
		vals[i] = int64(rng.IntN(300)) - 5
		c.Set(uint32(i), vals[i])
	}
	for i := 0; i < len(vals); i += 3 { // move a third
		vals[i] = int64(rng.IntN(300)) - 5
		c.Set(uint32(i), vals[i])
	}
	c.Remove(4999)
	f := func(x float64) *float64 { return &x }
	for _, r := range [][2]*float64{{f(10), nil}, {nil, f(37)}, {f(0.5), f(64)}, {f(100), f(100)}, {nil, f(-1)}, {f(1000), nil}} {
		bm, est := c.Range(r[0], r[1])
		exact := 0
		for i, v := range vals[:4999] {
			in := (r[0] == nil || float64(v) >= *r[0]) && (r[1] == nil || float64(v) <= *r[1])
			if in {
				exact++
				if !bm.Contains(uint32(i)) {
					t.Fatalf("range %v: row %d (%d) missing", r, i, v)
				}
			}
		}
		if bm.Contains(4999) {
			t.Fatal("removed row in range")
		}
		if est < 0.5*float64(exact)-10 || est > 2*float64(exact)+10 {
			t.Errorf("range %v: estimate %.0f, exact %d", r, est, exact)
		}
	}
}

func TestBucketsPartitionTheIntegers(t *testing.T) {
	prev := -1
	for v := int64(-3); v < 1<<20; v++ {
		b := bucket(v)
		if b < prev || b > prev+1 {
			t.Fatalf("bucket(%d) = %d after %d", v, b, prev)
		}
		lo, hi := bucketBounds(b)
		if v >= 0 && (float64(v) < lo || float64(v) > hi) {
			t.Fatalf("%d outside bucket %d [%v, %v]", v, b, lo, hi)
		}
		if v >= 16 && (hi-lo+1) > float64(v)/15 {
			t.Fatalf("bucket %d of %d spans %v", b, v, hi-lo+1)
		}
		prev = b
	}
}
