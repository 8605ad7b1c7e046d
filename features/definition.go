package features

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Aggregation says how a window's events become one value.
type Aggregation string

// Aggregations.
const (
	Count            Aggregation = "count"             // events
	Sum              Aggregation = "sum"               // Σ field
	Mean             Aggregation = "mean"              // Σ field / events
	Min              Aggregation = "min"               // smallest field
	Max              Aggregation = "max"               // largest field
	Last             Aggregation = "last"              // field of the newest event (by event time; ties: the greater value)
	LastKDistinct    Aggregation = "last_k_distinct"   // the K most recent distinct field values, newest first (ties: the greater)
	ApproxDistinct   Aggregation = "approx_distinct"   // distinct field values, HyperLogLog (exact while sparse)
	ApproxPercentile Aggregation = "approx_percentile" // the field's value at rank ⌈P·n⌉: exact while tiles are small, then DDSketch (1% relative error)
	TopK             Aggregation = "top_k"             // the K most frequent field values with their counts
	DecayedSum       Aggregation = "decayed_sum"       // Σ field·2^(−age/half_life), all time
	DecayedCount     Aggregation = "decayed_count"     // Σ 2^(−age/half_life), all time
)

// Aggregations lists every aggregation.
func Aggregations() []Aggregation {
	return []Aggregation{Count, Sum, Mean, Min, Max, Last, LastKDistinct, ApproxDistinct, ApproxPercentile, TopK, DecayedSum, DecayedCount}
}

// Stated accuracy of the approximate aggregations.
const (
	// PercentileAccuracy is DDSketch's relative accuracy: once a window
	// holds a tile of more than PercentileExact values, the returned q̂ of
	// the exact value q at rank ⌈P·n⌉ satisfies |q̂−q| ≤ 1%·|q| (while the
	// values' magnitudes span at most the 2048 bins, a ratio of ~1e17).
	PercentileAccuracy = 0.01
	percentileMaxBins  = 2048
	// DefaultPrecision is the HyperLogLog precision p (2^p registers):
	// exact up to 25-bit hash collisions while the window's merged sketch
	// is sparse (its compressed list within 2^p bytes: about 1500 distinct
	// values at p = 12), then a relative standard error of 1.04/√(2^p) =
	// 1.6% at p = 12.
	DefaultPrecision = 12
	// DefaultTopKCapacity is the capacity factor of top_k: each tile keeps
	// exact counts of up to max(10·K, 20) keys (or Capacity); beyond that it
	// is a Space-Saving summary that overestimates a count by at most the
	// tile's events / capacity.
	DefaultTopKCapacity = 10
	// MaxK bounds K for top_k and last_k_distinct.
	MaxK = 100
	// MaxHalfLife bounds half_life.
	MaxHalfLife = 365 * 24 * time.Hour
)

// DefaultRetention is the retention of the input topics (7 days): allowed
// lateness may not exceed it (an event that late could not be replayed).
const DefaultRetention = 7 * 24 * time.Hour

