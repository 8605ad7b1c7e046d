package binio

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestRoundTripAndChecksums(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Uvarint(7)
	w.Varint(-9)
	w.String("héllo")
	w.Blob([]byte{1, 2, 3})
	Slice(w, []float32{1.5, -2})
	Slice(w, []uint32{})
	big := make([]int8, 3*chunkBytes/2) // read in chunks when the size is unknown
	for i := range big {
		big[i] = int8(i)
	}
	Slice(w, big)
	w.EndSection()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{-1, int64(buf.Len())} {
		r := NewReader(bytes.NewReader(buf.Bytes()))
		r.SetSize(size)
		if r.Uvarint() != 7 || r.Varint() != -9 || r.String() != "héllo" || !bytes.Equal(r.Blob(), []byte{1, 2, 3}) {
			t.Fatalf("size %d: scalars differ", size)
		}
		if f := ReadSlice[float32](r); len(f) != 2 || f[0] != 1.5 || f[1] != -2 {
			t.Fatalf("size %d: floats %v", size, f)
		}
		if u := ReadSlice[uint32](r); len(u) != 0 {
			t.Fatalf("size %d: empty slice read as %v", size, u)
		}
		if b := ReadSlice[int8](r); !slices.Equal(b, big) {
			t.Fatalf("size %d: big slice differs", size)
		}
		r.EndSection("all")
		if err := r.Err(); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
	}
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)/2] ^= 1
	r := NewReader(bytes.NewReader(bad))
	r.Uvarint()
	r.Varint()
	_ = r.String()
	r.Blob()
	ReadSlice[float32](r)
	ReadSlice[uint32](r)
	ReadSlice[int8](r)
	r.EndSection("all")
	if r.Err() == nil || !strings.Contains(r.Err().Error(), "checksum") {
		t.Fatalf("flipped byte: %v", r.Err())
	}
}

// TestCorruptLengthDoesNotAllocate: a length claiming 2^39 floats in a
// 20-byte input is an error, without allocating terabytes, with or
// without a known size.
func TestCorruptLengthDoesNotAllocate(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Uvarint(1 << 39)
	w.Bytes(make([]byte, 16))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{-1, int64(buf.Len())} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := NewReader(bytes.NewReader(buf.Bytes()))
		r.SetSize(size)
		if s := ReadSlice[float32](r); s != nil || r.Err() == nil {
			t.Fatalf("size %d: read %d elements, err %v", size, len(s), r.Err())
		}
		runtime.ReadMemStats(&after)
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 4*chunkBytes {
			t.Fatalf("size %d: allocated %d bytes for a 20-byte input", size, grown)
		}
	}
}
