package bench

import (
	"math"
	"slices"
	"time"
)

// Latency summarises a set of durations, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize computes nearest-rank percentiles of ds.
func summarize(ds []time.Duration) Latency {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	return summarizeMS(ms)
}

// summarizeMS computes nearest-rank percentiles of values in milliseconds.
func summarizeMS(ms []float64) Latency {
	if len(ms) == 0 {
		return Latency{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Latency{
		Count: len(s),
		Min:   round3(s[0]),
		Mean:  round3(sum / float64(len(s))),
		P50:   round3(percentile(s, 50)),
		P90:   round3(percentile(s, 90)),
		P95:   round3(percentile(s, 95)),
		P99:   round3(percentile(s, 99)),
		Max:   round3(s[len(s)-1]),
	}
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func round1(x float64) float64 { return math.Round(x*10) / 10 }

func seconds(d time.Duration) float64 { return round3(d.Seconds()) }
