package features

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Aggregation says how a window's events become one number.
type Aggregation string

// Aggregations available so far.
const (
	Count Aggregation = "count"
	Sum   Aggregation = "sum"
	Mean  Aggregation = "mean"
)

// Definition is one windowed feature of an entity: which events (Source, and
// optionally only some Types), which value (Field; empty for count), how they
// aggregate and over which window, and how late an event may arrive.
type Definition struct {
	Name        string        `json:"name"`
	Source      string        `json:"source"`          // input topic, e.g. "chat"
	Types       []string      `json:"types,omitempty"` // event types kept; empty = all
	Field       string        `json:"field,omitempty"` // numeric field summed; "" for count
	Aggregation Aggregation   `json:"aggregation"`
	Window      Window        `json:"window"`
	Lateness    time.Duration `json:"lateness"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Validate checks one definition.
func (d Definition) Validate() error {
	if !nameRE.MatchString(d.Name) {
		return fmt.Errorf("feature name %q: want lower_snake_case, 1..64 characters", d.Name)
	}
	if d.Source == "" {
		return fmt.Errorf("feature %s: source required", d.Name)
	}
	switch d.Aggregation {
	case Count:
	case Sum, Mean:
		if d.Field == "" {
			return fmt.Errorf("feature %s: %s needs a field", d.Name, d.Aggregation)
		}
	default:
		return fmt.Errorf("feature %s: unknown aggregation %q (count, sum, mean)", d.Name, d.Aggregation)
	}
	if err := d.Window.Validate(); err != nil {
		return fmt.Errorf("feature %s: %w", d.Name, err)
	}
	if d.Lateness < 0 {
		return fmt.Errorf("feature %s: negative lateness", d.Name)
	}
	return nil
}

// Accepts reports whether an event of the given source and type feeds d.
func (d Definition) Accepts(source, typ string) bool {
	if d.Source != source {
		return false
	}
	if len(d.Types) == 0 {
		return true
	}
	for _, t := range d.Types {
		if t == typ {
			return true
		}
	}
	return false
}

// Value is the feature's value at time now from its series.
func (d Definition) Value(s *Series, now time.Time) float64 {
	if s == nil {
		return 0
	}
	c, sum := s.Totals(d.Window, now)
	switch d.Aggregation {
	case Count:
		return float64(c)
	case Sum:
		return sum
	case Mean:
		if c == 0 {
			return 0
		}
		return sum / float64(c)
	}
	return 0
}

// Set is a validated list of definitions with unique names.
type Set struct {
	defs  []Definition
	index map[string]int
}

// NewSet validates defs and returns them as a set.
func NewSet(defs ...Definition) (*Set, error) {
	s := &Set{index: map[string]int{}}
	var errs []error
	for _, d := range defs {
		if err := d.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := s.index[d.Name]; dup {
			errs = append(errs, fmt.Errorf("feature %s defined twice", d.Name))
			continue
		}
		s.index[d.Name] = len(s.defs)
		s.defs = append(s.defs, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// All returns the definitions in order.
func (s *Set) All() []Definition { return s.defs }

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
		if d.Lateness > m {
			m = d.Lateness
		}
	}
	return m
}
