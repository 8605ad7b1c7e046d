package features

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// State is the feature state of one entity (one key): one Series per
// feature, the entity's watermark per source, and the late events dropped
// per feature.
//
// Lateness is judged per source: an event is late for a feature when it is
// older than the newest event of the same source (topic) for this entity
// minus the feature's allowed lateness. Within one topic partition the order
// of events is fixed, so the result does not depend on how a consumer
// interleaves several topics — a backlog replayed from offset 0 gives the
// same values as live processing.
//
// A State is not safe for concurrent mutation; reading values (Set.Values,
// Set.Results, Definition.Value) does not modify it.
type State struct {
	// Watermark is the newest event time seen from any source.
	Watermark time.Time `json:"watermark"`
	// Sources holds the newest event time per source.
	Sources map[string]time.Time `json:"sources,omitempty"`
	// Series holds each feature's tiles, by feature name.
	Series map[string]*Series `json:"-"`
	// Dropped counts the late events dropped per feature.
	Dropped map[string]int64 `json:"-"`
	// Warming maps a feature still waiting for its backfill's merge to
	// the backfill's id (see Set.MergeBackfill): its value covers only the
	// events since the backfill's split. Backfilled lists the ids of the
	// backfills merged, sorted: a backfill merges once.
	Warming    map[string]string `json:"-"`
	Backfilled []string          `json:"-"`
}

// SourceWatermark is the newest event time seen from source.
func (st *State) SourceWatermark(source string) time.Time { return st.Sources[source] }

// Empty reports whether no feature holds any tile: after eviction, such a
// key can be deleted from its table (see Set.Idle for keys no event visits).
func (st *State) Empty() bool {
	for _, s := range st.Series {
		if !s.empty() {
			return false
		}
	}
	return true
}

// Set is a compiled, validated list of features with unique names.
type Set struct {
	defs     []Definition
	feats    []*feature
	index    map[string]int
	bySource map[string][]*feature
}

// Option configures NewSet and Parse.
type Option func(*options)

type options struct {
	retention time.Duration
	filename  string
}

// WithRetention sets the retention that bounds allowed lateness (default
// DefaultRetention, the input topics'); 0 disables the check.
func WithRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithFilename names the file in Parse's errors.
func WithFilename(name string) Option { return func(o *options) { o.filename = name } }

