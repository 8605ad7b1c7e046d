// Package wire writes and reads the compact binary forms of livefeed's own
// records and table values (events.UserSignal, the tables' small fields
// and applied offsets): uvarint-prefixed strings and lists, varints,
// little-endian floats, times as Unix seconds and nanoseconds.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrTruncated: the data ends before the value read, or a length claims
// more than is left.
var ErrTruncated = errors.New("truncated")

// AppendString appends s's length (uvarint) and bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// PrefixLength inserts the uvarint length of b[at:] before it: a body is
// appended in place first and its length slid in front, so no buffer is
// needed per length-prefixed part.
func PrefixLength(b []byte, at int) []byte {
	n := len(b) - at
	var pre [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(pre[:], uint64(n))
	b = append(b, pre[:k]...)
	copy(b[at+k:], b[at:at+n])
	copy(b[at:], pre[:k])
	return b
}

// AppendSortedKeys appends m's keys to out, sorted, for encodings that
// must not depend on map order; with a stack buffer as out it allocates
// nothing.
func AppendSortedKeys[K ~string, V any](out []K, m map[K]V) []K {
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// AppendFloat64 appends f's IEEE 754 bits, little-endian.
func AppendFloat64(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// AppendFloat32s appends v's length (uvarint) and its floats' bits,
// little-endian.
func AppendFloat32s(b []byte, v []float32) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// AppendTime appends Unix seconds (varint) and nanoseconds (uvarint): any
// time, the zero time included, round-trips (in UTC).
func AppendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// Reader reads binary values from a byte slice. The first error sticks and
// every read after it returns a zero value. Strings are substrings of one
// copy of the data, made on the first string read, not an allocation each.
type Reader struct {
	src, data []byte
	all       string
	err       error
}

// NewReader reads data.
func NewReader(data []byte) *Reader { return &Reader{src: data, data: data} }

// Err is the first error, wrapping ErrTruncated.
func (r *Reader) Err() error { return r.err }

// Rest returns the bytes not read yet.
func (r *Reader) Rest() []byte { return r.data }

// End returns the first error, or an error if bytes are left.
func (r *Reader) End() error {
	if r.err == nil && len(r.data) > 0 {
		return fmt.Errorf("%d bytes after the end", len(r.data))
	}
	return r.err
}

func (r *Reader) fail() {
	if r.err == nil {
		r.err = ErrTruncated
	}
	r.data = nil
}

// overlong reports a varint of k bytes that a shorter one could have said
// (a last byte of 0): what decodes must re-encode to the same bytes.
func overlong(b []byte, k int) bool { return k > 1 && b[k-1] == 0 }

// Uvarint reads an unsigned varint in its shortest form.
func (r *Reader) Uvarint() uint64 {
	v, k := binary.Uvarint(r.data)
	if k <= 0 || overlong(r.data, k) {
		r.fail()
		return 0
	}
	r.data = r.data[k:]
	return v
}

// Varint reads a signed varint in its shortest form.
func (r *Reader) Varint() int64 {
	v, k := binary.Varint(r.data)
	if k <= 0 || overlong(r.data, k) {
		r.fail()
		return 0
	}
	r.data = r.data[k:]
	return v
}

// Count reads a number of entries of at least min bytes each, bounded by
// what is left.
func (r *Reader) Count(min int) int {
	n := r.Uvarint()
	if n > uint64(len(r.data)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	n := r.Count(1)
	if r.all == "" {
		r.all = string(r.src)
	}
	at := len(r.src) - len(r.data)
	r.data = r.data[n:]
	return r.all[at : at+n]
}

// Bytes reads a length-prefixed byte string into a new slice; nil if it is
// empty.
func (r *Reader) Bytes() []byte {
	n := r.Count(1)
	if n == 0 {
		return nil
	}
	b := append([]byte(nil), r.data[:n]...)
	r.data = r.data[n:]
	return b
}

// Uint32 reads 4 bytes, little-endian.
func (r *Reader) Uint32() uint32 {
	if len(r.data) < 4 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(r.data)
	r.data = r.data[4:]
	return v
}

// Uint64 reads 8 bytes, little-endian.
func (r *Reader) Uint64() uint64 {
	if len(r.data) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.data)
	r.data = r.data[8:]
	return v
}

// Float64 reads what AppendFloat64 wrote.
func (r *Reader) Float64() float64 { return math.Float64frombits(r.Uint64()) }

// Float32s reads what AppendFloat32s wrote; nil for none.
func (r *Reader) Float32s() []float32 {
	n := r.Count(4)
	if n == 0 {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(r.Uint32())
	}
	return v
}

// Time reads what AppendTime wrote, in UTC.
func (r *Reader) Time() time.Time {
	sec := r.Varint()
	nsec := r.Uvarint()
	// ±2^40 s (±34,000 years) covers the zero time (year 1) and keeps
	// time.Unix from overflowing, so a time read re-encodes the same.
	if nsec >= 1e9 || sec > 1<<40 || sec < -(1<<40) {
		r.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
