package drift

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Options configures a Monitor. The zero value is the defaults.
type Options struct {
	// Interval is how often serving's views are sampled. Default
	// DefaultInterval; negative: never (Run only waits; the distributions
	// stay empty unless Sample is called).
	Interval time.Duration
	// Window is the rolling window the current distribution covers: the
	// slots with a sample in the last Window, so up to one slot more.
	// Default DefaultWindow. It also is the age of the automatic reference:
	// the first full window after the start.
	Window time.Duration
	// Slots is how many slots the window is kept in: it rolls by
	// Window/Slots. Default DefaultSlots.
	Slots int
	// Bins is how many bins a captured reference gets (its quantiles
	// i/Bins as edges, fewer when they coincide). Default DefaultBins.
	Bins int
	// MinCount is the fewest observations, on each side, for a PSI:
	// below, the drift is "unknown". Default DefaultMinCount.
	MinCount int
	// ReferenceFile is a reference (api.FeatureReference, JSON: `livefeed
	// features reference`); its features are compared with it, the others
	// with the automatic reference. Empty: none.
	ReferenceFile string
	// NoAutoReference: no automatic reference (features without one in
	// ReferenceFile have no drift).
	NoAutoReference bool
	// ReferenceAfter delays the automatic reference: it is the first full
	// window that starts at least this long after the first sample. A
	// pipeline started empty fills its windows first (up to its longest
	// window); a restarted one has its state. Default 0.
	ReferenceAfter time.Duration
	// Clock is the wall clock the window rolls by. Default time.Now.
	Clock func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultInterval = 30 * time.Second
	DefaultWindow   = 15 * time.Minute
	DefaultSlots    = 15
	DefaultBins     = 10
	DefaultMinCount = 100
	// MaxBins bounds Options.Bins and a reference file's bins.
	MaxBins = 100
)

// defaults fills the unset fields.
func (o *Options) defaults() {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.Bins == 0 {
		o.Bins = DefaultBins
	}
	if o.MinCount == 0 {
		o.MinCount = DefaultMinCount
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// validate rejects unusable options (after defaults).
func (o *Options) validate() error {
	var errs []error
	if o.Window <= 0 {
		errs = append(errs, fmt.Errorf("drift: window must be positive, got %v", o.Window))
	}
	if o.Slots < 1 || o.Slots > 1000 {
		errs = append(errs, fmt.Errorf("drift: slots must be 1..1000, got %d", o.Slots))
	}
	if o.Window > 0 && o.Slots > 0 && o.Window/time.Duration(o.Slots) <= 0 {
		errs = append(errs, errors.New("drift: window too short for its slots"))
	}
	if o.Bins < 2 || o.Bins > MaxBins {
		errs = append(errs, fmt.Errorf("drift: bins must be 2..%d, got %d", MaxBins, o.Bins))
	}
	if o.ReferenceAfter < 0 {
		errs = append(errs, fmt.Errorf("drift: reference-after must be >= 0, got %v", o.ReferenceAfter))
	}
	if o.MinCount < 1 {
		errs = append(errs, fmt.Errorf("drift: min count must be at least 1, got %d", o.MinCount))
	}
	return errors.Join(errs...)
}
