// Package drift monitors the distribution of served feature values: it
// samples serving's views periodically, keeps each feature's observations
// (per entity kind) over a rolling window in DDSketches, compares the
// window with a reference — a past window captured automatically or a file
// such as a training set's distribution — and scores the drift with the
// population stability index (PSI) over the reference's quantile bins plus
// a null bin. The scores are Prometheus gauges and the console's feature
// page; the processors are not touched.
package drift

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/features"
)

// Population is one sample of one entity kind: every feature it has and
// the numeric values of the entities read (one row per entity; a feature
// absent from a row, or NaN, is null for it).
type Population struct {
	Entity   string
	Features []string
	Rows     []map[string]float64
}

// Source reads one sample of the served values (serving's views).
type Source func(ctx context.Context) ([]Population, error)

type key struct{ entity, feature string }

// slot is the observations of one Window/Slots of wall time.
type slot struct {
	start, from, to time.Time
	n, nulls        int
	sk              *ddsketch.DDSketch
}

// series is one feature's rolling window and reference.
type series struct {
	slots     []*slot // oldest first
	ref       *api.ReferenceDistribution
	refSource string
	// last is the window as computed after the latest sample.
	last api.FeatureDistribution
}

// Monitor keeps the rolling distributions. Its methods are safe for
// concurrent use; Run samples until its context is done.
type Monitor struct {
	opt     Options
	src     Source
	metrics *metrics

	mu        sync.Mutex
	series    map[key]*series
	started   time.Time // first sample
	sampledAt time.Time
	fileRef   string // the file reference's source, for the distributions
}

// New returns a monitor of src; Options.ReferenceFile is read here.
func New(src Source, opt Options) (*Monitor, error) {
	opt.defaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	m := &Monitor{opt: opt, src: src, series: map[key]*series{}, metrics: newMetrics()}
	if opt.ReferenceFile != "" {
		ref, err := LoadReference(opt.ReferenceFile)
		if err != nil {
			return nil, err
		}
		if err := m.SetReference(ref); err != nil {
			return nil, fmt.Errorf("reference %s: %w", opt.ReferenceFile, err)
		}
	}
	return m, nil
}

// LoadReference reads a reference file.
func LoadReference(path string) (api.FeatureReference, error) {
	var ref api.FeatureReference
	b, err := os.ReadFile(path)
	if err != nil {
		return ref, fmt.Errorf("reading feature reference: %w", err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		return ref, fmt.Errorf("decoding feature reference %s: %w", path, err)
	}
	return ref, nil
}

// SetReference makes ref's distributions the references of their
// features, replacing any; the other features keep theirs.
func (m *Monitor) SetReference(ref api.FeatureReference) error {
	if ref.Version != 1 {
		return fmt.Errorf("feature reference version %d, want 1", ref.Version)
	}
	for _, r := range ref.Features {
		if err := checkReference(r); err != nil {
			return err
		}
	}
	src := "file"
	if ref.Source != "" {
		src = "file: " + ref.Source
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fileRef = src
	for _, r := range ref.Features {
		s := m.seriesOf(key{r.Entity, r.Feature})
		s.ref, s.refSource = &r, src
	}
	return nil
}

func (m *Monitor) seriesOf(k key) *series {
	s, ok := m.series[k]
	if !ok {
		s = &series{}
		m.series[k] = s
	}
	return s
}

// Run samples every Options.Interval until ctx is done.
func (m *Monitor) Run(ctx context.Context) error {
	if m.opt.Interval < 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(m.opt.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Sample(ctx); err != nil && ctx.Err() == nil {
				m.opt.Logger.Warn("sampling feature values for drift", "err", err)
			}
		}
	}
}

// Sample reads one sample from the source now and adds it to the windows.
// Run calls it every Interval; tests call it directly.
func (m *Monitor) Sample(ctx context.Context) error {
	pops, err := m.src(ctx)
	if err != nil {
		m.metrics.samples.WithLabelValues("error").Inc()
		return err
	}
	m.metrics.samples.WithLabelValues("ok").Inc()
	m.add(m.opt.Clock(), pops)
	return nil
}

// add adds a sample taken at now and recomputes every window.
func (m *Monitor) add(now time.Time, pops []Population) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started.IsZero() {
		m.started = now
	}
	m.sampledAt = now
	width := m.opt.Window / time.Duration(m.opt.Slots)
	start := now.Truncate(width)
	for _, p := range pops {
		for _, f := range p.Features {
			s := m.seriesOf(key{p.Entity, f})
			sl := s.current(start, now)
			for _, row := range p.Rows {
				sl.n++
				v, ok := row[f]
				if !ok || math.IsNaN(v) || math.IsInf(v, 0) || sl.sk.Add(v) != nil {
					sl.nulls++
				}
			}
		}
	}
	full := now.Sub(m.started) >= m.opt.ReferenceAfter+m.opt.Window
	for k, s := range m.series {
		s.roll(now, m.opt.Window)
		s.compute(k, now, m.opt, full && !m.opt.NoAutoReference)
	}
}

