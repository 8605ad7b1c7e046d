package api

// Status of a livestream (events.Status is this type).
type Status string

// Livestream statuses.
const (
	StatusScheduled Status = "scheduled"
	StatusLive      Status = "live"
	StatusEnded     Status = "ended"
)

// Built-in numeric attributes of a stream besides its features.
const (
	AttrViewersNow  = "viewers_now"  // concurrent viewers
	AttrLiveMinutes = "live_minutes" // minutes since the stream went live (0 unless live)
)

// Range bounds a numeric attribute: viewers_now, live_minutes or any
// livestream feature by name. Nil bounds are open. A stream whose feature
// has no value (null: e.g. the max of a window without events) matches no
// range on it.
type Range struct {
	Field string   `json:"field"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// AtLeast is the range field ≥ min.
func AtLeast(field string, min float64) Range { return Range{Field: field, Min: &min} }

// AtMost is the range field ≤ max.
func AtMost(field string, max float64) Range { return Range{Field: field, Max: &max} }

// Between is the range min ≤ field ≤ max.
func Between(field string, min, max float64) Range { return Range{Field: field, Min: &min, Max: &max} }

// Filter restricts a query. Empty sets mean "any"; Status empty means live
// in requests (the server fills it in).
type Filter struct {
	Status         []Status `json:"status,omitempty"`
	Categories     []string `json:"category,omitempty"`
	Languages      []string `json:"language,omitempty"`
	ExcludeSellers []string `json:"exclude_sellers,omitempty"`
	ExcludeStreams []string `json:"exclude_streams,omitempty"`
	Ranges         []Range  `json:"ranges,omitempty"`
}
