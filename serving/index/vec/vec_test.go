package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDotMatchesPlainLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 3, 7, 8, 9, 31, 32, 33, 63, 64, 100, 383, 384, 1536} {
		a, b := make([]float32, n), make([]float32, n+5)
		var want float64
		for i := range a {
			a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			want += float64(a[i]) * float64(b[i])
		}
		kernels := map[string]func(a, b []float32) float32{"Dot": Dot, "Dot8": Dot8}
		for name, f := range DotKernels() {
			kernels[name] = f
		}
		for name, f := range kernels {
			if got := float64(f(a, b)); math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
				t.Errorf("%s n=%d: %v, want %v", name, n, got, want)
			}
		}
	}
}

var sink float32

func BenchmarkDot384(b *testing.B) {
	x, y := make([]float32, 384), make([]float32, 384)
	for i := range x {
		x[i], y[i] = float32(i%7), float32(i%5)
	}
	for name, f := range DotKernels() {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				sink += f(x, y)
			}
		})
	}
	b.Run("unrolled8", func(b *testing.B) {
		for b.Loop() {
			sink += Dot8(x, y)
		}
	})
}
