// Package binio is the little-endian framing of serving/index snapshots:
// length-prefixed arrays of fixed-size numbers copied as memory, varints,
// strings, and a CRC-32C over each section.
package binio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"unsafe"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBigEndian: snapshots copy arrays as memory, little-endian only.
var ErrBigEndian = errors.New("binio: snapshots need a little-endian machine")

// LittleEndian reports whether the machine is little-endian.
func LittleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// Number is a fixed-size element an array may hold.
type Number interface {
	~int8 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~int32 | ~int64 | ~float32 | ~float64
}

// Writer writes framed values and checksums sections. The first error
// sticks: check Err (or Flush) at the end.
type Writer struct {
	w   *bufio.Writer
	crc hash.Hash32
	err error
	n   int64
	tmp [binary.MaxVarintLen64]byte
}

// NewWriter writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 1<<20), crc: crc32.New(castagnoli)}
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	w.crc.Write(b)
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
}

// Bytes writes b raw (no length).
func (w *Writer) Bytes(b []byte) { w.write(b) }

// Uvarint writes x.
func (w *Writer) Uvarint(x uint64) { w.write(w.tmp[:binary.PutUvarint(w.tmp[:], x)]) }

// Varint writes x.
func (w *Writer) Varint(x int64) { w.write(w.tmp[:binary.PutVarint(w.tmp[:], x)]) }

// String writes a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uvarint(uint64(len(s)))
	w.write(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Blob writes length-prefixed bytes.
func (w *Writer) Blob(b []byte) {
	w.Uvarint(uint64(len(b)))
	w.write(b)
}

// Slice writes s's length and its elements as memory.
func Slice[T Number](w *Writer, s []T) {
	w.Uvarint(uint64(len(s)))
	if len(s) > 0 {
		w.write(unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0]))))
	}
}

// Fail records err (if none yet): a value's source failed.
func (w *Writer) Fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Write implements io.Writer: b raw, as Bytes.
func (w *Writer) Write(b []byte) (int, error) {
	w.write(b)
	if w.err != nil {
		return 0, w.err
	}
	return len(b), nil
}

// EndSection writes the CRC-32C of everything since the previous
// EndSection (or the start) and starts a new section.
func (w *Writer) EndSection() {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], w.crc.Sum32())
	w.write(b[:])
	w.crc.Reset()
}

// Flush writes out the buffer and returns the first error.
func (w *Writer) Flush() error {
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// Err is the first error.
func (w *Writer) Err() error { return w.err }

// Written is the number of bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Reader reads what Writer wrote. The first error sticks: reads after it
// return zero values; check Err. A corrupt length cannot make it allocate
// more than the input holds: with a known size (SetSize) a length beyond
// the bytes left is an error; without one, large arrays grow in chunks as
// their bytes arrive.
type Reader struct {
	r     *bufio.Reader
	crc   hash.Hash32
	err   error
	size  int64 // −1: unknown
	nread int64
}

const chunkBytes = 16 << 20

// SetSize tells the reader how many bytes the input holds in all.
func (r *Reader) SetSize(n int64) { r.size = n }

// NewReader reads from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 1<<20), crc: crc32.New(castagnoli), size: -1}
}

// Fail records err (if none yet).
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Err is the first error.
func (r *Reader) Err() error { return r.err }

func (r *Reader) read(b []byte) {
	if r.err != nil {
		clear(b)
		return
	}
	n, err := io.ReadFull(r.r, b)
	r.nread += int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("binio: truncated: %w", err)
		clear(b)
		return
	}
	r.crc.Write(b)
}

// Bytes reads len(b) raw bytes.
func (r *Reader) Bytes(b []byte) { r.read(b) }

type byteReader struct{ r *Reader }

func (b byteReader) ReadByte() (byte, error) {
	var x [1]byte
	b.r.read(x[:])
	return x[0], b.r.err
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	x, err := binary.ReadUvarint(byteReader{r})
	r.Fail(err)
	return x
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	x, err := binary.ReadVarint(byteReader{r})
	r.Fail(err)
	return x
}

// Len reads a length (of elements of elemSize bytes: 1 for a count) and
// checks it against the bytes left when the size is known.
func (r *Reader) Len() int { return r.lenOf(1) }

func (r *Reader) lenOf(elemSize int) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if n > 1<<40 || (r.size >= 0 && n*uint64(elemSize) > uint64(r.size-r.nread)) {
		r.Fail(fmt.Errorf("binio: length %d beyond the input (corrupt?)", n))
		return 0
	}
	return int(n)
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	n := r.lenOf(1)
	if r.size < 0 && n > chunkBytes {
		return string(readChunked[byte](r, n))
	}
	if n == 0 || r.err != nil {
		return ""
	}
	b := make([]byte, n)
	r.read(b)
	return unsafe.String(&b[0], n)
}

// Blob reads length-prefixed bytes.
func (r *Reader) Blob() []byte {
	n := r.lenOf(1)
	if r.size < 0 && n > chunkBytes {
		return readChunked[byte](r, n)
	}
	if n == 0 || r.err != nil {
		return nil
	}
	b := make([]byte, n)
	r.read(b)
	return b
}

// ReadSlice reads an array written by Slice.
func ReadSlice[T Number](r *Reader) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	n := r.lenOf(size)
	if n == 0 || r.err != nil {
		return nil
	}
	if r.size < 0 && n*size > chunkBytes {
		return readChunked[T](r, n)
	}
	s := make([]T, n)
	r.read(unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), n*size))
	return s
}

// ReadSliceFunc reads an array written by Slice without holding it: its
// bytes are handed to fn a chunk at a time (fn must not keep them). It
// returns the array's length (elements); a corrupt length fails at the end
// of the input, as ReadSlice's.
func ReadSliceFunc[T Number](r *Reader, fn func([]byte) error) int {
	var zero T
	size := int(unsafe.Sizeof(zero))
	n := r.lenOf(size)
	if n == 0 || r.err != nil {
		return 0
	}
	buf := make([]byte, min(n*size, 4<<20))
	for left := n * size; left > 0 && r.err == nil; {
		b := buf[:min(left, len(buf))]
		r.read(b)
		if r.err == nil {
			r.Fail(fn(b))
		}
		left -= len(b)
	}
	if r.err != nil {
		return 0
	}
	return n
}

// readChunked reads n elements without trusting n: the slice grows a chunk
// at a time, so a corrupt length fails at the end of the input having
// allocated about what the input held.
func readChunked[T Number](r *Reader, n int) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	per := chunkBytes / size
	s := make([]T, 0, per)
	for len(s) < n && r.err == nil {
		m := min(n-len(s), per)
		s = append(s, make([]T, m)...)
		part := s[len(s)-m:]
		r.read(unsafe.Slice((*byte)(unsafe.Pointer(&part[0])), m*size))
	}
	if r.err != nil {
		return nil
	}
	return s
}

// EndSection reads a section's CRC-32C and checks it.
func (r *Reader) EndSection(name string) {
	sum := r.crc.Sum32()
	var b [4]byte
	r.read(b[:])
	if r.err == nil && binary.LittleEndian.Uint32(b[:]) != sum {
		r.err = fmt.Errorf("binio: checksum mismatch in %s", name)
	}
	r.crc.Reset()
}
