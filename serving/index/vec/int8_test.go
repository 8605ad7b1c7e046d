package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDotInt8MatchesPlainLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 100, 383, 384, 1024} {
		a, b := make([]int8, n), make([]int8, n+3)
		var want int32
		for i := range a {
			a[i], b[i] = int8(rng.IntN(255)-127), int8(rng.IntN(255)-127)
			want += int32(a[i]) * int32(b[i])
		}
		if got := DotInt8(a, b); got != want {
			t.Errorf("DotInt8 (%s) n=%d: %d, want %d", SIMDInt8, n, got, want)
		}
		if got := DotInt8Go(a, b); got != want {
			t.Errorf("DotInt8Go n=%d: %d, want %d", n, got, want)
		}
	}
	// Extremes: every lane at ±127 must not overflow.
	a, b := make([]int8, 4096), make([]int8, 4096)
	for i := range a {
		a[i], b[i] = -127, -127
	}
	if got, want := DotInt8(a, b), int32(4096*127*127); got != want {
		t.Errorf("extremes: %d, want %d", got, want)
	}
}

func TestQuantizeApproximatesDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const dim = 384
	unit := func() []float32 {
		v := make([]float32, dim)
		var n float64
		for i := range v {
			v[i] = float32(rng.NormFloat64())
			n += float64(v[i]) * float64(v[i])
		}
		for i := range v {
			v[i] /= float32(math.Sqrt(n))
		}
		return v
	}
	ca, cb := make([]int8, dim), make([]int8, dim)
	var worst float64
	for range 200 {
		a, b := unit(), unit()
		sa, sb := Quantize(ca, a), Quantize(cb, b)
		got := float64(sa * sb * float32(DotInt8(ca, cb)))
		want := float64(Dot(a, b))
		worst = max(worst, math.Abs(got-want))
		for i, x := range a {
			if d := math.Abs(float64(x - sa*float32(ca[i]))); d > float64(sa)/2+1e-7 {
				t.Fatalf("component %d: %v quantized to %d·%v", i, x, ca[i], sa)
			}
		}
	}
	// Each component is within half a step (max|v|/254 ≈ 0.0006 here): the
	// error of a 384-d product stays a few thousandths.
	if worst > 0.005 {
		t.Errorf("worst dot error %v", worst)
	}
	if s := Quantize(ca, make([]float32, dim)); s != 0 {
		t.Errorf("zero vector: scale %v", s)
	}
}

var sinkI int32

func BenchmarkDotInt8384(b *testing.B) {
	x, y := make([]int8, 384), make([]int8, 384)
	for i := range x {
		x[i], y[i] = int8(i%255-127), int8((i*7)%255-127)
	}
	b.Run("DotInt8-"+SIMDInt8, func(b *testing.B) {
		for b.Loop() {
			sinkI += DotInt8(x, y)
		}
	})
	b.Run("unrolled8", func(b *testing.B) {
		for b.Loop() {
			sinkI += DotInt8Go(x, y)
		}
	})
}

// BenchmarkInt8ThenFloat interleaves the int8 kernel with the float32 one
// (SSE) and scalar float maths, as a rescored search does: a kernel that
// left the AVX upper halves dirty would slow every SSE instruction after it.
func BenchmarkInt8ThenFloat(b *testing.B) {
	x, y := make([]int8, 384), make([]int8, 384)
	f, g := make([]float32, 384), make([]float32, 384)
	for i := range x {
		x[i], y[i] = int8(i%255-127), int8((i*7)%255-127)
		f[i], g[i] = float32(i%7), float32(i%5)
	}
	s := float32(0.5)
	for b.Loop() {
		sink += s * float32(DotInt8(x, y))
		sink += Dot(f, g)
	}
}