func makeOptions(opts []Option) options {
	o := options{retention: DefaultRetention}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// NewSet validates and compiles defs.
func NewSet(defs ...Definition) (*Set, error) { return Compile(defs) }

// Compile validates and compiles defs with options. Its error is Errors.
func Compile(defs []Definition, opts ...Option) (*Set, error) {
	o := makeOptions(opts)
	s := &Set{index: map[string]int{}, bySource: map[string][]*feature{}}
	var errs Errors
	for _, d := range defs {
		d.c = nil
		d = d.normalized()
		if es := d.check(o.retention); len(es) > 0 {
			errs = append(errs, es...)
			continue
		}
		if _, dup := s.index[d.Name]; dup {
			errs = append(errs, &Error{Feature: d.Name, Path: "name", Msg: "defined twice",
				Fix: "a changed definition gets a new name (e.g. " + d.Name + "_v2)"})
			continue
		}
		f, err := compile(d)
		if err != nil {
			errs = append(errs, &Error{Feature: d.Name, Msg: err.Error()})
			continue
		}
		f.index = len(s.feats)
		d.Sources = slices.Clone(d.Sources)
		d.c = f
		s.index[d.Name] = len(s.defs)
		s.defs = append(s.defs, d)
		s.feats = append(s.feats, f)
		for _, src := range d.Sources {
			s.bySource[src] = append(s.bySource[src], f)
		}
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// All returns the definitions in order.
func (s *Set) All() []Definition { return s.defs }

// Len is the number of features.
func (s *Set) Len() int { return len(s.defs) }

// Get returns a definition by name.
func (s *Set) Get(name string) (Definition, bool) {
	i, ok := s.index[name]
	if !ok {
		return Definition{}, false
	}
	return s.defs[i], true
}

// MaxLateness is the longest allowed lateness in the set.
func (s *Set) MaxLateness() time.Duration {
	var m time.Duration
	for _, d := range s.defs {
		m = max(m, d.Lateness)
	}
	return m
}

// Entities lists the entities of the set's features, sorted.
func (s *Set) Entities() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range s.defs {
		if e := d.entity(); !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	sort.Strings(out)
	return out
}

// Sources lists the sources the set's features read, sorted.
func (s *Set) Sources() []string {
	out := make([]string, 0, len(s.bySource))
	for src := range s.bySource {
		out = append(out, src)
	}
	sort.Strings(out)
	return out
}

// ForEntity is the subset of features of one entity: what one processor
// group (keyed by the entity) applies to its states.
func (s *Set) ForEntity(entity string) *Set {
	var defs []Definition
	for _, d := range s.defs {
		if d.entity() == entity {
			defs = append(defs, d)
		}
	}
	sub, err := Compile(defs, WithRetention(0))
	if err != nil {
		panic(fmt.Sprintf("features: subset of a valid set: %v", err))
	}
	return sub
}

// Outcome says what Apply did with one event.
type Outcome struct {
	// Fed is the number of features the event passed the source and
	// filter of; Late how many of them dropped it as late.
	Fed, Late int
}

// Dropped reports whether the event was late for every feature it fed.
func (o Outcome) Dropped() bool { return o.Late > 0 && o.Late == o.Fed }

// ApplyEvent folds ev into st for every feature whose source and filter accept
// it, then evicts the tiles no read at or after the watermark minus the
// lateness can need. A feature drops an event older than its source's
// watermark for this entity minus the feature's lateness, and counts it in
// st.Dropped; the Outcome says how many features took and dropped it.
//
// Every feature of the set is applied: give a processor the features of
// its own entity (ForEntity).
func (s *Set) ApplyEvent(st *State, ev Event) Outcome {
	src := ev.Source()
	feats := s.bySource[src]
	t := ev.Time()
	if st.Sources == nil {
		st.Sources = map[string]time.Time{}
	}
	wm := st.Sources[src]
	var out Outcome
	for _, f := range feats {
		if (f.filter != nil || f.types != nil) && !f.pass(ev) {
			continue
		}
		out.Fed++
		if t.Before(wm.Add(-f.lateness)) {
			out.Late++
			if st.Dropped == nil {
				st.Dropped = map[string]int64{}
			}
			st.Dropped[f.name]++
			continue
		}
		if st.Series == nil {
			st.Series = map[string]*Series{}
		}
		ser := st.Series[f.name]
		if ser == nil || !f.fits(ser) {
			switch {
			case ser != nil && f.legacy(ser):
				ser.kind, ser.width = f.kind, f.width
				ser.changed()
			case ser != nil && f.oldPct(ser):
				ser.adoptOldPct()
			default:
				ser = &Series{kind: f.kind, width: f.width}
				st.Series[f.name] = ser
			}
		}
		f.add(ser, ev, t, st.horizon(f))
	}
	if t.After(wm) {
		st.Sources[src] = t
		for _, f := range feats {
			if ser := st.Series[f.name]; ser != nil {
				f.evict(ser, st.horizon(f))
				if ser.empty() {
					delete(st.Series, f.name)
				}
			}
		}
	}
	if t.After(st.Watermark) {
		st.Watermark = t
	}
	return out
}

// horizon is the feature's eviction horizon (unix ns): the newest event
// time of any of its sources for this entity, minus its lateness.
func (st *State) horizon(f *feature) int64 {
	var wm time.Time
	for _, src := range f.sources {
		if t := st.Sources[src]; t.After(wm) {
			wm = t
		}
	}
	if wm.IsZero() {
		return minNanos
	}
	return wm.Add(-f.lateness).UnixNano()
}

const minNanos = -1 << 62

// Values evaluates every feature of st at time now as one number each
// (see Result.Float).
func (s *Set) Values(st *State, now time.Time) map[string]float64 {
	out := make(map[string]float64, len(s.defs))
	for _, f := range s.feats {
		out[f.name] = f.result(st.Series[f.name], now).Float()
	}
	return out
}

// Results evaluates every feature of st at time now.
func (s *Set) Results(st *State, now time.Time) map[string]Result {
	out := make(map[string]Result, len(s.defs))
	for _, f := range s.feats {
		out[f.name] = f.result(st.Series[f.name], now)
	}
	return out
}

// Result evaluates one feature of st at time now.
func (s *Set) Result(st *State, name string, now time.Time) (Result, bool) {
	i, ok := s.index[name]
	if !ok {
		return Result{}, false
	}
	return s.feats[i].result(st.Series[name], now), true
}

// Idle reports whether a key can be deleted: every series of st would be
// evicted at the partition's watermarks (or the key's own, if newer). A
// series of no feature of the set (a removed definition), or of another
// shape than its definition's, counts as expired.
// Deleting an idle key changes no value read at or after the partition
// watermarks minus the lateness. See README.md, "Idle keys".
func (s *Set) Idle(st *State, pw *Watermarks) bool {
	for name, ser := range st.Series {
		i, ok := s.index[name]
		if !ok || ser.empty() {
			continue
		}
		f := s.feats[i]
		h := st.horizon(f)
		if pw != nil {
			for _, src := range f.sources {
				if t, ok := pw.m[src]; ok {
					h = max(h, t.Add(-f.lateness).UnixNano())
				}
			}
		}
		if !f.readable(ser) {
			continue // a stale shape: reads as empty, replaced by the next event
		}
		if !f.idle(ser, h) {
			return false
		}
	}
	return true
}

// Watermarks is the newest event time per source seen in one partition
// (the max over its keys). A processor keeps one per partition in memory,
// fed with every event it handles (Observe), and uses it with Set.Idle to
// expire keys that no event visits any more. Not safe for concurrent use.
type Watermarks struct{ m map[string]time.Time }

// Observe records an event of source at time t.
func (w *Watermarks) Observe(source string, t time.Time) {
	if w.m == nil {
		w.m = map[string]time.Time{}
	}
	if t.After(w.m[source]) {
		w.m[source] = t
	}
}

// Of is the newest event time seen from source (zero if none).
func (w *Watermarks) Of(source string) time.Time { return w.m[source] }

// Observation is one event as the engine saw it before Event: a source, a
// type, a time and numeric fields.
//
// Deprecated: implement Event and call Set.ApplyEvent; kept for the
// processors until they do. Its "type" field reads Type, other fields read
// Fields.
type Observation struct {
	Source string
	Type   string
	Time   time.Time
	Fields map[string]float64
}

type observationEvent struct{ o *Observation }

func (e observationEvent) Source() string  { return e.o.Source }
func (e observationEvent) Time() time.Time { return e.o.Time }
func (e observationEvent) Field(name string) (Value, bool) {
	if name == "type" || name == "status" && e.o.Source == "livestreams" {
		return StringValue(e.o.Type), e.o.Type != ""
	}
	f, ok := e.o.Fields[name]
	return NumberValue(f), ok
}

// Apply applies an Observation; it returns false when the event was late
// for every feature it fed (and true when it fed none).
//
// Deprecated: use ApplyEvent with an Event; the processors move to it.
func (s *Set) Apply(st *State, o Observation) bool {
	return !s.ApplyEvent(st, observationEvent{&o}).Dropped()
}
