//go:build !(goexperiment.simd && amd64)

package vec

// SIMDInt8 names the kernel DotInt8 uses.
const SIMDInt8 = "go"

// DotInt8 is the integer inner product of a and b (b at least as long as
// a). This build has no SIMD kernel (build with GOEXPERIMENT=simd on amd64
// for the AVX2 one): the unrolled Go loop.
func DotInt8(a, b []int8) int32 { return DotInt8Go(a, b) }
