package features

import "time"

// Numeric is the result as a number when it has one: a number as it is, a
// list's or top_k's length. ok is false for a value without a number: an
// empty (null) value, a non-finite number, a string. Unlike Float, which
// reads all of those as 0, it keeps "no value" apart from zero, so what is
// null in a feature's typed form is absent from its numeric form, matches
// no range filter and is NaN in a ranking formula.
func (r Result) Numeric() (x float64, ok bool) {
	switch r.Kind {
	case ListResult:
		return float64(len(r.Items)), true
	case TopResult:
		return float64(len(r.Top)), true
	case StringResult:
		return 0, false
	}
	if r.Empty || !finite(r.Number) {
		return 0, false
	}
	return r.Number, true
}

// Number is the feature's numeric value at time now from its series; ok
// is false when it has none (see Result.Numeric).
func (d Definition) Number(s *Series, now time.Time) (x float64, ok bool) {
	return d.Result(s, now).Numeric()
}

// Numbers evaluates every feature of st at time now as a number, leaving
// out the features without one (see Result.Numeric): the numeric form that
// serving's "features" maps and offline recomputation give.
func (s *Set) Numbers(st *State, now time.Time) map[string]float64 {
	out := make(map[string]float64, len(s.defs))
	for _, f := range s.feats {
		if x, ok := f.result(st.Series[f.name], now).Numeric(); ok {
			out[f.name] = x
		}
	}
	return out
}
