package features

import "time"

// State is the windowed-feature state of one entity: one series per feature
// and the entity's watermark (the newest event time it has seen).
type State struct {
	Watermark time.Time          `json:"watermark"`
	Series    map[string]*Series `json:"series,omitempty"`
}

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
	fed := false
	for _, d := range s.defs {
		if !d.Accepts(o.Source, o.Type) {
			continue
		}
		fed = true
		if o.Time.Before(st.Watermark.Add(-d.Lateness)) {
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
	if o.Time.After(st.Watermark) {
		st.Watermark = o.Time
	}
	for _, d := range s.defs {
		if ser := st.Series[d.Name]; ser != nil {
			ser.Evict(d.Window, st.Watermark.Add(-d.Lateness))
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
