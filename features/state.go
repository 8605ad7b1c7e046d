package features

import "time"

// State is the windowed-feature state of one entity: one series per feature
// and the entity's watermarks.
//
// Lateness is judged per source: an event is late when it is older than the
// newest event of the same source (topic) for this entity minus the allowed
// lateness. Within one topic partition the order of events is fixed, so the
// result does not depend on how a consumer interleaves several topics — a
// backlog replayed from offset 0 gives the same values as live processing.
type State struct {
	// Watermark is the newest event time seen from any source.
	Watermark time.Time `json:"watermark"`
	// Sources holds the newest event time per source.
	Sources map[string]time.Time `json:"sources,omitempty"`
	Series  map[string]*Series   `json:"series,omitempty"`
}

// SourceWatermark is the newest event time seen from source.
func (st *State) SourceWatermark(source string) time.Time { return st.Sources[source] }

// Observation is one event as the feature engine sees it.
type Observation struct {
	Source string
	Type   string
	Time   time.Time
	Fields map[string]float64
}

// Apply folds one observation into st for every definition that accepts it.
// It returns false (and changes nothing) when the event is later than the
// allowed lateness of every feature it feeds: such events are dropped and
// must be counted by the caller, never silently merged.
func (s *Set) Apply(st *State, o Observation) (applied bool) {
	if st.Series == nil {
		st.Series = map[string]*Series{}
	}
	if st.Sources == nil {
		st.Sources = map[string]time.Time{}
	}
	wm := st.Sources[o.Source]
	fed := false
	for _, d := range s.defs {
		if !d.Accepts(o.Source, o.Type) {
			continue
		}
		fed = true
		if o.Time.Before(wm.Add(-d.Lateness)) {
			continue
		}
		v := 0.0
		if d.Field != "" {
			v = o.Fields[d.Field]
		}
		ser := st.Series[d.Name]
		if ser == nil {
			ser = &Series{}
			st.Series[d.Name] = ser
		}
		ser.Add(d.Window, o.Time, v)
		applied = true
	}
	if !fed {
		applied = true // nothing to drop: no feature reads this event
	}
	if o.Time.After(wm) {
		wm = o.Time
		st.Sources[o.Source] = wm
	}
	if o.Time.After(st.Watermark) {
		st.Watermark = o.Time
	}
	for _, d := range s.defs {
		if d.Source != o.Source {
			continue
		}
		if ser := st.Series[d.Name]; ser != nil {
			ser.Evict(d.Window, wm.Add(-d.Lateness))
			if len(ser.Buckets) == 0 {
				delete(st.Series, d.Name)
			}
		}
	}
	return applied
}

// Values evaluates every feature of st at time now.
func (s *Set) Values(st *State, now time.Time) map[string]float64 {
	out := make(map[string]float64, len(s.defs))
	for _, d := range s.defs {
		out[d.Name] = d.Value(st.Series[d.Name], now)
	}
	return out
}
