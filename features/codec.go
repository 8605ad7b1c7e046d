package features

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/axiomhq/hyperloglog"
	"github.com/livefeed/livefeed/internal/wire"
)

// The binary encoding of a State (version 1). Integers are varints
// (unsigned, or zigzag-signed: "svarint"); strings a uvarint length and the
// bytes; every map is written in sorted key order, so a state encodes to
// the same bytes however it was built (sketches are compacted first).
//
//	magic 0xF5, version 1, uvarint flags (0)
//	svarint watermark, unix ns (0: none)
//	uvarint #sources, then per source (by name): string name, svarint (watermark − source watermark) ns
//	uvarint #series, then per series (by name):
//	    string name, byte partial kind, uvarint tile width ms, uvarint body length, body:
//	    uvarint #tiles, then per tile: start (width > 0: svarint start/width for
//	    the first tile, uvarint (start − previous)/width after; width 0: svarint ms),
//	    uvarint n (events), and the kind's partial:
//	      count: nothing; sum, min, max, legacy: float
//	      last: svarint (t − start) ns, float or string
//	      decay: svarint anchor unix ns, float
//	      last_k, hll, ddsketch, top_k, percentile: uvarint length, then
//	        last_k: uvarint #entries, per entry svarint (t − start) ns, string
//	        hll, ddsketch: the library's encoding
//	        top_k: uvarint #keys, per key (sorted) string, uvarint count
//	        percentile: while the tile is exact, its values ascending: byte 2,
//	          uvarint #values, byte d (0 or 2), svarint first·10^d, uvarint
//	          differences·10^d when all are whole units (d 0) or cents (d 2),
//	          else byte 0, uvarint #values, floats; once a sketch, byte 1 and
//	          the DDSketch's encoding
//	uvarint #dropped, then per feature (by name): string name, uvarint count
//	if flags&1 (a backfill touched the state; backfill.go):
//	    uvarint #warming, then per feature (by name): string name, string backfill id
//	    uvarint #backfilled, then per id (sorted): string id
//
// A float is a uvarint u: u&3 == 0: the integer zigzag(u>>2); 1: the
// integer zigzag(u>>2) / 100 (cents); 2: 8 little-endian IEEE-754 bytes follow.
//
// The partial kind byte versions a series' tiles: approx_percentile wrote
// kind 9 (ddsketch) before kind 12 (percentile); kind 9 still decodes,
// reads, and becomes kind 12 on its next write (its tiles stay sketches).
//
// Decoding is lazy: a series stays encoded until an event writes or
// evicts it, and a sketch or list tile until an event writes it; encoding
// passes what was not decoded through as it was. A processor's per-event
// decode, apply, encode thus decodes only the series of the event's
// source, and only their newest sketch tiles.
const (
	codecMagic   = 0xF5
	codecVersion = 1
)

// ErrCorrupt wraps errors decoding a state.
var ErrCorrupt = errors.New("features: corrupt state")

// MarshalBinary encodes st compactly and deterministically. It compacts
// HyperLogLog sketches in place (an encoding is a write of the state).
func (st *State) MarshalBinary() ([]byte, error) { return st.AppendBinary(nil) }

// AppendBinary appends st's encoding to b.
func (st *State) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if len(st.Warming) > 0 || len(st.Backfilled) > 0 {
		flags |= flagBackfill
	}
	b = append(b, codecMagic, codecVersion, flags)
	wm := nanos(st.Watermark)
	b = binary.AppendVarint(b, wm)
	var buf [32]string
	names := wire.AppendSortedKeys(buf[:0], st.Sources)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = wire.AppendString(b, n)
		b = binary.AppendVarint(b, wm-nanos(st.Sources[n]))
	}
	names = wire.AppendSortedKeys(names[:0], st.Series)
	n := 0
	for _, name := range names {
		if st.Series[name] != nil {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for _, name := range names {
		s := st.Series[name]
		if s == nil {
			continue
		}
		b = wire.AppendString(b, name)
		b = append(b, byte(s.kind))
		b = binary.AppendUvarint(b, uint64(s.width))
		body := s.raw
		if body == nil {
			if !s.encOK {
				enc, err := s.appendBody(s.enc[:0])
				if err != nil {
					return nil, fmt.Errorf("features: encoding %s: %w", name, err)
				}
				s.enc, s.encOK = enc, true
			}
			body = s.enc
		}
		b = binary.AppendUvarint(b, uint64(len(body)))
		b = append(b, body...)
	}
	names = wire.AppendSortedKeys(names[:0], st.Dropped)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = wire.AppendString(b, n)
		b = binary.AppendUvarint(b, uint64(st.Dropped[n]))
	}
	if flags&flagBackfill != 0 {
		b = st.appendBackfill(b)
	}
	return b, nil
}

