package index

import (
	"fmt"
	"slices"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
)

// Range bounds a numeric attribute: viewers_now, live_minutes or any
// windowed feature name. Nil bounds are open.
type Range struct {
	Field string   `json:"field"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// Filter restricts a query. Empty sets mean "any".
type Filter struct {
	Status         []events.Status `json:"status,omitempty"`
	Categories     []string        `json:"category,omitempty"`
	Languages      []string        `json:"language,omitempty"`
	ExcludeSellers []string        `json:"exclude_sellers,omitempty"`
	ExcludeStreams []string        `json:"exclude_streams,omitempty"`
	Ranges         []Range         `json:"ranges,omitempty"`
}

// Built-in numeric attributes besides the windowed features.
const (
	AttrViewersNow  = "viewers_now"
	AttrLiveMinutes = "live_minutes"
)

// Validate checks the filter against the known attributes.
func (f *Filter) Validate(feats *features.Set) error {
	for _, s := range f.Status {
		switch s {
		case events.StatusScheduled, events.StatusLive:
		case events.StatusEnded:
			return fmt.Errorf("status: ended streams are not indexed")
		default:
			return fmt.Errorf("status: %q is not one of scheduled, live", s)
		}
	}
	for _, r := range f.Ranges {
		if r.Field != AttrViewersNow && r.Field != AttrLiveMinutes {
			if _, ok := feats.Get(r.Field); !ok {
				return fmt.Errorf("ranges: unknown field %q (viewers_now, live_minutes or a feature name)", r.Field)
			}
		}
		if r.Min == nil && r.Max == nil {
			return fmt.Errorf("ranges: %s has neither min nor max", r.Field)
		}
		if r.Min != nil && r.Max != nil && *r.Min > *r.Max {
			return fmt.Errorf("ranges: %s min %v > max %v", r.Field, *r.Min, *r.Max)
		}
	}
	return nil
}

// compiled is a filter prepared for scanning.
type compiled struct {
	status    []events.Status
	cats      map[string]bool
	langs     map[string]bool
	noSellers map[string]bool
	noStreams map[string]bool
	ranges    []compiledRange
	now       time.Time
}

type compiledRange struct {
	Range
	def *features.Definition
}

func set(xs []string) map[string]bool {
	if len(xs) == 0 {
		return nil
	}
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func (f *Filter) compile(feats *features.Set, now time.Time) *compiled {
	c := &compiled{
		status: f.Status, cats: set(f.Categories), langs: set(f.Languages),
		noSellers: set(f.ExcludeSellers), noStreams: set(f.ExcludeStreams), now: now,
	}
	for _, r := range f.Ranges {
		cr := compiledRange{Range: r}
		if d, ok := feats.Get(r.Field); ok {
			cr.def = &d
		}
		c.ranges = append(c.ranges, cr)
	}
	return c
}

// Attr returns a numeric attribute of an item at time now.
func attr(it *Item, field string, def *features.Definition, now time.Time) float64 {
	switch {
	case def != nil:
		return def.Value(it.Features.Series[def.Name], now)
	case field == AttrViewersNow:
		return float64(it.ViewersNow)
	case field == AttrLiveMinutes:
		if it.LiveSince.IsZero() || it.Status != events.StatusLive {
			return 0
		}
		return now.Sub(it.LiveSince).Minutes()
	}
	return 0
}

func (c *compiled) match(it *Item) bool {
	if len(c.status) > 0 && !slices.Contains(c.status, it.Status) {
		return false
	}
	if c.cats != nil && !c.cats[it.Category] {
		return false
	}
	if c.langs != nil && !c.langs[it.Language] {
		return false
	}
	if c.noSellers[it.SellerID] || c.noStreams[it.ID] {
		return false
	}
	for _, r := range c.ranges {
		v := attr(it, r.Field, r.def, c.now)
		if (r.Min != nil && v < *r.Min) || (r.Max != nil && v > *r.Max) {
			return false
		}
	}
	return true
}
