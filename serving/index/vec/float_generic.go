//go:build !(goexperiment.simd && amd64)

package vec

// SIMDFloat names the kernel Dot uses.
const SIMDFloat = "sse (gonum)"

// Dot is the inner product of a and b; it panics if b is shorter than a.
// This build has no simd/archsimd kernel (build with GOEXPERIMENT=simd on
// amd64 for the AVX2 and AVX-512 ones): gonum's.
func Dot(a, b []float32) float32 { return DotSSE(a, b) }

// DotKernels are the float kernels this build can run, by name, for tests
// and benchmarks.
func DotKernels() map[string]func(a, b []float32) float32 {
	return map[string]func(a, b []float32) float32{"sse": DotSSE}
}