// appendBody appends the encoding of s's tiles.
func (s *Series) appendBody(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(s.b)))
	var prev int64
	for i := range s.b {
		bk := &s.b[i]
		switch {
		case s.width == 0:
			b = binary.AppendVarint(b, bk.start)
		case i == 0:
			b = binary.AppendVarint(b, bk.start/s.width)
		default:
			b = binary.AppendUvarint(b, uint64((bk.start-prev)/s.width))
		}
		prev = bk.start
		b = binary.AppendUvarint(b, uint64(bk.n))
		var err error
		if b, err = appendPartial(b, s.kind, bk, s.ref(i)); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendPartial appends a tile's partial; ref is the tile's tileRef (nil
// for the numeric kinds).
func appendPartial(b []byte, kind partialKind, bk *bucket, ref *tileRef) ([]byte, error) {
	startNs := bk.start * int64(time.Millisecond)
	switch kind {
	case pCount:
	case pSum, pMin, pMax, pLegacy:
		b = appendFloat(b, bk.x)
	case pLastNum:
		b = binary.AppendVarint(b, bk.t-startNs)
		b = appendFloat(b, bk.x)
	case pLastStr:
		b = binary.AppendVarint(b, bk.t-startNs)
		b = wire.AppendString(b, ref.s)
	case pLastK, pHLL, pDD, pTopK, pPct:
		if raw, ok := ref.ext.(rawExt); ok {
			b = binary.AppendUvarint(b, uint64(len(raw)))
			b = append(b, raw...)
			break
		}
		// The body goes straight into b and its length prefix is slid in
		// front of it: no buffer per tile.
		at := len(b)
		var err error
		b, err = appendExt(b, kind, ref.ext, startNs)
		if err != nil {
			return nil, err
		}
		b = wire.PrefixLength(b, at)
	case pDecay:
		b = binary.AppendVarint(b, bk.t)
		b = appendFloat(b, bk.x)
	default:
		return nil, fmt.Errorf("unknown partial kind %d", kind)
	}
	return b, nil
}

// UnmarshalBinary decodes an encoding of MarshalBinary into st, replacing
// its contents. Corrupt input returns an error wrapping ErrCorrupt; a
// corrupt series or tile that decoding left encoded (see above) reads as
// empty when it is decoded.
func (st *State) UnmarshalBinary(data []byte) error {
	return st.unmarshalOwned(bytes.Clone(data)) // encoded series and tiles keep slices of it
}

// unmarshalOwned decodes data, which st may keep.
func (st *State) unmarshalOwned(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
		}
	}()
	r := &reader{b: data}
	if r.byte() != codecMagic {
		return fmt.Errorf("%w: not a feature state", ErrCorrupt)
	}
	if v := r.byte(); v != codecVersion {
		return fmt.Errorf("%w: unknown version %d", ErrCorrupt, v)
	}
	flags := r.uvarint()
	var out State
	wm := r.varint()
	out.Watermark = fromNanos(wm)
	if n := r.count(2); n > 0 {
		out.Sources = make(map[string]time.Time, n)
		for range n {
			name := r.name()
			out.Sources[name] = fromNanos(wm - r.varint())
		}
	}
	if n := r.count(4); n > 0 {
		out.Series = make(map[string]*Series, n)
		series := make([]Series, n)
		for i := range n {
			name := r.name()
			s := &series[i]
			s.kind = partialKind(r.byte())
			w := r.uvarint()
			if w > math.MaxInt32 {
				r.fail("tile width")
			}
			s.width = int64(w)
			s.raw = r.bytes()
			if r.err != nil {
				break
			}
			if len(s.raw) == 0 {
				r.fail("empty series")
				break
			}
			out.Series[name] = s
		}
	}
	if n := r.count(2); n > 0 {
		out.Dropped = make(map[string]int64, n)
		for range n {
			name := r.name()
			out.Dropped[name] = int64(r.uvarint())
		}
	}
	if flags&flagBackfill != 0 {
		out.readBackfill(r)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return r.err
	}
	*st = out
	return nil
}

