//go:build goexperiment.simd && amd64

package vec

import "simd/archsimd"

// SIMDInt8 names the kernel DotInt8 uses.
var SIMDInt8 = func() string {
	if hasAVX2 {
		return "avx2"
	}
	return "go"
}()

var hasAVX2 = archsimd.X86.AVX2()

// DotInt8 is the integer inner product of a and b (b at least as long as
// a): with AVX2 (Go's simd/archsimd, GOEXPERIMENT=simd), 16 codes at a
// time sign-extended to int16 (VPMOVSXBW) and multiplied pairwise into
// int32 lanes (VPMADDWD), four accumulators; the unrolled Go loop
// otherwise. |code| ≤ 127, so a lane cannot overflow below 66,000
// dimensions. (An AVX-512 variant through archsimd measured 5× slower on
// this machine's Go 1.26: not used.)
func DotInt8(a, b []int8) int32 {
	if !hasAVX2 || len(a) < 32 {
		return DotInt8Go(a, b)
	}
	b = b[:len(a)]
	var acc0, acc1, acc2, acc3 archsimd.Int32x8
	i := 0
	for ; i+64 <= len(a); i += 64 {
		acc0 = acc0.Add(archsimd.LoadInt8x16Slice(a[i:]).ExtendToInt16().DotProductPairs(archsimd.LoadInt8x16Slice(b[i:]).ExtendToInt16()))
		acc1 = acc1.Add(archsimd.LoadInt8x16Slice(a[i+16:]).ExtendToInt16().DotProductPairs(archsimd.LoadInt8x16Slice(b[i+16:]).ExtendToInt16()))
		acc2 = acc2.Add(archsimd.LoadInt8x16Slice(a[i+32:]).ExtendToInt16().DotProductPairs(archsimd.LoadInt8x16Slice(b[i+32:]).ExtendToInt16()))
		acc3 = acc3.Add(archsimd.LoadInt8x16Slice(a[i+48:]).ExtendToInt16().DotProductPairs(archsimd.LoadInt8x16Slice(b[i+48:]).ExtendToInt16()))
	}
	for ; i+16 <= len(a); i += 16 {
		acc0 = acc0.Add(archsimd.LoadInt8x16Slice(a[i:]).ExtendToInt16().DotProductPairs(archsimd.LoadInt8x16Slice(b[i:]).ExtendToInt16()))
	}
	var lanes [8]int32
	acc0.Add(acc1).Add(acc2.Add(acc3)).StoreSlice(lanes[:])
	s := (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
	for ; i < len(a); i++ {
		s += int32(a[i]) * int32(b[i])
	}
	return s
}
