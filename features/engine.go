package features

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/axiomhq/hyperloglog"
)

// partialKind is what the tiles of a series hold; it is part of the binary
// encoding, so values are fixed.
type partialKind uint8

const (
	pCount   partialKind = 1  // n
	pSum     partialKind = 2  // n, Σ
	pMin     partialKind = 3  // n, min
	pMax     partialKind = 4  // n, max
	pLastNum partialKind = 5  // n, time, number
	pLastStr partialKind = 6  // n, time, string
	pLastK   partialKind = 7  // n, K newest distinct (time, value)
	pHLL     partialKind = 8  // n, HyperLogLog
	pDD      partialKind = 9  // n, DDSketch
	pTopK    partialKind = 10 // n, counts per key (bounded)
	pDecay   partialKind = 11 // n, anchor time, Σ scaled to it
	pPct     partialKind = 12 // n, the values (sorted) while few, then a DDSketch
	pLegacy  partialKind = 99 // n, Σ of the JSON state before the binary encoding (count, sum, mean)
)

// feature is a compiled Definition.
type feature struct {
	def      Definition
	name     string
	kind     partialKind
	window   Window
	width    int64 // tile width, ms (0: all time)
	size     int64 // window size, ms
	lateness time.Duration
	sources  []string
	filter   evalFn
	types    []string // deprecated Definition.Types
	proj     evalFn
	projType FieldType
	k        int
	p        float64
	halfLife float64 // ns
	scale    float64 // per / size for rates, else 1
	prec     uint8
	capacity int
	index    int // position in the set
}

var ddMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(PercentileAccuracy)
	if err != nil {
		panic(err)
	}
	return m
}()

func ddStore() store.Store { return store.NewCollapsingLowestDenseStore(percentileMaxBins) }

func newDD() *ddsketch.DDSketch { return ddsketch.NewDDSketch(ddMapping, ddStore(), ddStore()) }

// compile turns a valid definition into a feature.
func compile(d Definition) (*feature, error) {
	d = d.normalized()
	f := &feature{
		def: d, name: d.Name, window: d.Window, lateness: d.Lateness, sources: d.Sources,
		k: d.K, p: d.P, halfLife: float64(d.HalfLife), scale: 1, types: d.Types,
	}
	f.def.c = nil
	if f.window.Kind == Tumbling {
		f.window.Bucket = f.window.Size
	}
	f.width = f.window.width().Milliseconds()
	f.size = f.window.Size.Milliseconds()
	if d.Per > 0 && f.window.Size > 0 {
		f.scale = float64(d.Per) / float64(f.window.Size)
	}
	sch := schemaOf(d.Sources)
	if d.Filter != "" {
		c, err := compileExpr(d.Filter, sch)
		if err != nil {
			return nil, err
		}
		f.filter = c.eval
	}
	if d.Field != "" && d.Aggregation.needsField() {
		c, err := compileExpr(d.Field, sch)
		if err != nil {
			return nil, err
		}
		f.proj, f.projType = c.eval, c.typ
	}
	switch d.Aggregation {
	case Count:
		f.kind = pCount
	case Sum, Mean:
		f.kind = pSum
	case Min:
		f.kind = pMin
	case Max:
		f.kind = pMax
	case Last:
		f.kind = pLastNum
		if f.projType == TypeString {
			f.kind = pLastStr
		}
	case LastKDistinct:
		f.kind = pLastK
	case ApproxDistinct:
		f.kind = pHLL
		f.prec = DefaultPrecision
		if d.Precision != 0 {
			f.prec = uint8(d.Precision)
		}
	case ApproxPercentile:
		f.kind = pPct
	case TopK:
		f.kind = pTopK
		f.capacity = d.Capacity
		if f.capacity == 0 {
			f.capacity = max(DefaultTopKCapacity*d.K, 20)
		}
	case DecayedSum, DecayedCount:
		f.kind = pDecay
	}
	return f, nil
}

func (f *feature) accepts(ev Event) bool {
	if !f.hasSource(ev.Source()) {
		return false
	}
	return f.pass(ev)
}

// pass applies the filter (and the deprecated Types).
func (f *feature) pass(ev Event) bool {
	if f.types != nil && !slices.Contains(f.types, eventType(ev)) {
		return false
	}
	return f.filter == nil || f.filter(ev).Bool()
}

// eventType is what the deprecated Definition.Types matches: the type
// field, a livestream's status, "message" for chat.
func eventType(ev Event) string {
	switch ev.Source() {
	case "livestreams":
		v, _ := ev.Field("status")
		return v.Str()
	case "chat":
		return "message"
	}
	v, _ := ev.Field("type")
	return v.Str()
}

