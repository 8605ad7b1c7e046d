//go:build unix

package hnsw

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/livefeed/livefeed/serving/index/internal/binio"
)

// TestFloatsOnDisk: a quantized graph with its float32 vectors in a mapped
// file builds, searches, updates and snapshots exactly as one with them in
// the heap, and the heap no longer holds them.
func TestFloatsOnDisk(t *testing.T) {
	const dim = 48
	vs := clustered(1500, dim, 10, 3)
	dir := t.TempDir()
	heap := New(dim, Config{Seed: 1, Quantize: true})
	disk := New(dim, Config{Seed: 1, Quantize: true, FloatsDir: dir})
	defer disk.Close()
	if !disk.FloatsOnDisk() || disk.FloatsErr() != nil {
		t.Fatalf("floats not on disk: %v", disk.FloatsErr())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("the vector file is not unlinked: %v", ents)
	}
	for _, g := range []*Graph{heap, disk} {
		for _, v := range vs {
			g.Add(v)
		}
		g.Update(7, negate(vs[7]))
		g.Delete(11)
		g.Add(vs[20]) // reuses 11
	}
	vs[7], vs[11] = negate(vs[7]), vs[20]
	if _, resc := disk.VectorBytes(); resc != 0 || disk.FileBytes() != len(vs)*dim*4 {
		t.Fatalf("rescoring bytes in the heap %d, file %d", resc, disk.FileBytes())
	}
	for n := range uint32(len(vs)) {
		if !slices.Equal(disk.Vector(n), vs[n]) || !disk.Same(n, vs[n]) || disk.Same(n, vs[(n+1)%uint32(len(vs))]) {
			t.Fatalf("node %d: vector on disk differs", n)
		}
	}
	same := func(a, b *Graph) {
		t.Helper()
		for _, q := range vs[:40] {
			ra, _ := a.Search(q, Params{K: 10, Ef: 64}, nil)
			rb, _ := b.Search(q, Params{K: 10, Ef: 64}, nil)
			if !slices.Equal(ra, rb) {
				t.Fatalf("results differ:\n%v\n%v", ra, rb)
			}
			for _, r := range ra {
				if !slices.Equal(a.Vector(r.Node), b.Vector(r.Node)) {
					t.Fatalf("node %d: vectors differ", r.Node)
				}
			}
		}
	}
	same(heap, disk)
	if err := disk.EvictFloats(); err != nil {
		t.Fatal(err)
	}
	same(heap, disk) // read back from the disk

	// Snapshots: the encoding does not depend on where the floats were,
	// and either loads either way.
	enc := func(g *Graph) []byte {
		var b bytes.Buffer
		w := binio.NewWriter(&b)
		g.WriteTo(w)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	eh, ed := enc(heap), enc(disk)
	if !bytes.Equal(eh, ed) {
		t.Fatal("snapshot encodings differ")
	}
	for _, o := range []ReadOptions{{}, {FloatsDir: dir}} {
		r, err := ReadGraphWith(binio.NewReader(bytes.NewReader(ed)), o)
		if err != nil {
			t.Fatal(err)
		}
		if r.FloatsOnDisk() != (o.FloatsDir != "") {
			t.Fatalf("restored with %+v: floats on disk %v", o, r.FloatsOnDisk())
		}
		same(heap, r)
		if !bytes.Equal(enc(r), eh) {
			t.Fatal("restored graph encodes differently")
		}
		r.Close()
	}
	// A truncated snapshot fails and releases its file.
	if _, err := ReadGraphWith(binio.NewReader(bytes.NewReader(ed[:len(ed)/2])), ReadOptions{FloatsDir: dir}); err == nil {
		t.Fatal("truncated snapshot read")
	}
}

// TestFloatsDirUnusable: a directory that cannot hold the file leaves the
// floats in the heap and says why.
func TestFloatsDirUnusable(t *testing.T) {
	g := New(8, Config{Quantize: true, FloatsDir: "/nonexistent/dir"})
	if g.FloatsOnDisk() || g.FloatsErr() == nil || !g.HasFloats() {
		t.Fatalf("on disk %v, err %v, floats %v", g.FloatsOnDisk(), g.FloatsErr(), g.HasFloats())
	}
	v := []float32{1, 0, 0, 0, 0, 0, 0, 0}
	g.Add(v)
	if !slices.Equal(g.Vector(0), v) {
		t.Fatal("vector lost")
	}
}
