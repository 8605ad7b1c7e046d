// Package vec is the vector maths of the serving index: float32 and int8
// inner products on contiguous storage. Dot and DotInt8 use AVX-512 or
// AVX2 kernels (Go's simd/archsimd) in a GOEXPERIMENT=simd build on amd64
// where the processor has them, else gonum's assembly kernel (SSE on
// amd64, pure Go elsewhere) and an unrolled Go loop; Dot8 and DotInt8Go
// are the portable loops they are tested against.
package vec

import "gonum.org/v1/gonum/blas/gonum"

var blas gonum.Implementation // stateless; methods have value receivers

// DotSSE is the inner product of a and b by gonum's kernel (SSE on amd64);
// it panics if b is shorter than a.
func DotSSE(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	return blas.Sdot(len(a), a, 1, b[:len(a)], 1)
}

// Dot8 is the inner product with an 8-way unrolled loop and independent
// accumulators (no assembly).
func Dot8(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x := a[i : i+8 : i+8]
		y := b[i : i+8 : i+8]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		s4 += x[4] * y[4]
		s5 += x[5] * y[5]
		s6 += x[6] * y[6]
		s7 += x[7] * y[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}