// current returns the slot starting at start, appending it if needed.
func (s *series) current(start, now time.Time) *slot {
	if n := len(s.slots); n > 0 && s.slots[n-1].start.Equal(start) {
		sl := s.slots[n-1]
		sl.to = now
		return sl
	}
	sl := &slot{start: start, from: now, to: now, sk: newSketch()}
	s.slots = append(s.slots, sl)
	return sl
}

// roll drops the slots whose samples are all older than the window.
func (s *series) roll(now time.Time, window time.Duration) {
	i := 0
	for i < len(s.slots) && !s.slots[i].to.After(now.Add(-window)) {
		i++
	}
	s.slots = s.slots[i:]
}

// merged is the window's observations.
func (s *series) merged() (sk *ddsketch.DDSketch, n, nulls int, from, to time.Time) {
	sk = newSketch()
	for i, sl := range s.slots {
		_ = sk.MergeWith(sl.sk) // same mapping: cannot fail
		n += sl.n
		nulls += sl.nulls
		if i == 0 {
			from = sl.from
		}
		to = sl.to
	}
	return sk, n, nulls, from, to
}

// compute recomputes the series' window, capturing it as the reference
// when capture and it has none.
func (s *series) compute(k key, now time.Time, opt Options, capture bool) {
	sk, n, nulls, from, to := s.merged()
	if s.ref == nil && capture && n > 0 {
		r := referenceOf(k.entity, k.feature, sk, n, nulls, opt.Bins)
		r.From, r.To = from, to
		s.ref, s.refSource = &r, "window"
	}
	cur := summary(sk, n, nulls)
	cur.From, cur.To = from, to
	d := api.FeatureDistribution{
		Entity: k.entity, Feature: k.feature, Window: features.FormatDuration(opt.Window), SampledAt: now,
		Current: cur, Bins: []api.DriftBin{},
	}
	d.PSI, d.Level = nil, LevelUnknown
	if s.ref != nil {
		r := s.ref
		ref := api.WindowStats{Count: r.Count, Nulls: r.Nulls, From: r.From, To: r.To, Min: r.Min, Max: r.Max, Mean: r.Mean, Quantiles: r.Quantiles}
		if r.Count > 0 {
			ref.NullRate = float64(r.Nulls) / float64(r.Count)
		}
		d.Reference, d.ReferenceSource = &ref, s.refSource
		d.NullRateChange = cur.NullRate - ref.NullRate
		// Null bin first, then the value bins, as counts of observations.
		actual := append([]float64{float64(nulls)}, histogram(sk, r.Edges)...)
		expected := append([]float64{float64(r.Nulls)}, r.Counts...)
		d.Bins = bins(r, cur, actual[1:], expected[1:], float64(n), float64(r.Count))
		if n >= opt.MinCount && r.Count >= opt.MinCount {
			if psi := PSI(actual, expected); !math.IsNaN(psi) {
				d.PSI, d.Level = &psi, Level(psi)
			}
		}
	}
	s.last = d
}

