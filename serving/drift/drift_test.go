package drift

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPSI(t *testing.T) {
	same := PSI([]float64{10, 20, 30}, []float64{1, 2, 3})
	if same != 0 {
		t.Fatalf("PSI of equal shares = %v, want 0", same)
	}
	a, b := []float64{50, 30, 20}, []float64{20, 30, 50}
	if x, y := PSI(a, b), PSI(b, a); math.Abs(x-y) > 1e-12 || x <= PSISignificant {
		t.Fatalf("PSI %v / %v: want symmetric and significant", x, y)
	}
	// Hand computed: (0.5-0.2)ln(2.5) + 0 + (0.2-0.5)ln(0.4).
	want := 0.3*math.Log(2.5) - 0.3*math.Log(0.4)
	if got := PSI(a, b); math.Abs(got-want) > 1e-12 {
		t.Fatalf("PSI = %v, want %v", got, want)
	}
	if got := PSI([]float64{1, 0}, []float64{0, 1}); math.IsInf(got, 0) || got < 5 {
		t.Fatalf("PSI of disjoint bins = %v, want large and finite", got)
	}
	if !math.IsNaN(PSI([]float64{0, 0}, []float64{1, 1})) || !math.IsNaN(PSI([]float64{1}, []float64{1, 1})) {
		t.Fatal("PSI of an empty side or unequal bins must be NaN")
	}
	for psi, want := range map[float64]string{0.05: LevelNone, 0.1: LevelModerate, 0.2: LevelModerate, 0.25: LevelSignificant, math.NaN(): LevelUnknown} {
		if got := Level(psi); got != want {
			t.Errorf("Level(%v) = %s, want %s", psi, got, want)
		}
	}
}

// A reference's quantile bins split discrete values exactly, and the same
// values read through a sketch land in the same bins.
func TestReferenceBinsDiscreteValues(t *testing.T) {
	var vals []float64
	for i := range 1000 {
		vals = append(vals, float64(i%4)) // 0,1,2,3 equally
	}
	vals = append(vals, math.NaN())
	r := ReferenceOf("livestream", "bids_1m", vals, 10)
	if r.Count != 1001 || r.Nulls != 1 {
		t.Fatalf("count %d nulls %d", r.Count, r.Nulls)
	}
	// Edges at 0, 1, 2, 3 (each within 1 %), and a last bin above the
	// largest reference value, empty.
	if len(r.Edges) != 4 || len(r.Counts) != 5 || r.Counts[4] != 0 {
		t.Fatalf("edges %v counts %v: want 4 edges (0, 1, 2, 3) and 5 bins", r.Edges, r.Counts)
	}
	for i, c := range r.Counts[:4] {
		if math.Abs(r.Edges[i]-float64(i)) > 0.01*float64(i) {
			t.Fatalf("edge %d = %v", i, r.Edges[i])
		}
		if c != 250 {
			t.Fatalf("bin %d holds %v, want 250 (%v)", i, c, r.Counts)
		}
	}
	if err := checkReference(r); err != nil {
		t.Fatal(err)
	}
}

// world is a sampled population whose values the test changes.
type world struct {
	mu    sync.Mutex
	rng   *rand.Rand
	shift float64 // added to feature "a"
	nullB bool    // feature "b" goes null
}

func (w *world) sample(context.Context) ([]Population, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := Population{Entity: "livestream", Features: []string{"a", "b", "c"}}
	for range 50 {
		row := map[string]float64{"a": w.rng.NormFloat64()*10 + 100 + w.shift, "c": float64(w.rng.IntN(5))}
		if !w.nullB {
			row["b"] = w.rng.ExpFloat64()
		}
		p.Rows = append(p.Rows, row)
	}
	return []Population{p}, nil
}

