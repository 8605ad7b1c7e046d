package index

import (
	"fmt"
	"slices"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
)

// Range bounds a numeric attribute: viewers_now, live_minutes or any
// windowed feature name. Nil bounds are open. A feature without a value
// (null) is in no range.
type Range = api.Range

// Filter restricts a query. Empty sets mean "any". It is the HTTP API's
// type: what a request carries is what the index runs.
type Filter = api.Filter

// Built-in numeric attributes besides the windowed features.
const (
	AttrViewersNow  = api.AttrViewersNow
	AttrLiveMinutes = api.AttrLiveMinutes
)

// ValidateFilter checks a filter against the known attributes.
func ValidateFilter(f *Filter, feats *features.Set) error {
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

func compileFilter(f *Filter, feats *features.Set, now time.Time) *compiled {
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

// attr returns a numeric attribute of an item at time now; ok is false for
// a feature without a numeric value (null: e.g. the max of an empty
// window), which no range matches.
func attr(it *Item, field string, def *features.Definition, now time.Time) (v float64, ok bool) {
	switch {
	case def != nil:
		return def.Number(it.Features.Series[def.Name], now)
	case field == AttrViewersNow:
		return float64(it.ViewersNow), true
	case field == AttrLiveMinutes:
		if it.LiveSince.IsZero() || it.Status != events.StatusLive {
			return 0, true
		}
		return now.Sub(it.LiveSince).Minutes(), true
	}
	return 0, false
}

// in reports whether v, a value of the range's field, lies in it; a field
// without a value (ok false) is in no range.
func (r *compiledRange) in(v float64, ok bool) bool {
	return ok && (r.Min == nil || v >= *r.Min) && (r.Max == nil || v <= *r.Max)
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
	for i := range c.ranges {
		r := &c.ranges[i]
		if !r.in(attr(it, r.Field, r.def, c.now)) {
			return false
		}
	}
	return true
}
