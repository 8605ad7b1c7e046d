package vec

import "math"

// Quantize writes v's int8 codes into dst (len(v)) with one scale for the
// whole vector (symmetric, absolute maximum: v[i] ≈ scale·dst[i], codes in
// −127..127) and returns the scale; 0 for a zero vector. A per-vector scale
// needs no training set, keeps in-place updates local, and makes the inner
// product of two quantized vectors a plain integer one:
// a·b ≈ scaleA·scaleB·DotInt8(codesA, codesB).
func Quantize(dst []int8, v []float32) float32 {
	dst = dst[:len(v)]
	var m float32
	for _, x := range v {
		if x < 0 {
			x = -x
		}
		if x > m {
			m = x
		}
	}
	if m == 0 || math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
		clear(dst)
		return 0
	}
	inv := 127 / m
	for i, x := range v {
		r := x * inv
		if r >= 0 {
			r += 0.5
		} else {
			r -= 0.5
		}
		dst[i] = int8(max(-127, min(127, int32(r))))
	}
	return m / 127
}

// DotInt8Go is the integer inner product of a and b in portable Go: an
// 8-way unrolled loop with independent accumulators. It panics if b is
// shorter than a. DotInt8 uses SIMD where the build has it.
func DotInt8Go(a, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 int32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x := a[i : i+8 : i+8]
		y := b[i : i+8 : i+8]
		s0 += int32(x[0]) * int32(y[0])
		s1 += int32(x[1]) * int32(y[1])
		s2 += int32(x[2]) * int32(y[2])
		s3 += int32(x[3]) * int32(y[3])
		s4 += int32(x[4]) * int32(y[4])
		s5 += int32(x[5]) * int32(y[5])
		s6 += int32(x[6]) * int32(y[6])
		s7 += int32(x[7]) * int32(y[7])
	}
	for ; i < len(a); i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return (s0 + s1) + (s2 + s3) + (s4 + s5) + (s6 + s7)
}