func (f *feature) hasSource(src string) bool {
	for _, s := range f.sources {
		if s == src {
			return true
		}
	}
	return false
}

// Series is the tiled state of one feature for one entity: its tiles
// (buckets), oldest first, each holding a mergeable partial aggregate. The
// zero value is empty and ready.
type Series struct {
	kind  partialKind
	width int64 // ms
	b     []bucket
	// refs holds, beside each tile of b, what a string, list or sketch
	// kind keeps (nil for the numeric kinds): the tiles themselves hold no
	// pointers, so the garbage collector never scans them.
	refs []tileRef
	raw  []byte // the encoded tiles, until decoded (see codec.go)
	// enc is the encoding of b made by the last AppendBinary, kept until
	// a write or an eviction changes the tiles: a flush re-encodes only
	// the series that changed since the previous one.
	enc   []byte
	encOK bool
}

// changed invalidates the cached encoding: the tiles are about to change.
func (s *Series) changed() { s.encOK = false }

// bucket is one tile: the partial aggregate of the events whose time falls
// in [start, start+width).
type bucket struct {
	start int64   // unix ms
	n     int64   // events
	x     float64 // Σ, min, max, last number, decayed Σ
	t     int64   // unix ns: last's event time, decay's anchor
}

// tileRef is the part of a tile that holds pointers, in Series.refs.
type tileRef struct {
	s   string // last string
	ext any    // *hyperloglog.Sketch, *ddsketch.DDSketch, *pctExact, *topK, *lastK, or rawExt (not decoded yet)
}

// hasRefs reports whether tiles of kind keep a tileRef.
func (k partialKind) hasRefs() bool {
	return k == pLastStr || k == pLastK || k == pHLL || k == pDD || k == pTopK || k == pPct
}

// ref is tile i's tileRef (nil for the numeric kinds).
func (s *Series) ref(i int) *tileRef {
	if i < len(s.refs) {
		return &s.refs[i]
	}
	return nil
}

// Len is the number of tiles held.
func (s *Series) Len() int {
	if s == nil {
		return 0
	}
	if s.raw != nil {
		return tilesIn(s.raw)
	}
	return len(s.b)
}

func (s *Series) empty() bool { return s.Len() == 0 }

// fits reports whether s holds tiles of f's shape.
func (f *feature) fits(s *Series) bool { return s.kind == f.kind && s.width == f.width }

// readable reports whether f can read s: a series of its own shape, or an
// older one it adopts on its next write (legacy JSON tiles; DDSketch-only
// percentile tiles).
func (f *feature) readable(s *Series) bool { return f.fits(s) || f.legacy(s) || f.oldPct(s) }

// oldPct reports whether s holds the percentile tiles written before
// pPct: every tile a DDSketch.
func (f *feature) oldPct(s *Series) bool {
	return s.kind == pDD && f.kind == pPct && s.width == f.width
}

func (f *feature) legacy(s *Series) bool {
	return s.kind == pLegacy && (f.kind == pCount || f.kind == pSum) && f.window.Kind == Sliding
}

// tileStart is the start (ms) of the tile holding unix-ms time ms.
func (f *feature) tileStart(ms int64) int64 {
	if f.width == 0 {
		return 0
	}
	return floorDiv(ms, f.width) * f.width
}

// keepFrom is the start (ms) of the oldest tile a read at or after the
// horizon (unix ns) can need: older tiles are evicted, and events for them
// are not added. math.MinInt64 when nothing expires.
func (f *feature) keepFrom(horizon int64) int64 {
	h := floorDiv(horizon, int64(time.Millisecond))
	switch f.window.Kind {
	case Sliding:
		// A read at now >= h covers tiles with start+width > now-size.
		return f.tileStart(h - f.size)
	case Tumbling:
		cur := f.tileStart(h)
		if f.window.Emit == Current {
			return cur
		}
		return cur - f.size
	}
	return math.MinInt64
}

// expiredDecay reports whether a decayed tile has decayed below 2^-64 of
// its value at the horizon: it is then dropped (the key can go idle).
func (f *feature) expiredDecay(b *bucket, horizon int64) bool {
	return f.kind == pDecay && float64(horizon-b.t) > 64*f.halfLife
}

