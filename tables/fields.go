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
// and cost 7 % of the processors' CPU, and the livestream table, whose
// flushes encoded every current viewer (thousands on a busy stream) as a
// JSON object with sorted keys: a fifth of the processors' CPU under live
// traffic of 10k events/s.
type binaryFields interface {
	appendFields(b []byte) []byte
	readFields(r *fieldReader) error
}

// appendFields appends the user's small fields: id, taste (vector, weight,
// time), categories (sorted by name), recent streams, signal counts (sorted
// by kind), last event.
func (u *User) appendFields(b []byte) []byte {
	b = appendString(b, u.UserID)
	b = appendDecayedSum(b, &u.Taste)
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
	u.Taste = r.decayedSum()
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

// appendFields appends the stream's small fields in declaration order.
// The viewers go in map order, unsorted: sorting 2,000 ids took 11 times
// as long as encoding them (BenchmarkLivestreamCodec), so the same stream
// may encode to other bytes each time (nothing compares them).
func (l *Livestream) appendFields(b []byte) []byte {
	for _, s := range [...]string{l.LivestreamID, l.SellerID, l.Title, l.Category} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(l.Tags)))
	for _, t := range l.Tags {
		b = appendString(b, t)
	}
	b = appendString(b, l.Language)
	b = appendString(b, string(l.Status))
	for _, t := range [...]time.Time{l.MetadataTime, l.LiveSince, l.EndedAt} {
		b = appendTime(b, t)
	}
	b = appendVector(b, l.Embedding)
	b = appendString(b, l.EmbeddingModel)
	b = appendString(b, l.EmbeddedText)
	b = appendVector(b, l.Content)
	b = appendString(b, l.ContentHash)
	b = appendString(b, l.ContentModel)
	b = appendTime(b, l.ContentTime)
	b = appendDecayedSum(b, &l.Audience)
	b = binary.AppendUvarint(b, uint64(len(l.Viewers)))
	for v, seen := range l.Viewers {
		b = appendString(b, v)
		b = binary.AppendVarint(b, seen)
	}
	b = binary.AppendVarint(b, l.Events)
	return binary.AppendVarint(b, l.LateDropped)
}

func (l *Livestream) readFields(r *fieldReader) error {
	*l = Livestream{LivestreamID: r.string(), SellerID: r.string(), Title: r.string(), Category: r.string()}
	if n := r.count(1); n > 0 {
		l.Tags = make([]string, n)
		for i := range l.Tags {
			l.Tags[i] = r.string()
		}
	}
	l.Language, l.Status = r.string(), events.Status(r.string())
	l.MetadataTime, l.LiveSince, l.EndedAt = r.time(), r.time(), r.time()
	l.Embedding = r.vector()
	l.EmbeddingModel, l.EmbeddedText = r.string(), r.string()
	l.Content = r.vector()
	l.ContentHash, l.ContentModel, l.ContentTime = r.string(), r.string(), r.time()
	l.Audience = r.decayedSum()
	if n := r.count(2); n > 0 { // a viewer takes at least 2 bytes
		l.Viewers = make(map[string]int64, n)
		for range n {
			v := r.string()
			l.Viewers[v] = r.varint()
		}
	}
	l.Events, l.LateDropped = r.varint(), r.varint()
	if r.err == nil && len(r.data) > 0 {
		r.err = fmt.Errorf("%d bytes after the fields", len(r.data))
	}
	return r.err
}

func appendVector(b []byte, v events.Vector) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func appendDecayedSum(b []byte, d *models.DecayedSum) []byte {
	b = appendVector(b, d.Vector)
	b = appendFloat(b, d.Weight)
	return appendTime(b, d.Time)
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

func (r *fieldReader) vector() events.Vector {
	n := r.count(4)
	if n == 0 {
		return nil
	}
	v := make(events.Vector, n)
	for i := range v {
		v[i] = math.Float32frombits(uint32(r.fixed(4)))
	}
	return v
}

func (r *fieldReader) decayedSum() models.DecayedSum {
	return models.DecayedSum{Vector: r.vector(), Weight: r.float(), Time: r.time()}
}

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
