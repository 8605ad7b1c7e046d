package drift

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/livefeed/livefeed/api"
)

// The PSI thresholds, as credit scoring has read them since the 1990s and
// model monitoring tools (Evidently, NannyML, SageMaker Model Monitor) still
// do: below 0.1 the population has not changed in a way that matters,
// 0.1–0.25 it moved and deserves a look, 0.25 and above it changed.
const (
	PSIModerate    = 0.1
	PSISignificant = 0.25
)

// Levels of Level.
const (
	LevelNone        = "none"
	LevelModerate    = "moderate"
	LevelSignificant = "significant"
	LevelUnknown     = "unknown"
)

// Level reads a PSI with the usual thresholds.
func Level(psi float64) string {
	switch {
	case math.IsNaN(psi):
		return LevelUnknown
	case psi >= PSISignificant:
		return LevelSignificant
	case psi >= PSIModerate:
		return LevelModerate
	}
	return LevelNone
}

// minShare floors each bin's share in the PSI, so that a bin empty on one
// side contributes a large but finite term (ln(share/1e-4)) rather than ∞.
const minShare = 1e-4

// PSI is the population stability index of actual against expected, two
// histograms over the same bins (counts, any scale): Σ (aᵢ − eᵢ)·ln(aᵢ/eᵢ)
// over the bins' shares, each floored at 1e-4. It is 0 for identical
// shares, symmetric, and NaN when either side is empty or the bins differ
// in number.
func PSI(actual, expected []float64) float64 {
	if len(actual) != len(expected) || len(actual) == 0 {
		return math.NaN()
	}
	var na, ne float64
	for i := range actual {
		na += actual[i]
		ne += expected[i]
	}
	if na <= 0 || ne <= 0 {
		return math.NaN()
	}
	var psi float64
	for i := range actual {
		a := math.Max(actual[i]/na, minShare)
		e := math.Max(expected[i]/ne, minShare)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// The sketches: DDSketch (DataDog/sketches-go) at 1 % relative accuracy,
// at most 2048 bins per sign, as features' approx_percentile keeps them.
const (
	sketchAccuracy = 0.01
	sketchBins     = 2048
)

func newSketch() *ddsketch.DDSketch {
	sk, err := ddsketch.LogCollapsingLowestDenseDDSketch(sketchAccuracy, sketchBins)
	if err != nil {
		panic(fmt.Sprintf("drift: sketch parameters: %v", err)) // constants: unreachable
	}
	return sk
}

// quantilePs are the quantiles WindowStats reports.
var quantilePs = []float64{0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99}

// histogram counts sk's values in the bins whose upper edges are edges
// (len(edges)+1 bins: value v is in the first bin with v ≤ edge, or the
// last). A sketch value is its bin's representative, so two sketches with
// the same mapping put equal inputs in the same bin, and a captured
// reference's edges (representatives themselves) split them exactly.
func histogram(sk *ddsketch.DDSketch, edges []float64) []float64 {
	out := make([]float64, len(edges)+1)
	sk.ForEach(func(v, n float64) bool {
		out[sort.SearchFloat64s(edges, v)] += n
		return false
	})
	return out
}

// edgesOf returns the distinct quantiles i/bins (i = 1..bins−1) of sk,
// increasing: the bin edges of a reference.
func edgesOf(sk *ddsketch.DDSketch, bins int) []float64 {
	var edges []float64
	if sk.IsEmpty() {
		return edges
	}
	for i := 1; i < bins; i++ {
		v, err := sk.GetValueAtQuantile(float64(i) / float64(bins))
		if err == nil {
			edges = append(edges, v)
		}
	}
	slices.Sort(edges)
	return slices.Compact(edges)
}

// summary is a window's statistics from its sketch and counts.
func summary(sk *ddsketch.DDSketch, count, nulls int) api.WindowStats {
	ws := api.WindowStats{Count: count, Nulls: nulls, Quantiles: []api.Quantile{}}
	if count > 0 {
		ws.NullRate = float64(nulls) / float64(count)
	}
	if sk.IsEmpty() {
		return ws
	}
	ws.Min, _ = sk.GetMinValue()
	ws.Max, _ = sk.GetMaxValue()
	ws.Mean = sk.GetSum() / sk.GetCount()
	for _, p := range quantilePs {
		if v, err := sk.GetValueAtQuantile(p); err == nil {
			ws.Quantiles = append(ws.Quantiles, api.Quantile{P: p, Value: v})
		}
	}
	return ws
}

// ReferenceOf builds a reference distribution from one entity kind's
// feature values: one element per observation, NaN (or ±Inf) for a null.
// `livefeed features reference` builds its file with it; the automatic
// reference is the same computation over a window's sketch.
func ReferenceOf(entity, feature string, values []float64, bins int) api.ReferenceDistribution {
	sk := newSketch()
	nulls := 0
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) || sk.Add(v) != nil {
			nulls++
		}
	}
	return referenceOf(entity, feature, sk, len(values), nulls, bins)
}

func referenceOf(entity, feature string, sk *ddsketch.DDSketch, count, nulls, bins int) api.ReferenceDistribution {
	ws := summary(sk, count, nulls)
	edges := edgesOf(sk, bins)
	return api.ReferenceDistribution{
		Entity: entity, Feature: feature, Count: count, Nulls: nulls,
		Edges: edges, Counts: histogram(sk, edges),
		Min: ws.Min, Max: ws.Max, Mean: ws.Mean, Quantiles: ws.Quantiles,
	}
}

// checkReference rejects a reference distribution the comparison cannot
// use.
func checkReference(r api.ReferenceDistribution) error {
	switch {
	case r.Entity == "" || r.Feature == "":
		return fmt.Errorf("entity and feature are required")
	case len(r.Counts) != len(r.Edges)+1:
		return fmt.Errorf("%s/%s: %d counts for %d edges, want one more count than edges", r.Entity, r.Feature, len(r.Counts), len(r.Edges))
	case len(r.Edges) > MaxBins:
		return fmt.Errorf("%s/%s: %d edges, at most %d", r.Entity, r.Feature, len(r.Edges), MaxBins)
	case r.Count < 0 || r.Nulls < 0 || r.Nulls > r.Count:
		return fmt.Errorf("%s/%s: count %d and nulls %d", r.Entity, r.Feature, r.Count, r.Nulls)
	}
	for i, e := range r.Edges {
		if math.IsNaN(e) || math.IsInf(e, 0) || (i > 0 && e <= r.Edges[i-1]) {
			return fmt.Errorf("%s/%s: edges must be finite and increasing", r.Entity, r.Feature)
		}
	}
	for _, c := range r.Counts {
		if !(c >= 0) || math.IsInf(c, 0) {
			return fmt.Errorf("%s/%s: counts must be finite and >= 0", r.Entity, r.Feature)
		}
	}
	return nil
}
