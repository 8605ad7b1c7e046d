//go:build unix

package hnsw

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkFloatFileRead is what one rescoring read costs: a pread of one
// 384-d float32 vector (1,536 bytes) at a random row of a 200k-row file
// (293 MB), with the file in the page cache ("cached") and after dropping
// it from there every 1,000 reads ("cold": most reads go to the disk).
// bytes/op is the vector's size; the disk reads whole pages.
func BenchmarkFloatFileRead(b *testing.B) {
	const dim, rows, chunk = 384, 200_000, 4096
	ff, err := openFloatFile(b.TempDir(), dim)
	if err != nil {
		b.Fatal(err)
	}
	defer ff.close()
	rng := rand.New(rand.NewPCG(1, 2))
	block := make([]float32, chunk*dim)
	for range rows / chunk {
		for i := range block {
			block[i] = float32(rng.NormFloat64())
		}
		if err := ff.appendRows(asBytes(block)); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]float32, dim)
	for _, cold := range []bool{false, true} {
		name := "cached"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(4 * dim))
			for i := range b.N {
				if cold && i%1000 == 0 {
					b.StopTimer()
					if err := ff.evict(); err != nil {
						b.Skip("cannot drop the page cache:", err)
					}
					b.StartTimer()
				}
				if err := ff.read(uint32(rng.IntN(ff.rows)), buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