// decodeBody decodes an encoded series body into tiles and, for the kinds
// with refs, their tileRefs.
func decodeBody(kind partialKind, width int64, body []byte) (tiles []bucket, refs []tileRef, err error) {
	defer func() {
		if rec := recover(); rec != nil {
			tiles, refs, err = nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, rec)
		}
	}()
	r := &reader{b: body}
	nb := r.count(2)
	tiles = make([]bucket, nb)
	if kind.hasRefs() {
		refs = make([]tileRef, nb)
	}
	var prev int64
	for i := range tiles {
		bk := &tiles[i]
		switch {
		case width == 0:
			bk.start = r.varint()
		case i == 0:
			bk.start = r.varint() * width
		default:
			d := r.uvarint()
			if d == 0 || d > math.MaxInt32 {
				r.fail("tile order")
			}
			bk.start = prev + int64(d)*width
		}
		prev = bk.start
		bk.n = int64(r.uvarint())
		var ref *tileRef
		if refs != nil {
			ref = &refs[i]
		}
		r.partial(kind, bk, ref)
		if r.err != nil {
			break
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes in a series")
	}
	if r.err != nil {
		return nil, nil, r.err
	}
	return tiles, refs, nil
}

// tilesIn is the tile count of an encoded body.
func tilesIn(body []byte) int {
	n, k := binary.Uvarint(body)
	if k <= 0 || n > uint64(len(body)) {
		return 0
	}
	return int(n)
}

// firstStart is the start of the first tile of an encoded body.
func firstStart(body []byte, width int64) (int64, bool) {
	n, k := binary.Uvarint(body)
	if k <= 0 || n == 0 {
		return 0, false
	}
	v, k2 := binary.Varint(body[k:])
	if k2 <= 0 {
		return 0, false
	}
	if width == 0 {
		return v, true
	}
	return v * width, true
}

// load decodes an encoded series in place (before writing it); a corrupt
// one becomes empty.
func (s *Series) load() {
	if s.raw == nil {
		return
	}
	s.b, s.refs, _ = decodeBody(s.kind, s.width, s.raw)
	s.raw = nil
}

// view returns s with its tiles decoded, into a copy if s is still
// encoded: reads never modify the state.
func (s *Series) view() *Series {
	if s == nil || s.raw == nil {
		return s
	}
	tiles, refs, _ := decodeBody(s.kind, s.width, s.raw)
	return &Series{kind: s.kind, width: s.width, b: tiles, refs: refs}
}

// partial reads a tile's partial into bk and, for the kinds with refs, ref.
func (r *reader) partial(kind partialKind, bk *bucket, ref *tileRef) {
	startNs := bk.start * int64(time.Millisecond)
	switch kind {
	case pCount:
	case pSum, pMin, pMax, pLegacy:
		bk.x = r.float()
	case pLastNum:
		bk.t = startNs + r.varint()
		bk.x = r.float()
	case pLastStr:
		bk.t = startNs + r.varint()
		ref.s = r.string()
	case pLastK, pHLL, pDD, pTopK, pPct:
		// Decoded when the tile is written (materialize) or read (peek).
		if body := r.bytes(); len(body) > 0 {
			ref.ext = rawExt(body)
		}
	case pDecay:
		bk.t = r.varint()
		bk.x = r.float()
	default:
		r.fail(fmt.Sprintf("unknown partial kind %d", kind))
	}
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, what)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a length whose items take at least min bytes each.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail("length beyond the data")
		return 0
	}
	return int(n)
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("length beyond the data")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) string() string { return string(r.bytes()) }

