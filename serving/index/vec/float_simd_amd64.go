//go:build goexperiment.simd && amd64

package vec

import "simd/archsimd"

var (
	hasAVX512 = archsimd.X86.AVX512()
	hasFMA    = archsimd.X86.AVX2() && archsimd.X86.FMA()
)

// SIMDFloat names the kernel Dot uses.
var SIMDFloat = func() string {
	if hasFMA {
		return "avx2+fma"
	}
	return "sse (gonum)"
}()

// Dot is the inner product of a and b; it panics if b is shorter than a.
// With AVX2 and FMA, 32 floats a step in four fused multiply-add
// accumulators of 8 lanes, the rest by the plain loop; otherwise gonum's
// SSE kernel. (Sums are in another order than the plain loop's: results
// differ in the last bits.) The AVX-512 kernel (DotKernels["avx512"]) is
// not chosen: at 384 dimensions it measured no faster than AVX2, with
// occasional slow runs (BenchmarkDot384).
func Dot(a, b []float32) float32 {
	if hasFMA && len(a) >= 32 {
		return dot256(a, b)
	}
	return DotSSE(a, b)
}

func dot512(a, b []float32) float32 {
	b = b[:len(a)]
	var acc0, acc1 archsimd.Float32x16
	i := 0
	for ; i+32 <= len(a); i += 32 {
		x := (*[32]float32)(a[i : i+32])
		y := (*[32]float32)(b[i : i+32])
		acc0 = archsimd.LoadFloat32x16((*[16]float32)(x[:16])).MulAdd(archsimd.LoadFloat32x16((*[16]float32)(y[:16])), acc0)
		acc1 = archsimd.LoadFloat32x16((*[16]float32)(x[16:])).MulAdd(archsimd.LoadFloat32x16((*[16]float32)(y[16:])), acc1)
	}
	var lanes [16]float32
	acc0.Add(acc1).StoreSlice(lanes[:])
	// No dirty upper halves left for the SSE code that follows (see
	// DotInt8).
	archsimd.ClearAVXUpperBits()
	s := sum16(&lanes)
	for ; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

func dot256(a, b []float32) float32 {
	b = b[:len(a)]
	var acc0, acc1, acc2, acc3 archsimd.Float32x8
	i := 0
	for ; i+32 <= len(a); i += 32 {
		x := (*[32]float32)(a[i : i+32])
		y := (*[32]float32)(b[i : i+32])
		acc0 = archsimd.LoadFloat32x8((*[8]float32)(x[0:8])).MulAdd(archsimd.LoadFloat32x8((*[8]float32)(y[0:8])), acc0)
		acc1 = archsimd.LoadFloat32x8((*[8]float32)(x[8:16])).MulAdd(archsimd.LoadFloat32x8((*[8]float32)(y[8:16])), acc1)
		acc2 = archsimd.LoadFloat32x8((*[8]float32)(x[16:24])).MulAdd(archsimd.LoadFloat32x8((*[8]float32)(y[16:24])), acc2)
		acc3 = archsimd.LoadFloat32x8((*[8]float32)(x[24:32])).MulAdd(archsimd.LoadFloat32x8((*[8]float32)(y[24:32])), acc3)
	}
	var lanes [16]float32
	acc0.Add(acc1).StoreSlice(lanes[:8])
	acc2.Add(acc3).StoreSlice(lanes[8:])
	archsimd.ClearAVXUpperBits()
	s := sum16(&lanes)
	for ; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

func sum16(l *[16]float32) float32 {
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) +
		((l[8] + l[9]) + (l[10] + l[11])) + ((l[12] + l[13]) + (l[14] + l[15]))
}

// DotKernels are the float kernels this processor can run, by name, for
// tests and benchmarks.
func DotKernels() map[string]func(a, b []float32) float32 {
	k := map[string]func(a, b []float32) float32{"sse": DotSSE}
	if hasAVX512 {
		k["avx512"] = func(a, b []float32) float32 {
			if len(a) < 32 {
				return DotSSE(a, b)
			}
			return dot512(a, b)
		}
	}
	if hasFMA {
		k["avx2"] = func(a, b []float32) float32 {
			if len(a) < 32 {
				return DotSSE(a, b)
			}
			return dot256(a, b)
		}
	}
	return k
}
