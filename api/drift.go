package api

import "time"

// Feature monitoring (serving/drift): the distribution of each feature's
// served values over a rolling window, compared with a reference.

// FeatureDistribution is the body of GET
// /v1/features/{entity}/{name}/distribution: the feature's served values
// over the rolling window, its reference, and how far the one drifted from
// the other.
type FeatureDistribution struct {
	Entity  string `json:"entity"`
	Feature string `json:"feature"`
	// Window is the rolling window's length ("15m"); SampledAt the last
	// time serving's views were sampled (zero before the first sample).
	Window    string    `json:"window"`
	SampledAt time.Time `json:"sampled_at"`
	// Current is the rolling window; Reference what it is compared with
	// (nil until one is captured or loaded).
	Current   WindowStats  `json:"current"`
	Reference *WindowStats `json:"reference,omitempty"`
	// ReferenceSource says where the reference came from: "window" (a
	// past window of this process, captured automatically) or the source
	// recorded in a reference file ("file: training set …").
	ReferenceSource string `json:"reference_source,omitempty"`
	// Bins are the reference's bins (its quantiles as edges) with the
	// share of the observations of both in each; empty without a
	// reference. Nulls are a bin of their own (NullRate of each side).
	Bins []DriftBin `json:"bins"`
	Drift
}

// Drift is a feature's drift from its reference.
type Drift struct {
	// PSI is the population stability index of the current window against
	// the reference over the reference's bins plus a null bin; null when
	// there is no reference or fewer observations than the monitor's
	// minimum on either side.
	PSI *float64 `json:"psi"`
	// Level reads PSI the usual way: "none" (< 0.1), "moderate" (0.1 to
	// 0.25), "significant" (≥ 0.25); "unknown" without a PSI.
	Level string `json:"level"`
	// NullRateChange is the current null rate minus the reference's (0
	// without a reference).
	NullRateChange float64 `json:"null_rate_change"`
}

// WindowStats summarizes one window of a feature's observations: one per
// entity sampled per sampling tick.
type WindowStats struct {
	// Count is the observations, Nulls those without a number (empty
	// window, string value); NullRate = Nulls / Count.
	Count    int     `json:"count"`
	Nulls    int     `json:"nulls"`
	NullRate float64 `json:"null_rate"`
	// From and To bound the window's samples.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Min, Max, Mean of the non-null values (0 when there are none), from
	// the DDSketch (1 % relative accuracy).
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	// Quantiles of the non-null values (DDSketch, within 1 %).
	Quantiles []Quantile `json:"quantiles"`
}

// Quantile is the value at rank P (0..1).
type Quantile struct {
	P     float64 `json:"p"`
	Value float64 `json:"value"`
}

// DriftBin is one bin of a feature's reference: values in (Lo, Hi] (the
// first bin includes everything below Hi, the last everything above Lo;
// Lo and Hi of those two are the smallest and largest value seen), with
// the share of all observations, nulls included, of each side.
type DriftBin struct {
	Lo        float64 `json:"lo"`
	Hi        float64 `json:"hi"`
	Current   float64 `json:"current"`
	Reference float64 `json:"reference"`
}

// DriftSummary is the body of GET /v1/features/drift: every monitored
// feature's drift, worst first.
type DriftSummary struct {
	Window    string         `json:"window"`
	SampledAt time.Time      `json:"sampled_at"`
	Features  []FeatureDrift `json:"features"`
}

// FeatureDrift is one feature's line of the summary.
type FeatureDrift struct {
	Entity   string  `json:"entity"`
	Feature  string  `json:"feature"`
	Count    int     `json:"count"`
	NullRate float64 `json:"null_rate"`
	Drift
}

// FeatureReference is a reference file (livefeed features reference --out
// FILE, GET /v1/features/reference, serve --feature-reference FILE): the
// distribution of each feature's values in a training set or a past window.
type FeatureReference struct {
	// Version is 1.
	Version int `json:"version"`
	// Source says what the distribution is of ("window 2026-12-07T20:00Z
	// +15m", "training set impressions.parquet").
	Source     string                  `json:"source"`
	CapturedAt time.Time               `json:"captured_at"`
	Features   []ReferenceDistribution `json:"features"`
}

// ReferenceDistribution is one feature's reference: observation counts in
// bins whose upper edges are Edges (len(Counts) == len(Edges)+1: the last
// bin is above the last edge), plus the nulls. Edges are the reference's
// quantiles, increasing.
type ReferenceDistribution struct {
	Entity  string    `json:"entity"`
	Feature string    `json:"feature"`
	Count   int       `json:"count"`
	Nulls   int       `json:"nulls"`
	Edges   []float64 `json:"edges"`
	Counts  []float64 `json:"counts"`
	// Min, Max, Mean and Quantiles of the non-null values, for display.
	Min       float64    `json:"min"`
	Max       float64    `json:"max"`
	Mean      float64    `json:"mean"`
	Quantiles []Quantile `json:"quantiles"`
	// From and To bound the reference's observations, when known.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
}