// clock is a settable wall clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// The monitor captures the first full window as the reference, finds no
// drift while nothing changes, and then exactly the changed features
// drift: a shifted one by PSI, one going null by PSI and null rate.
func TestMonitorDetectsChangedFeatures(t *testing.T) {
	w := &world{rng: rand.New(rand.NewPCG(1, 2))}
	clk := &clock{now: time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)}
	m, err := New(w.sample, Options{Interval: -1, Window: time.Minute, Slots: 6, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(n int) {
		for range n {
			if err := m.Sample(ctx); err != nil {
				t.Fatal(err)
			}
			clk.Add(5 * time.Second)
		}
	}
	step(12) // 55 s: not yet a full window
	if d, _ := m.Distribution("livestream", "a"); d.Reference != nil || d.PSI != nil || d.Level != LevelUnknown {
		t.Fatalf("a reference before the first full window: %+v", d)
	}
	step(13) // the window is full: reference captured; then it rolls on
	for _, f := range []string{"a", "b", "c"} {
		d, _ := m.Distribution("livestream", f)
		if d.Reference == nil || d.ReferenceSource != "window" || d.PSI == nil {
			t.Fatalf("%s: no automatic reference or PSI: %+v", f, d)
		}
		if *d.PSI >= PSIModerate {
			t.Fatalf("%s: PSI %v without a change", f, *d.PSI)
		}
		// The window holds the slots (10 s) with a sample in the last
		// minute: 12 or 13 samples of 50.
		if d.Current.Count != 12*50 && d.Current.Count != 13*50 {
			t.Fatalf("%s: %d observations in a 1m window sampled every 5s, want 600 or 650", f, d.Current.Count)
		}
	}

	w.mu.Lock()
	w.shift, w.nullB = 30, true
	w.mu.Unlock()
	step(13) // a full window of the changed world
	psi := map[string]float64{}
	for _, f := range []string{"a", "b", "c"} {
		d, _ := m.Distribution("livestream", f)
		psi[f] = *d.PSI
	}
	if psi["a"] < PSISignificant || psi["b"] < PSISignificant || psi["c"] >= PSIModerate {
		t.Fatalf("PSI after shifting a and nulling b: %v; want a, b significant, c none", psi)
	}
	if d, _ := m.Distribution("livestream", "b"); d.Current.NullRate != 1 || d.NullRateChange != 1 {
		t.Fatalf("b: null rate %v change %v, want 1 and 1", d.Current.NullRate, d.NullRateChange)
	}

	// The metrics say the same.
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP livefeed_feature_null_rate Share of the feature's served values in the rolling window that are null (empty window, no number).
# TYPE livefeed_feature_null_rate gauge
livefeed_feature_null_rate{entity="livestream",feature="a"} 0
livefeed_feature_null_rate{entity="livestream",feature="b"} 1
livefeed_feature_null_rate{entity="livestream",feature="c"} 0
`), "livefeed_feature_null_rate"); err != nil {
		t.Fatal(err)
	}
	got, err := testutil.GatherAndCount(reg, "livefeed_feature_drift_psi")
	if err != nil || got != 3 {
		t.Fatalf("%d drift series (%v), want 3", got, err)
	}
	if s := m.Summary(); s.Features[2].Feature != "c" {
		t.Fatalf("summary not worst first: %+v", s.Features)
	}
}

// A reference file written from one monitor's window is another's
// reference: the same world scores no drift against it, and the file
// wins over the automatic reference.
func TestReferenceFileRoundTrip(t *testing.T) {
	w := &world{rng: rand.New(rand.NewPCG(3, 4))}
	clk := &clock{now: time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)}
	a, err := New(w.sample, Options{Interval: -1, Window: time.Minute, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := a.Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
		clk.Add(5 * time.Second)
	}
	ref := a.Reference()
	if len(ref.Features) != 3 || ref.Version != 1 {
		t.Fatalf("reference of 3 features, got %+v", ref)
	}
	b, _ := json.Marshal(ref)
	path := filepath.Join(t.TempDir(), "ref.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := New(w.sample, Options{Interval: -1, Window: time.Minute, ReferenceFile: path, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := m.Distribution("livestream", "a"); !ok || d.Reference == nil || !strings.HasPrefix(d.ReferenceSource, "file: serving window") {
		t.Fatalf("file reference not loaded: %+v", d)
	}
	for range 15 {
		_ = m.Sample(context.Background())
		clk.Add(5 * time.Second)
	}
	for _, f := range []string{"a", "b", "c"} {
		d, _ := m.Distribution("livestream", f)
		if d.PSI == nil || *d.PSI >= PSIModerate || !strings.HasPrefix(d.ReferenceSource, "file:") {
			t.Fatalf("%s against the file: %+v", f, d.Drift)
		}
	}

	bad := api.FeatureReference{Version: 1, Features: []api.ReferenceDistribution{{Entity: "x", Feature: "y", Edges: []float64{2, 1}, Counts: []float64{1, 1, 1}}}}
	if err := m.SetReference(bad); err == nil {
		t.Fatal("decreasing edges accepted")
	}
	if _, err := New(w.sample, Options{ReferenceFile: filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Fatal("a missing reference file accepted")
	}
}

// Run samples every Interval and returns when its context is done.
func TestRunSamplesUntilCancelled(t *testing.T) {
	w := &world{rng: rand.New(rand.NewPCG(5, 6))}
	m, err := New(w.sample, Options{Interval: 10 * time.Millisecond, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if d, _ := m.Distribution("livestream", "a"); d.Current.Count >= 3*50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not sample")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
	if _, err := New(w.sample, Options{Bins: 1}); err == nil {
		t.Fatal("1 bin accepted")
	}
}

// ReferenceAfter delays the automatic reference past a warm-up; a
// captured reference replaces it at once.
func TestReferenceAfterAndCapture(t *testing.T) {
	w := &world{rng: rand.New(rand.NewPCG(7, 8))}
	clk := &clock{now: time.Date(2026, 12, 7, 20, 0, 0, 0, time.UTC)}
	m, err := New(w.sample, Options{Interval: -1, Window: time.Minute, ReferenceAfter: 2 * time.Minute, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	step := func(n int) {
		for range n {
			if err := m.Sample(context.Background()); err != nil {
				t.Fatal(err)
			}
			clk.Add(5 * time.Second)
		}
	}
	step(30) // 2m25s: past one window, not past the warm-up and a window
	if d, _ := m.Distribution("livestream", "a"); d.Reference != nil {
		t.Fatalf("a reference during the warm-up: %+v", d.Reference)
	}
	step(7) // 3m
	if d, _ := m.Distribution("livestream", "a"); d.Reference == nil || d.Reference.From.Before(clk.now.Add(-65*time.Second)) {
		t.Fatalf("the reference is not the first window after the warm-up: %+v", d.Reference)
	}
	w.mu.Lock()
	w.shift = 30
	w.mu.Unlock()
	step(13)
	if d, _ := m.Distribution("livestream", "a"); d.Level != LevelSignificant {
		t.Fatalf("a shifted: %s", d.Level)
	}
	ref := m.CaptureReference()
	if len(ref.Features) != 3 {
		t.Fatalf("captured %d features", len(ref.Features))
	}
	if d, _ := m.Distribution("livestream", "a"); d.PSI == nil || *d.PSI != 0 || d.ReferenceSource != "window (captured on request)" {
		t.Fatalf("after the capture: %+v", d.Drift)
	}
	if _, err := New(w.sample, Options{ReferenceAfter: -time.Second}); err == nil {
		t.Fatal("a negative reference-after accepted")
	}
}