// Definition is one feature: which entity it describes, which events feed
// it (Sources, Filter), which value of them (Field, an expression; usually
// a field name), how they aggregate over which window, and how late an
// event may arrive.
//
// A definition is immutable once served: a changed definition gets a new
// name (see README.md, "Versioning").
type Definition struct {
	Name        string        `json:"name"`
	Description string        `json:"description,omitempty"`
	Entity      string        `json:"entity"`           // livestream | user | seller | a key field (default livestream)
	Sources     []string      `json:"sources"`          // input topics: livestreams, viewing, chat, auctions
	Filter      string        `json:"filter,omitempty"` // bool expression; "" = every event
	Field       string        `json:"field,omitempty"`  // projection: a field or an expression; "" for count
	Aggregation Aggregation   `json:"aggregation"`
	Window      Window        `json:"window"`
	Lateness    time.Duration `json:"lateness"`
	K           int           `json:"k,omitempty"`         // top_k, last_k_distinct
	P           float64       `json:"p,omitempty"`         // approx_percentile: quantile in (0, 1)
	HalfLife    time.Duration `json:"half_life,omitempty"` // decayed_*
	Per         time.Duration `json:"per,omitempty"`       // count, sum: report a rate per this duration (e.g. per minute)
	Precision   int           `json:"precision,omitempty"` // approx_distinct: HyperLogLog precision 4..16 (default 12)
	Capacity    int           `json:"capacity,omitempty"`  // top_k: keys kept exactly per tile (default max(10·K, 20))

	// Source is the single-source form of Sources.
	//
	// Deprecated: use Sources. Compile adds it to Sources, and sets it to
	// the only source of a single-source feature.
	Source string `json:"source,omitempty"`
	// Types keeps only events of these types: the field type (viewing,
	// auctions), status (livestreams), "message" (chat).
	//
	// Deprecated: use Filter, e.g. type in ["bid", "sold"].
	Types []string `json:"types,omitempty"`

	c *feature // compiled by NewSet
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// needsField reports whether an aggregation aggregates a projection.
func (a Aggregation) needsField() bool { return a != Count && a != DecayedCount }

func (a Aggregation) numeric() bool {
	switch a {
	case Sum, Mean, Min, Max, ApproxPercentile, DecayedSum:
		return true
	}
	return false
}

func (a Aggregation) keyed() bool {
	return a == ApproxDistinct || a == TopK || a == LastKDistinct
}

func (a Aggregation) decayed() bool { return a == DecayedSum || a == DecayedCount }

func (a Aggregation) valid() bool { return slices.Contains(Aggregations(), a) }

func aggregationNames() []string {
	out := make([]string, 0, 12)
	for _, a := range Aggregations() {
		out = append(out, string(a))
	}
	return out
}

// Validate checks one definition with the default retention.
func (d Definition) Validate() error { return Errors(d.check(DefaultRetention)).err() }

// entity returns the entity, livestream by default.
func (d Definition) entity() string {
	if d.Entity == "" {
		return "livestream"
	}
	return d.Entity
}

// normalized folds the deprecated Source into Sources.
func (d Definition) normalized() Definition {
	if d.Source != "" && !slices.Contains(d.Sources, d.Source) {
		d.Sources = append([]string{d.Source}, d.Sources...)
	}
	if len(d.Sources) == 1 {
		d.Source = d.Sources[0]
	}
	return d
}

// check validates d; errors carry the definition's key paths.
func (d Definition) check(retention time.Duration) []*Error {
	d = d.normalized()
	var errs []*Error
	add := func(path, fix, format string, args ...any) {
		errs = append(errs, &Error{Feature: d.Name, Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix})
	}
	if !nameRE.MatchString(d.Name) {
		fix := "lower_snake_case, e.g. bids_5m"
		if s := strings.ToLower(strings.NewReplacer("-", "_", " ", "_", ".", "_").Replace(d.Name)); nameRE.MatchString(s) {
			fix = fmt.Sprintf("name it %s", s)
		}
		add("name", fix, "feature name %q: want lower_snake_case, starting with a letter, 1..64 characters", d.Name)
	}
	// Sources.
	known := SourceNames()
	srcOK := len(d.Sources) > 0
	if len(d.Sources) == 0 {
		add("sources", "e.g. sources: [chat]", "at least one source required (one of %s)", strings.Join(known, ", "))
	}
	seen := map[string]bool{}
	for _, s := range d.Sources {
		if _, ok := schemas[s]; !ok {
			add("sources", didYouMean(s, known), "unknown source %q", s)
			srcOK = false
		} else if seen[s] {
			add("sources", "list it once", "source %s listed twice", s)
		}
		seen[s] = true
	}
	// Entity: its key field must be a string in every source's schema.
	ent := d.entity()
	key := KeyField(ent)
	if !nameRE.MatchString(ent) {
		add("entity", "livestream, user, seller, or a key field of the events", "bad entity %q", ent)
	} else if srcOK {
		for _, s := range d.Sources {
			t, ok := schemas[s][key]
			switch {
			case !ok:
				fix := "key by a field every source has: " + strings.Join(keyCandidates(d.Sources), ", ")
				if _, isEnt := entityKeys[ent]; !isEnt {
					if m := suggest(ent, append(keyCandidates(d.Sources), "livestream", "user", "seller")); m != "" {
						fix = fmt.Sprintf("did you mean %q?", m)
					}
				}
				add("entity", fix, "entity %s is keyed by %s, which is missing from source %s's schema", ent, key, s)
			case t != TypeString:
				add("entity", "key by a string field", "entity %s is keyed by %s, a %s", ent, key, t)
			}
		}
	}
	// Aggregation and its parameters.
	agg := d.Aggregation
	if !agg.valid() {
		if agg == "" {
			add("aggregation", "one of: "+strings.Join(aggregationNames(), ", "), "aggregation required")
		} else {
			add("aggregation", didYouMean(string(agg), aggregationNames()), "unknown aggregation %q", agg)
		}
	}
	if agg.valid() {
		if agg.needsField() && d.Field == "" {
			add("field", "name the field to aggregate, e.g. field: amount", "%s needs a field (the value aggregated)", agg)
		}
		if !agg.needsField() && d.Field != "" {
			fix := "remove field"
			if agg == Count {
				fix = "remove field, or use sum"
			}
			add("field", fix, "%s takes no field", agg)
		}
		needK := agg == TopK || agg == LastKDistinct
		switch {
		case needK && (d.K < 1 || d.K > MaxK):
			add("k", fmt.Sprintf("set k between 1 and %d", MaxK), "%s needs k in 1..%d, got %d", agg, MaxK, d.K)
		case !needK && d.K != 0:
			add("k", "remove k", "k applies to top_k and last_k_distinct only")
		}
		switch {
		case agg == ApproxPercentile && !(d.P > 0 && d.P < 1):
			fix := "e.g. p: 0.9 for the 90th percentile"
			if d.P > 1 && d.P < 100 {
				fix = fmt.Sprintf("did you mean p: %g?", d.P/100)
			}
			add("p", fix, "approx_percentile needs p in (0, 1), got %g", d.P)
		case agg != ApproxPercentile && d.P != 0:
			add("p", "remove p", "p applies to approx_percentile only")
		}
		switch {
		case agg.decayed() && (d.HalfLife <= 0 || d.HalfLife > MaxHalfLife):
			add("half_life", "e.g. half_life: 7d", "%s needs half_life in (0, %s], got %s", agg, FormatDuration(MaxHalfLife), FormatDuration(d.HalfLife))
		case !agg.decayed() && d.HalfLife != 0:
			add("half_life", "remove half_life, or use decayed_sum/decayed_count", "half_life applies to decayed_sum and decayed_count only")
		}
		if agg.decayed() && d.Window.Kind != AllTime {
			add("window", "window: all_time (the half-life does the forgetting)", "%s is all-time", agg)
		}
		switch {
		case d.Per < 0:
			add("per", "e.g. per: 1m", "negative per")
		case d.Per > 0 && agg != Count && agg != Sum:
			add("per", "remove per", "per (a rate) applies to count and sum only")
		case d.Per > 0 && d.Window.Kind == AllTime:
			add("per", "remove per, or use a sliding or tumbling window", "per needs a window with a size")
		}
		switch {
		case agg == ApproxDistinct && d.Precision != 0 && (d.Precision < 4 || d.Precision > 16):
			add("precision", "4..16 (12 = 1.6% error)", "precision %d out of range", d.Precision)
		case agg != ApproxDistinct && d.Precision != 0:
			add("precision", "remove precision", "precision applies to approx_distinct only")
		}
		switch {
		case agg == TopK && (d.Capacity < 0 || d.Capacity > 10000 || d.Capacity != 0 && d.Capacity < d.K):
			add("capacity", fmt.Sprintf("k..10000 (default %d)", max(DefaultTopKCapacity*d.K, 20)), "capacity %d out of range", d.Capacity)
		case agg != TopK && d.Capacity != 0:
			add("capacity", "remove capacity", "capacity applies to top_k only")
		}
	}
	// Window and lateness.
	maxTiles := MaxTiles
	if agg.keyed() || agg == ApproxPercentile {
		maxTiles = MaxSketchTiles
	}
	errs = append(errs, withFeature(d.Name, d.Window.check(max(d.Lateness, 0), maxTiles))...)
	switch {
	case d.Lateness < 0:
		add("lateness", "e.g. lateness: 2m", "negative lateness")
	case retention > 0 && d.Lateness > retention:
		add("lateness", fmt.Sprintf("at most %s", FormatDuration(retention)),
			"lateness %s is longer than the source retention %s: so late an event could not be replayed", FormatDuration(d.Lateness), FormatDuration(retention))
	}
	// Expressions.
	if srcOK {
		sch := schemaOf(d.Sources)
		if d.Filter != "" {
			c, err := compileExpr(d.Filter, sch)
			switch {
			case err != nil:
				add("filter", err.Fix, "%s in %q", err.Msg, d.Filter)
				errs[len(errs)-1].exprPos = err.Pos + 1
			case c.typ != TypeBool:
				add("filter", `compare it, e.g. type == "bid"`, "filter %q is a %s; it must be true or false", d.Filter, c.typ)
			}
		}
		if d.Field != "" && agg.valid() && agg.needsField() {
			c, err := compileExpr(d.Field, sch)
			switch {
			case err != nil:
				add("field", err.Fix, "%s in %q", err.Msg, d.Field)
				errs[len(errs)-1].exprPos = err.Pos + 1
			case c.typ == TypeList:
				add("field", "aggregate a single value", "field %q is a list", d.Field)
			case agg.numeric() && c.typ != TypeNumber && c.typ != TypeBool:
				add("field", "aggregate a number (bools count as 1/0)", "%s needs a number, %q is a %s", agg, d.Field, c.typ)
			}
		}
	}
	return errs
}

func withFeature(name string, errs []*Error) []*Error {
	for _, e := range errs {
		e.Feature = name
	}
	return errs
}

// keyCandidates are the string fields common to every source.
func keyCandidates(sources []string) []string {
	var out []string
	for k, t := range schemaOf(sources).fields {
		if t == TypeString && strings.HasSuffix(k, "_id") || k == "category" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// KeyField is the event field that keys this feature's entity.
func (d Definition) KeyField() string { return KeyField(d.entity()) }

// Tiles is the most tiles this feature keeps per key.
func (d Definition) Tiles() int { return d.Window.Tiles(d.Lateness) }

// Accepts reports whether an event feeds d: its source is one of d's and
// it passes the filter.
func (d Definition) Accepts(ev Event) bool {
	f := d.compiled()
	if f == nil {
		return false
	}
	return f.accepts(ev)
}

// Value is the feature's value at time now from its series (0 when empty;
// lists give their length, strings 0 — see Result).
func (d Definition) Value(s *Series, now time.Time) float64 {
	return d.Result(s, now).Float()
}

// Result is the feature's typed value at time now from its series.
func (d Definition) Result(s *Series, now time.Time) Result {
	f := d.compiled()
	if f == nil {
		return Result{Empty: true}
	}
	return f.result(s, now)
}

// compiled returns d's compiled form, compiling a hand-made definition.
func (d *Definition) compiled() *feature {
	if d.c != nil {
		return d.c
	}
	if len(d.check(0)) > 0 {
		return nil
	}
	f, err := compile(*d)
	if err != nil {
		return nil
	}
	return f
}
