package servingbench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/livefeed/livefeed/serving/index"
)

// Sweep is a set of search-time options a run re-measures every filter
// with, after the main measurement, on the same index (no rebuild).
type Sweep struct {
	Name  string               // as given, e.g. "ef=160,upper-ef=16"
	Apply func(*index.Options) `json:"-"`
}

// sweepKeys are the options a sweep can set, by name.
var sweepKeys = map[string]func(o *index.Options, v float64){
	"ef":                  func(o *index.Options, v float64) { o.EfSearch = int(v) },
	"rescore":             func(o *index.Options, v float64) { o.Rescore = int(v) },
	"upper-ef":            func(o *index.Options, v float64) { o.UpperEf = int(v) },
	"scan-seeds":          func(o *index.Options, v float64) { o.ScanSeeds = int(v) },
	"scan-limit":          func(o *index.Options, v float64) { o.ScanLimit = int(v) },
	"far-factor":          func(o *index.Options, v float64) { o.FarFactor = int(v) },
	"far-exact-threshold": func(o *index.Options, v float64) { o.FarExactThreshold = int(v) },
	"exact-threshold":     func(o *index.Options, v float64) { o.ExactThreshold = int(v) },
	"expand-below":        func(o *index.Options, v float64) { o.ExpandBelow = v },
	"seeds":               func(o *index.Options, v float64) { o.Seeds = int(v) },
	"far-visit":           func(o *index.Options, v float64) { o.FarVisit = v },
	"large-graph":         func(o *index.Options, v float64) { o.LargeGraph = int(v) },
	"large-ef":            func(o *index.Options, v float64) { o.LargeEfSearch = int(v) },
}

// ParseSweeps parses sweeps separated by ';', each a comma-separated list
// of key=value (keys: ef, rescore, upper-ef, scan-seeds, scan-limit,
// far-factor, far-exact-threshold, exact-threshold, expand-below, seeds,
// far-visit, large-graph, large-ef).
// Options a sweep does not name keep the run's values.
func ParseSweeps(s string) ([]Sweep, error) {
	var out []Sweep
	for _, sw := range strings.Split(s, ";") {
		sw = strings.TrimSpace(sw)
		if sw == "" {
			continue
		}
		type kv struct {
			set func(*index.Options, float64)
			v   float64
		}
		var sets []kv
		for _, p := range strings.Split(sw, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			set := sweepKeys[k]
			if !ok || set == nil {
				return nil, fmt.Errorf("sweep %q: %q is not key=value with a known key", sw, p)
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("sweep %q: %q: %w", sw, p, err)
			}
			sets = append(sets, kv{set, x})
		}
		out = append(out, Sweep{Name: sw, Apply: func(o *index.Options) {
			for _, x := range sets {
				x.set(o, x.v)
			}
		}})
	}
	return out, nil
}