// evict drops the tiles no read at or after horizon (unix ns) can need.
func (f *feature) evict(s *Series, horizon int64) {
	if s.raw != nil {
		// Decode only if a tile expires.
		if f.window.Kind == AllTime && f.kind != pDecay {
			return
		}
		if first, ok := firstStart(s.raw, s.width); ok && f.window.Kind != AllTime && first >= f.keepFrom(horizon) {
			return
		}
		s.load()
	}
	if f.window.Kind == AllTime {
		if len(s.b) == 1 && f.expiredDecay(&s.b[0], horizon) {
			s.changed()
			s.b = s.b[:0]
		}
		return
	}
	from := f.keepFrom(horizon)
	i := 0
	for i < len(s.b) && s.b[i].start < from {
		i++
	}
	if i > 0 {
		s.changed()
		n := copy(s.b, s.b[i:])
		s.b = s.b[:n]
		if s.refs != nil {
			copy(s.refs, s.refs[i:])
			clear(s.refs[n:])
			s.refs = s.refs[:n]
		}
	}
}

// idle reports whether every tile would be evicted at horizon.
func (f *feature) idle(s *Series, horizon int64) bool {
	s = s.view()
	if len(s.b) == 0 {
		return true
	}
	if f.window.Kind == AllTime {
		return len(s.b) == 1 && f.expiredDecay(&s.b[0], horizon)
	}
	return s.b[len(s.b)-1].start < f.keepFrom(horizon)
}

// add folds one event (already accepted) into s. horizon is the feature's
// eviction horizon before the event (unix ns).
func (f *feature) add(s *Series, ev Event, t time.Time, horizon int64) {
	s.load()
	s.changed()
	ms := t.UnixMilli()
	start := f.tileStart(ms)
	if f.window.Kind != AllTime && start < f.keepFrom(horizon) {
		return // no read at or after the horizon covers it
	}
	var v Value
	if f.proj != nil {
		v = f.proj(ev)
	}
	var key string
	if f.kind == pLastStr || f.kind == pLastK || f.kind == pHLL || f.kind == pTopK {
		key = v.Key()
		if key == "" {
			return // no value to count
		}
	}
	if (f.kind == pSum || f.kind == pMin || f.kind == pMax || f.kind == pPct || f.kind == pDecay && f.proj != nil || f.kind == pLastNum) && !finite(v.num) {
		return
	}
	ti := s.tile(start, f.kind.hasRefs())
	b, ref := &s.b[ti], s.ref(ti)
	ns := t.UnixNano()
	switch f.kind {
	case pCount:
	case pSum:
		b.x += v.num
	case pMin:
		if b.n == 0 || v.num < b.x {
			b.x = v.num
		}
	case pMax:
		if b.n == 0 || v.num > b.x {
			b.x = v.num
		}
	case pLastNum:
		if b.n == 0 || ns > b.t || ns == b.t && v.num > b.x {
			b.x, b.t = v.num, ns
		}
	case pLastStr:
		if b.n == 0 || ns > b.t || ns == b.t && key > ref.s {
			ref.s, b.t = strings.Clone(key), ns
		}
	case pLastK:
		lk, _ := materialize(f.kind, b.start, ref).(*lastK)
		if lk == nil {
			lk = &lastK{}
			ref.ext = lk
		}
		lk.add(key, ns, f.k)
	case pHLL:
		sk, _ := materialize(f.kind, b.start, ref).(*hyperloglog.Sketch)
		if sk == nil {
			sk, _ = hyperloglog.NewSketch(f.prec, true)
			ref.ext = sk
		}
		sk.Insert(unsafe.Slice(unsafe.StringData(key), len(key)))
	case pPct:
		if !addPct(ref, materialize(f.kind, b.start, ref), v.num) {
			return
		}
	case pTopK:
		tk, _ := materialize(f.kind, b.start, ref).(*topK)
		if tk == nil {
			tk = &topK{}
			ref.ext = tk
		}
		tk.add(key, f.capacity)
	case pDecay:
		x := 1.0
		if f.proj != nil {
			x = v.num
		}
		switch {
		case b.n == 0:
			b.x, b.t = x, ns
		case ns > b.t:
			b.x = b.x*math.Exp2(-float64(ns-b.t)/f.halfLife) + x
			b.t = ns
		default:
			b.x += x * math.Exp2(-float64(b.t-ns)/f.halfLife)
		}
	}
	b.n++
}

