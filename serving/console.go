package serving

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/livefeed/livefeed/tables"
	"github.com/livefeed/livefeed/web"
	"github.com/lovoo/goka"
)

// The web console (package web) is served at GET / with its assets under
// GET /console/. It is static: every number it shows comes from the /v1
// routes (with the bearer token, when one is set) and /metrics. The one
// route added for it is GET /v1/features, the feature catalogue below.

// mountConsole adds the console's page and assets to mux. They are open
// (no data in them); the /v1 routes they call stay protected.
func mountConsole(mux *http.ServeMux) {
	h := web.Handler()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET /console/", h)
}

// Catalogue sampling: the livestream features' distributions are over the
// live streams in the index (at most MaxCatalogStreams, the most engaging);
// another entity's over the first MaxCatalogEntities keys of its table.
const (
	MaxCatalogStreams  = 5000
	MaxCatalogEntities = 2000
	// DefaultCatalogBins is the histogram bins per feature (?bins=, 1..100).
	DefaultCatalogBins = 20
)

// The feature catalogue's wire types are package api's (api/catalog.go).
type (
	FeatureCatalog = api.FeatureCatalog
	EntityCatalog  = api.EntityCatalog
	FeatureInfo    = api.FeatureInfo
	Distribution   = api.Distribution
	Bin            = api.Bin
)

func (s *Service) handleFeatureCatalog(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	bins := DefaultCatalogBins
	if raw := r.URL.Query().Get("bins"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 100 {
			return badRequest("bins: want an integer in 1..100, got %q", raw)
		}
		bins = n
	}
	now := s.cfg.Clock()
	out := FeatureCatalog{At: now}

	// Livestreams: the live streams in the index, most engaging first.
	ls := EntityCatalog{Entity: "livestream"}
	hits, _ := s.index.Popular(MaxCatalogStreams+1, &index.Filter{Status: []events.Status{events.StatusLive}}, now)
	if len(hits) > MaxCatalogStreams {
		hits, ls.Truncated = hits[:MaxCatalogStreams], true
	}
	rows := make([]map[string]float64, 0, len(hits))
	for _, h := range hits {
		rows = append(rows, s.cfg.Features.Values(&h.Item.Features, now))
	}
	ls.Count, ls.Population = len(rows), "live streams in the serving index"
	ls.Features = catalogFeatures(s.cfg.Features, rows, bins)
	out.Entities = append(out.Entities, ls)

	// Other entities: the first keys of their tables.
	names := make([]string, 0, len(s.cfg.Entities))
	for name := range s.cfg.Entities {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		e := s.cfg.Entities[name]
		if e.Features == nil {
			continue
		}
		view := s.others[name]
		if name == "user" {
			view = s.users
		}
		ec := EntityCatalog{Entity: name, Population: fmt.Sprintf("first %d %ss of the table by key", MaxCatalogEntities, name)}
		rows, truncated, err := s.entityValues(r, view, e.Features, now)
		if err != nil {
			ec.Error = err.Error()
		}
		ec.Count, ec.Truncated = len(rows), truncated
		if !truncated {
			ec.Population = fmt.Sprintf("every %s in the table", name)
		}
		ec.Features = catalogFeatures(e.Features, rows, bins)
		out.Entities = append(out.Entities, ec)
	}
	out.TookMS = ms(time.Since(start))
	writeJSON(w, http.StatusOK, out)
	return nil
}

// entityValues reads the feature values of the first MaxCatalogEntities
// keys of a user or entity view.
func (s *Service) entityValues(r *http.Request, view *goka.View, set *features.Set, now time.Time) (rows []map[string]float64, truncated bool, err error) {
	if view == nil {
		return nil, false, nil
	}
	it, err := view.Iterator()
	if err != nil {
		return nil, false, fmt.Errorf("reading the table: %w", err)
	}
	defer it.Release()
	for it.Next() {
		if len(rows) == MaxCatalogEntities {
			return rows, true, nil
		}
		if err := r.Context().Err(); err != nil {
			return rows, false, err
		}
		v, err := it.Value()
		if err != nil {
			return rows, false, fmt.Errorf("decoding %s: %w", it.Key(), err)
		}
		switch x := v.(type) {
		case *tables.User:
			rows = append(rows, set.Values(&x.Features, now))
		case *tables.Entity:
			rows = append(rows, set.Values(&x.Features, now))
		}
	}
	return rows, false, it.Err()
}

// catalogFeatures describes each feature of set with its distribution over
// rows (one map of values per entity).
func catalogFeatures(set *features.Set, rows []map[string]float64, bins int) []FeatureInfo {
	defs := set.All()
	out := make([]FeatureInfo, 0, len(defs))
	vals := make([]float64, 0, len(rows))
	for _, d := range defs {
		vals = vals[:0]
		for _, row := range rows {
			if v, ok := row[d.Name]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				vals = append(vals, v)
			}
		}
		out = append(out, FeatureInfo{
			Name: d.Name, Description: d.Description, Entity: d.Entity, Sources: d.Sources,
			Filter: d.Filter, Field: d.Field, Aggregation: string(d.Aggregation),
			Window: d.Window.String(), Lateness: features.FormatDuration(d.Lateness),
			K: d.K, P: d.P, HalfLife: optDuration(d.HalfLife), Per: optDuration(d.Per),
			Distribution: distribution(vals, bins),
		})
	}
	return out
}

func optDuration(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return features.FormatDuration(d)
}

// distribution summarizes vals (reordered) in equal-width bins.
func distribution(vals []float64, bins int) Distribution {
	d := Distribution{Count: len(vals), Bins: []Bin{}}
	if len(vals) == 0 {
		return d
	}
	slices.Sort(vals)
	d.Min, d.Max = vals[0], vals[len(vals)-1]
	var sum float64
	for _, v := range vals {
		sum += v
		if v != 0 {
			d.NonZero++
		}
	}
	d.Mean = round(sum / float64(len(vals)))
	d.P50, d.P90 = round(quantile(vals, 0.5)), round(quantile(vals, 0.9))
	d.Min, d.Max = round(d.Min), round(d.Max)
	width := (vals[len(vals)-1] - vals[0]) / float64(bins)
	if width == 0 {
		d.Bins = append(d.Bins, Bin{Lo: d.Min, Hi: d.Max, Count: len(vals)})
		return d
	}
	d.Bins = make([]Bin, bins)
	for i := range d.Bins {
		d.Bins[i].Lo, d.Bins[i].Hi = round(vals[0]+float64(i)*width), round(vals[0]+float64(i+1)*width)
	}
	for _, v := range vals {
		i := min(int((v-vals[0])/width), bins-1)
		d.Bins[i].Count++
	}
	return d
}

// quantile of sorted vals (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
