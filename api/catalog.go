package api

import "time"

// FeatureCatalog is the body of GET /v1/features: every served feature
// with its definition and the current distribution of its values (the web
// console's Features page).
type FeatureCatalog struct {
	Entities []EntityCatalog `json:"entities"`
	// At is the time the windows were evaluated at.
	At     time.Time `json:"at"`
	TookMS float64   `json:"took_ms"`
}

// EntityCatalog is one entity's features.
type EntityCatalog struct {
	Entity string `json:"entity"`
	// Population says what the distributions are over ("live streams in
	// the serving index", "every user in the table", "first 2000 users of
	// the table by key"); Count is how many were read and Truncated whether
	// the table has more.
	Population string `json:"population"`
	Count      int    `json:"count"`
	Truncated  bool   `json:"truncated,omitempty"`
	// Error says the table could not be read (e.g. while its view
	// recovers); the definitions are there, the distributions empty.
	Error    string        `json:"error,omitempty"`
	Features []FeatureInfo `json:"features"`
}

// FeatureInfo is one feature's definition, in the words of the features
// file (durations as "5m", the window as "sliding 5m every 30s"), and the
// distribution of its current values.
type FeatureInfo struct {
	Name         string       `json:"name"`
	Description  string       `json:"description,omitempty"`
	Entity       string       `json:"entity"`
	Sources      []string     `json:"sources"`
	Filter       string       `json:"filter,omitempty"`
	Field        string       `json:"field,omitempty"`
	Aggregation  string       `json:"aggregation"`
	Window       string       `json:"window"`
	Lateness     string       `json:"lateness"`
	K            int          `json:"k,omitempty"`
	P            float64      `json:"p,omitempty"`
	HalfLife     string       `json:"half_life,omitempty"`
	Per          string       `json:"per,omitempty"`
	Distribution Distribution `json:"distribution"`
}

// Distribution summarizes a feature's current values across entities, as
// numbers (a list's length for last_k_distinct and top_k; entities whose
// value is null or not a number are left out).
type Distribution struct {
	Count   int     `json:"count"`
	NonZero int     `json:"non_zero"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	// Bins are equal-width over [Min, Max]: one bin when every value is
	// the same, none when Count is 0.
	Bins []Bin `json:"bins"`
}

// Bin is one histogram bin: values in [Lo, Hi) (the last bin includes Hi).
type Bin struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Count int     `json:"count"`
}
