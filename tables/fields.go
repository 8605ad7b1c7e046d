package tables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
)

// binaryFields is a table value whose small fields have a binary form
// (codec version 3) instead of JSON: the user table, whose flushes encoded
// up to 50 recent streams' times as RFC 3339 text for every changed user
// and cost 7 % of the processors' CPU.
type binaryFields interface {
	appendFields(b []byte) []byte
	readFields(r *fieldReader) error
}

// appendFields appends the user's small fields: id, taste (vector, weight,
// time), categories (sorted by name), recent streams, signal counts (sorted
// by kind), last event.
func (u *User) appendFields(b []byte) []byte {
	b = appendString(b, u.UserID)
	b = binary.AppendUvarint(b, uint64(len(u.Taste.Vector)))
	for _, x := range u.Taste.Vector {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	b = appendFloat(b, u.Taste.Weight)
	b = appendTime(b, u.Taste.Time)
	b = binary.AppendUvarint(b, uint64(len(u.Categories)))
	for _, c := range slices.Sorted(maps.Keys(u.Categories)) {
		b = appendString(b, c)
		b = appendFloat(b, u.Categories[c].Value)
		b = appendTime(b, u.Categories[c].Time)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Recent)))
	for _, r := range u.Recent {
		b = appendString(b, r.LivestreamID)
		b = appendString(b, string(r.Kind))
		b = appendTime(b, r.Time)
	}
	b = binary.AppendUvarint(b, uint64(len(u.Signals)))
	for _, k := range slices.Sorted(maps.Keys(u.Signals)) {
		b = appendString(b, string(k))
		b = binary.AppendVarint(b, u.Signals[k])
	}
	return appendTime(b, u.LastEvent)
}

func (u *User) readFields(r *fieldReader) error {
	*u = User{UserID: r.string()}
	if n := r.count(4); n > 0 {
		u.Taste.Vector = make(events.Vector, n)
		for i := range u.Taste.Vector {
			u.Taste.Vector[i] = math.Float32frombits(uint32(r.fixed(4)))
		}
	}
	u.Taste.Weight = r.float()
	u.Taste.Time = r.time()
	if n := r.count(11); n > 0 { // a category takes at least 11 bytes
		u.Categories = make(map[string]models.DecayedValue, n)
		for range n {
			c := r.string()
			u.Categories[c] = models.DecayedValue{Value: r.float(), Time: r.time()}
		}
	}
	if n := r.count(4); n > 0 {
		u.Recent = make([]RecentStream, n)
		for i := range u.Recent {
			u.Recent[i] = RecentStream{LivestreamID: r.string(), Kind: events.SignalKind(r.string()), Time: r.time()}
		}
	}
	if n := r.count(2); n > 0 {
		u.Signals = make(map[events.SignalKind]int64, n)
		for range n {
			k := events.SignalKind(r.string())
			u.Signals[k] = r.varint()
		}
	}
	u.LastEvent = r.time()
	if r.err == nil && len(r.data) > 0 {
		r.err = fmt.Errorf("%d bytes after the fields", len(r.data))
	}
	return r.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendTime appends Unix seconds (varint) and nanoseconds (uvarint): any
// time, the zero time included, round-trips (in UTC).
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// fieldReader reads binary fields; the first error sticks and every read
// after it returns a zero value. Strings are substrings of one copy of the
// fields (all), not an allocation each.
type fieldReader struct {
	data []byte
	all  string
	err  error
}

func newFieldReader(data []byte) *fieldReader { return &fieldReader{data: data, all: string(data)} }

var errFieldsTruncated = errors.New("truncated fields")

func (r *fieldReader) fail() {
	if r.err == nil {
		r.err = errFieldsTruncated
	}
	r.data = nil
}

func (r *fieldReader) uvarint() uint64 {
	v, k := binary.Uvarint(r.data)
	if k <= 0 {
		r.fail()
		return 0
	}
	r.data = r.data[k:]
	return v
}

func (r *fieldReader) varint() int64 {
	v, k := binary.Varint(r.data)
	if k <= 0 {
		r.fail()
		return 0
	}
	r.data = r.data[k:]
	return v
}

// count reads a number of entries of at least min bytes each, bounded by
// what is left.
func (r *fieldReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.data)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *fieldReader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.data)) {
		r.fail()
		return ""
	}
	at := len(r.all) - len(r.data)
	r.data = r.data[n:]
	return r.all[at : at+int(n)]
}

func (r *fieldReader) fixed(size int) uint64 {
	if len(r.data) < size {
		r.fail()
		return 0
	}
	var v uint64
	if size == 4 {
		v = uint64(binary.LittleEndian.Uint32(r.data))
	} else {
		v = binary.LittleEndian.Uint64(r.data)
	}
	r.data = r.data[size:]
	return v
}

func (r *fieldReader) float() float64 { return math.Float64frombits(r.fixed(8)) }

func (r *fieldReader) time() time.Time {
	sec := r.varint()
	nsec := r.uvarint()
	// ±2^40 s (±34,000 years) covers the zero time (year 1) and keeps
	// time.Unix from overflowing, so a decoded time re-encodes the same.
	if nsec >= 1e9 || sec > 1<<40 || sec < -(1<<40) {
		r.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