// name reads a feature or source name, interned: names repeat in every
// state, so decoding them allocates once per process.
func (r *reader) name() string {
	b := r.bytes()
	names.RLock()
	s, ok := names.m[string(b)]
	names.RUnlock()
	if ok {
		return s
	}
	s = string(b)
	names.Lock()
	if len(names.m) < 4096 { // bounded against corrupt input
		names.m[s] = s
	}
	names.Unlock()
	return s
}

var names = struct {
	sync.RWMutex
	m map[string]string
}{m: map[string]string{}}

func (r *reader) float() float64 {
	u := r.uvarint()
	switch u & 3 {
	case 0:
		return float64(unzigzag(u >> 2))
	case 1:
		return float64(unzigzag(u>>2)) / 100
	case 2:
		if len(r.b) < 8 {
			r.fail("truncated float")
			return 0
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
		return f
	}
	r.fail("bad float tag")
	return 0
}

func appendFloat(b []byte, f float64) []byte {
	const lim = 1 << 52
	if f == math.Trunc(f) && math.Abs(f) < lim && !(f == 0 && math.Signbit(f)) {
		return binary.AppendUvarint(b, zigzag(int64(f))<<2)
	}
	if c := math.Round(f * 100); math.Abs(c) < lim && c/100 == f {
		return binary.AppendUvarint(b, zigzag(int64(c))<<2|1)
	}
	b = binary.AppendUvarint(b, 2)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

func zigzag(i int64) uint64   { return uint64(i<<1) ^ uint64(i>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// legacyJSON is the JSON state written before the binary encoding.
type legacyJSON struct {
	Watermark time.Time            `json:"watermark"`
	Sources   map[string]time.Time `json:"sources,omitempty"`
	Series    map[string]struct {
		B []struct {
			S int64   `json:"s"`
			C int64   `json:"c"`
			V float64 `json:"v"`
		} `json:"b"`
	} `json:"series,omitempty"`
}

// MarshalJSON writes the binary encoding as one base64 string: JSON
// encoders and decoders then scan it once, as a plain string.
func (st State) MarshalJSON() ([]byte, error) {
	bin, err := st.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(bin))+2)
	out[0] = '"'
	base64.StdEncoding.Encode(out[1:], bin)
	out[len(out)-1] = '"'
	return out, nil
}

// UnmarshalJSON reads MarshalJSON's form, and the JSON object state written
// before it (watermarks kept; its count/sum tiles stay readable by count,
// sum and mean features of the same names).
func (st *State) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) >= 2 && data[0] == '"' && data[len(data)-1] == '"' {
		bin := make([]byte, base64.StdEncoding.DecodedLen(len(data)-2))
		n, err := base64.StdEncoding.Decode(bin, data[1:len(data)-1])
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return st.unmarshalOwned(bin[:n])
	}
	if string(data) == "null" {
		return nil
	}
	var j legacyJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	out := State{Watermark: j.Watermark, Sources: j.Sources}
	for name, s := range j.Series {
		ser := &Series{kind: pLegacy}
		for _, b := range s.B {
			ser.b = append(ser.b, bucket{start: b.S, n: b.C, x: b.V})
		}
		sort.Slice(ser.b, func(i, k int) bool { return ser.b[i].start < ser.b[k].start })
		if out.Series == nil {
			out.Series = map[string]*Series{}
		}
		out.Series[name] = ser
	}
	*st = out
	return nil
}

// rawExt is a sketch or list tile not decoded yet: its encoding.
type rawExt []byte