// tile returns the index of the tile starting at start, inserting it in
// order (with a tileRef beside it when refs).
func (s *Series) tile(start int64, refs bool) int {
	n := len(s.b)
	if n > 0 && s.b[n-1].start == start {
		return n - 1
	}
	i := n
	for i > 0 && s.b[i-1].start > start {
		i--
	}
	if i > 0 && s.b[i-1].start == start {
		return i - 1
	}
	s.b = append(s.b, bucket{})
	copy(s.b[i+1:], s.b[i:])
	s.b[i] = bucket{start: start}
	if refs {
		s.refs = append(s.refs, tileRef{})
		copy(s.refs[i+1:], s.refs[i:])
		s.refs[i] = tileRef{}
	}
	return i
}

// lastK holds up to K distinct values with their newest time, newest first
// (ties in time: the greater value first, compared as strings, the form
// the list gives: for a string field, k 1 lists what last gives).
type lastK struct{ e []timedValue }

type timedValue struct {
	t int64
	v string
}

func newer(a, b timedValue) bool { return a.t > b.t || a.t == b.t && a.v > b.v }

func (l *lastK) add(v string, t int64, k int) {
	for i := range l.e {
		if l.e[i].v == v {
			if t <= l.e[i].t {
				return
			}
			l.e = append(l.e[:i], l.e[i+1:]...)
			break
		}
	}
	x := timedValue{t: t, v: v}
	i := sort.Search(len(l.e), func(i int) bool { return newer(x, l.e[i]) })
	if i >= k {
		return
	}
	x.v = strings.Clone(v)
	l.e = append(l.e, timedValue{})
	copy(l.e[i+1:], l.e[i:])
	l.e[i] = x
	if len(l.e) > k {
		l.e = l.e[:k]
	}
}

// topK counts keys exactly up to its capacity, then as Space-Saving: a new
// key replaces the smallest (ties: the greatest key) and inherits its
// count. Entries are sorted by key.
type topK struct{ e []KeyCount }

func (t *topK) add(key string, capacity int) {
	i, found := sort.Find(len(t.e), func(i int) int { return strings.Compare(key, t.e[i].Key) })
	if found {
		t.e[i].Count++
		return
	}
	count := int64(1)
	if len(t.e) >= capacity {
		m := 0
		for j := range t.e {
			if t.e[j].Count < t.e[m].Count || t.e[j].Count == t.e[m].Count && t.e[j].Key > t.e[m].Key {
				m = j
			}
		}
		count = t.e[m].Count + 1
		t.e = append(t.e[:m], t.e[m+1:]...)
		if m < i {
			i--
		}
	}
	t.e = append(t.e, KeyCount{})
	copy(t.e[i+1:], t.e[i:])
	t.e[i] = KeyCount{Key: strings.Clone(key), Count: count}
}

// ResultKind is the shape of a feature's value.
type ResultKind uint8

// Result kinds.
const (
	NumberResult ResultKind = iota // count, sum, mean, min, max, last of a number, approx_*, decayed_*
	StringResult                   // last of a string
	ListResult                     // last_k_distinct
	TopResult                      // top_k
)

// KeyCount is one entry of a top_k value.
type KeyCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// Result is a feature's value. Empty marks a value undefined for an empty
// window (mean, min, max, last, approx_percentile): JSON null. Counts and
// sums of an empty window are 0, lists are [].
type Result struct {
	Kind   ResultKind
	Empty  bool
	Number float64
	Text   string
	Items  []string
	Top    []KeyCount
}

// Float is the result as one number: the number; the length of a list or
// top_k; 0 for strings and empty values.
func (r Result) Float() float64 {
	switch r.Kind {
	case ListResult:
		return float64(len(r.Items))
	case TopResult:
		return float64(len(r.Top))
	case StringResult:
		return 0
	}
	if r.Empty {
		return 0
	}
	return r.Number
}

// MarshalJSON writes a number, a string, a list of strings, a list of
// {key, count}, or null.
func (r Result) MarshalJSON() ([]byte, error) {
	switch r.Kind {
	case ListResult:
		if r.Items == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(r.Items)
	case TopResult:
		if r.Top == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(r.Top)
	}
	if r.Empty {
		return []byte("null"), nil
	}
	if r.Kind == StringResult {
		return json.Marshal(r.Text)
	}
	if !finite(r.Number) {
		return []byte("null"), nil
	}
	return json.Marshal(r.Number)
}

func (f *feature) resultKind() ResultKind {
	switch f.kind {
	case pLastStr:
		return StringResult
	case pLastK:
		return ListResult
	case pTopK:
		return TopResult
	}
	return NumberResult
}