// bins describes the reference's bins with both sides' shares of all
// observations.
func bins(r *api.ReferenceDistribution, cur api.WindowStats, actual, expected []float64, n, nref float64) []api.DriftBin {
	lo := r.Min
	hi := r.Max
	if cur.Count > cur.Nulls {
		lo, hi = math.Min(lo, cur.Min), math.Max(hi, cur.Max)
	}
	out := make([]api.DriftBin, len(actual))
	for i := range out {
		b := &out[i]
		b.Lo, b.Hi = lo, hi
		if i > 0 {
			b.Lo = r.Edges[i-1]
		}
		if i < len(r.Edges) {
			b.Hi = r.Edges[i]
		}
		if n > 0 {
			b.Current = actual[i] / n
		}
		if nref > 0 {
			b.Reference = expected[i] / nref
		}
	}
	return out
}

// Distribution is a feature's window and drift as of the last sample; ok
// is false for a feature never sampled and without a reference.
func (m *Monitor) Distribution(entity, feature string) (api.FeatureDistribution, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.series[key{entity, feature}]
	if !ok {
		return api.FeatureDistribution{}, false
	}
	if s.last.Feature == "" { // a file reference, not sampled yet
		s.compute(key{entity, feature}, m.sampledAt, m.opt, false)
	}
	return s.last, true
}

// Window is the rolling window's length.
func (m *Monitor) Window() time.Duration { return m.opt.Window }

// Summary is every feature's drift, worst first (unknown last).
func (m *Monitor) Summary() api.DriftSummary {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := api.DriftSummary{Window: features.FormatDuration(m.opt.Window), SampledAt: m.sampledAt, Features: []api.FeatureDrift{}}
	for k, s := range m.series {
		if s.last.Feature == "" {
			continue
		}
		out.Features = append(out.Features, api.FeatureDrift{Entity: k.entity, Feature: k.feature,
			Count: s.last.Current.Count, NullRate: s.last.Current.NullRate, Drift: s.last.Drift})
	}
	sort.Slice(out.Features, func(i, j int) bool {
		a, b := out.Features[i], out.Features[j]
		pa, pb := -1.0, -1.0
		if a.PSI != nil {
			pa = *a.PSI
		}
		if b.PSI != nil {
			pb = *b.PSI
		}
		if pa != pb {
			return pa > pb
		}
		if a.Entity != b.Entity {
			return a.Entity < b.Entity
		}
		return a.Feature < b.Feature
	})
	return out
}

// Reference is the current windows as a reference file (features with no
// observation in the window are left out).
func (m *Monitor) Reference() api.FeatureReference {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reference()
}

// CaptureReference makes the current windows the reference of their
// features (the others keep theirs) and returns it.
func (m *Monitor) CaptureReference() api.FeatureReference {
	m.mu.Lock()
	defer m.mu.Unlock()
	ref := m.reference()
	for _, r := range ref.Features {
		k := key{r.Entity, r.Feature}
		s := m.series[k]
		s.ref, s.refSource = &r, "window (captured on request)"
		s.compute(k, m.sampledAt, m.opt, false)
	}
	return ref
}

func (m *Monitor) reference() api.FeatureReference {
	out := api.FeatureReference{Version: 1, CapturedAt: m.sampledAt, Features: []api.ReferenceDistribution{}}
	var from, to time.Time
	for k, s := range m.series {
		sk, n, nulls, f, t := s.merged()
		if n == 0 {
			continue
		}
		r := referenceOf(k.entity, k.feature, sk, n, nulls, m.opt.Bins)
		r.From, r.To = f, t
		out.Features = append(out.Features, r)
		if from.IsZero() || f.Before(from) {
			from = f
		}
		if t.After(to) {
			to = t
		}
	}
	sort.Slice(out.Features, func(i, j int) bool {
		a, b := out.Features[i], out.Features[j]
		if a.Entity != b.Entity {
			return a.Entity < b.Entity
		}
		return a.Feature < b.Feature
	})
	out.Source = fmt.Sprintf("serving window %s to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	return out
}
