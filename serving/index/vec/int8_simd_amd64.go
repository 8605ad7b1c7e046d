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
// a). With AVX2 (Go's simd/archsimd, GOEXPERIMENT=simd), 32 codes at a
// time: |a| as unsigned bytes times b carrying a's sign (VPSIGNB), summed
// in pairs to int16 (VPMADDUBSW: |a|·|b| ≤ 127·127, a pair ≤ 32,258, no
// saturation), then in pairs to int32 (VPMADDWD by ones); the unrolled Go
// loop otherwise. Codes are in −127..127 (vec.Quantize), so an int32 lane
// cannot overflow below 66,000 dimensions. (Code −128 would break the
// pair bound: Quantize never makes it.)
func DotInt8(a, b []int8) int32 {
	if !hasAVX2 || len(a) < 32 {
		return DotInt8Go(a, b)
	}
	b = b[:len(a)]
	ones := archsimd.BroadcastInt16x16(1)
	var acc0, acc1 archsimd.Int32x8
	i := 0
	for ; i+64 <= len(a); i += 64 {
		x0 := archsimd.LoadInt8x32Slice(a[i:])
		y0 := archsimd.LoadInt8x32Slice(b[i:])
		x1 := archsimd.LoadInt8x32Slice(a[i+32:])
		y1 := archsimd.LoadInt8x32Slice(b[i+32:])
		p0 := x0.Abs().AsUint8x32().DotProductPairsSaturated(y0.CopySign(x0))
		p1 := x1.Abs().AsUint8x32().DotProductPairsSaturated(y1.CopySign(x1))
		acc0 = acc0.Add(p0.DotProductPairs(ones))
		acc1 = acc1.Add(p1.DotProductPairs(ones))
	}
	for ; i+32 <= len(a); i += 32 {
		x0 := archsimd.LoadInt8x32Slice(a[i:])
		y0 := archsimd.LoadInt8x32Slice(b[i:])
		acc0 = acc0.Add(x0.Abs().AsUint8x32().DotProductPairsSaturated(y0.CopySign(x0)).DotProductPairs(ones))
	}
	var lanes [8]int32
	acc0.Add(acc1).StoreSlice(lanes[:])
	// Leave no dirty upper halves behind (VZEROUPPER): Go's own float code
	// and gonum's kernel are SSE, which pays for them on every instruction
	// (BenchmarkInt8ThenFloat: 540–1,400 ns without, 200 ns with; the
	// quantized 1M benchmark ran 2–4× slower than float32 without it).
	archsimd.ClearAVXUpperBits()
	s := (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
	for ; i < len(a); i++ {
		s += int32(a[i]) * int32(b[i])
	}
	return s
}