// inWindow returns the range [lo, hi) of the tiles a read at now covers.
func (f *feature) inWindow(s *Series, now time.Time) (lo, hi int) {
	if len(s.b) == 0 || f.window.Kind == AllTime {
		return 0, len(s.b)
	}
	ms := now.UnixMilli()
	width := f.width
	switch f.window.Kind {
	case Tumbling:
		target := f.tileStart(ms)
		if f.window.Emit == Complete {
			target -= f.size
		}
		for i := len(s.b) - 1; i >= 0; i-- {
			if s.b[i].start == target {
				return i, i + 1
			}
			if s.b[i].start < target {
				break
			}
		}
		return 0, 0
	}
	from := ms - f.size
	hi = len(s.b)
	for hi > 0 && s.b[hi-1].start > ms {
		hi--
	}
	lo = hi
	for lo > 0 && s.b[lo-1].start+width > from {
		lo--
	}
	return lo, hi
}

// result evaluates s at now.
func (f *feature) result(s *Series, now time.Time) Result {
	r := Result{Kind: f.resultKind()}
	var bs []bucket
	var rs []tileRef // beside bs, for the kinds with refs
	if s != nil && f.readable(s) {
		v := s.view()
		lo, hi := f.inWindow(v, now)
		bs = v.b[lo:hi]
		if len(v.refs) >= hi {
			rs = v.refs[lo:hi]
		}
	}
	var n int64
	for i := range bs {
		n += bs[i].n
	}
	switch f.kind {
	case pCount:
		r.Number = float64(n) * f.scale
	case pSum:
		var sum float64
		for i := range bs {
			sum += bs[i].x
		}
		if f.def.Aggregation == Mean {
			if n == 0 {
				r.Empty = true
			} else {
				r.Number = sum / float64(n)
			}
		} else {
			r.Number = sum * f.scale
		}
	case pMin, pMax:
		r.Empty = true
		for i := range bs {
			if bs[i].n == 0 {
				continue
			}
			x := bs[i].x
			if r.Empty || f.kind == pMin && x < r.Number || f.kind == pMax && x > r.Number {
				r.Number = x
			}
			r.Empty = false
		}
	case pLastNum, pLastStr:
		r.Empty = true
		var bt int64
		for i := range bs {
			b := &bs[i]
			if b.n == 0 {
				continue
			}
			var text string
			if f.kind == pLastStr && i < len(rs) {
				text = rs[i].s
			}
			if r.Empty || b.t > bt || b.t == bt && (f.kind == pLastNum && b.x > r.Number || f.kind == pLastStr && text > r.Text) {
				bt, r.Number, r.Text = b.t, b.x, text
			}
			r.Empty = false
		}
		if f.kind == pLastStr {
			r.Number = 0
		}
	case pLastK:
		acc := &lastK{}
		for i := range bs {
			if lk, ok := peek(f.kind, bs[i].start, rs, i).(*lastK); ok {
				for _, e := range lk.e {
					acc.add(e.v, e.t, f.k)
				}
			}
		}
		r.Items = make([]string, len(acc.e))
		for i, e := range acc.e {
			r.Items[i] = e.v
		}
	case pHLL:
		var acc *hyperloglog.Sketch
		for i := range bs {
			sk, ok := peek(f.kind, bs[i].start, rs, i).(*hyperloglog.Sketch)
			if !ok || sk == nil {
				continue
			}
			if acc == nil {
				acc = sk.Clone()
			} else if acc.Merge(sk) != nil {
				continue
			}
		}
		if acc != nil {
			r.Number = float64(acc.Estimate())
		}
	case pPct:
		r.Empty = true
		if len(bs) > 0 {
			r.Number, r.Empty = percentile(s.kind, bs, rs, f.p)
		}
	case pTopK:
		counts := map[string]int64{}
		for i := range bs {
			if tk, ok := peek(f.kind, bs[i].start, rs, i).(*topK); ok {
				for _, kc := range tk.e {
					counts[kc.Key] += kc.Count
				}
			}
		}
		r.Top = make([]KeyCount, 0, len(counts))
		for k, c := range counts {
			r.Top = append(r.Top, KeyCount{Key: k, Count: c})
		}
		sort.Slice(r.Top, func(i, j int) bool {
			a, b := r.Top[i], r.Top[j]
			return a.Count > b.Count || a.Count == b.Count && a.Key < b.Key
		})
		if len(r.Top) > f.k {
			r.Top = r.Top[:f.k]
		}
	case pDecay:
		for i := range bs {
			b := &bs[i]
			if b.n > 0 {
				r.Number += b.x * math.Exp2(-float64(now.UnixNano()-b.t)/f.halfLife)
			}
		}
	}
	return r
}