// appendExt appends the encoding of a sketch or list partial.
func appendExt(b []byte, kind partialKind, ext any, startNs int64) ([]byte, error) {
	switch kind {
	case pLastK:
		lk, _ := ext.(*lastK)
		if lk == nil {
			return b, nil
		}
		b = binary.AppendUvarint(b, uint64(len(lk.e)))
		for _, e := range lk.e {
			b = binary.AppendVarint(b, e.t-startNs)
			b = wire.AppendString(b, e.v)
		}
	case pHLL:
		sk, _ := ext.(*hyperloglog.Sketch)
		if sk == nil {
			return b, nil
		}
		sk.Estimate() // compacts the sparse representation: canonical bytes
		return sk.AppendBinary(b)
	case pDD:
		sk, _ := ext.(*ddsketch.DDSketch)
		if sk == nil {
			return b, nil
		}
		return appendDD(b, sk), nil
	case pPct:
		return appendPct(b, ext), nil
	case pTopK:
		tk, _ := ext.(*topK)
		if tk == nil {
			return b, nil
		}
		b = binary.AppendUvarint(b, uint64(len(tk.e)))
		for _, kc := range tk.e {
			b = wire.AppendString(b, kc.Key)
			b = binary.AppendUvarint(b, uint64(kc.Count))
		}
	}
	return b, nil
}

// appendDD appends a DDSketch's encoding. On its own because Encode takes
// the slice's address, which moves it to the heap: only DDSketch tiles pay.
func appendDD(b []byte, sk *ddsketch.DDSketch) []byte {
	sk.Encode(&b, true)
	return b
}

// decodeExt decodes a sketch or list partial; corrupt bytes give nil (an
// empty tile).
func decodeExt(kind partialKind, body []byte, startNs int64) (out any) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	r := &reader{b: body}
	switch kind {
	case pLastK:
		n := r.count(2)
		lk := &lastK{e: make([]timedValue, 0, n)}
		for range n {
			t := startNs + r.varint()
			lk.e = append(lk.e, timedValue{t: t, v: r.string()})
		}
		if r.err != nil || len(r.b) > 0 {
			return nil
		}
		return lk
	case pHLL:
		sk := &hyperloglog.Sketch{}
		if sk.UnmarshalBinary(body) != nil {
			return nil
		}
		return sk
	case pDD:
		sk, err := ddsketch.DecodeDDSketch(body, ddStore, ddMapping)
		if err != nil {
			return nil
		}
		return sk
	case pPct:
		return decodePct(body)
	case pTopK:
		n := r.count(2)
		tk := &topK{e: make([]KeyCount, 0, n)}
		for range n {
			k := r.string()
			if len(tk.e) > 0 && k <= tk.e[len(tk.e)-1].Key {
				return nil
			}
			tk.e = append(tk.e, KeyCount{Key: k, Count: int64(r.uvarint())})
		}
		if r.err != nil || len(r.b) > 0 {
			return nil
		}
		return tk
	}
	return nil
}

// materialize decodes a raw tile partial in place (for writing) and
// returns it; start is the tile's start (unix ms).
func materialize(kind partialKind, start int64, ref *tileRef) any {
	if raw, ok := ref.ext.(rawExt); ok {
		ref.ext = decodeExt(kind, raw, start*int64(time.Millisecond)) // nil if corrupt: an empty tile
	}
	return ref.ext
}

// peek returns tile i's partial for reading from refs (the tiles' refs),
// decoding a raw one into a temporary: reads never modify the state, so
// they may run concurrently.
func peek(kind partialKind, start int64, refs []tileRef, i int) any {
	if i >= len(refs) {
		return nil
	}
	if raw, ok := refs[i].ext.(rawExt); ok {
		return decodeExt(kind, raw, start*int64(time.Millisecond))
	}
	return refs[i].ext
}

// Expand decodes every series and every sketch and list tile that a
// decode left encoded, so that repeated reads (serving) do not decode them
// each time. ApplyEvent decodes what it writes by itself; Expand is never
// needed for correctness.
func (st *State) Expand() {
	for _, s := range st.Series {
		s.load()
		for i := range s.refs {
			materialize(s.kind, s.b[i].start, &s.refs[i])
		}
	}
}
