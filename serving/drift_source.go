package serving

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/drift"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
)

// Feature monitoring (serving/drift): every Config.Drift.Interval the
// monitor samples the served values the way the feature catalogue reads
// them — the livestream features over the live streams in the index (at
// most MaxCatalogStreams, the most engaging), another entity's over the
// first MaxCatalogEntities keys of its view — evaluated at Config.Clock, in
// their numeric form (null kept apart from 0). Only the views are read.

func (s *Service) newDrift() error {
	opt := s.cfg.Drift
	if opt.Logger == nil {
		opt.Logger = s.log
	}
	m, err := drift.New(s.sampleFeatures, opt)
	if err != nil {
		return fmt.Errorf("creating the feature monitor: %w", err)
	}
	s.drift = m
	return nil
}

// Drift is the feature monitor (tests sample it directly).
func (s *Service) Drift() *drift.Monitor { return s.drift }

// sampleFeatures is the monitor's drift.Source.
func (s *Service) sampleFeatures(ctx context.Context) ([]drift.Population, error) {
	now := s.cfg.Clock()
	ls := drift.Population{Entity: "livestream", Features: featureNames(s.cfg.Features)}
	hits, _ := s.index.Popular(MaxCatalogStreams, &index.Filter{Status: []events.Status{events.StatusLive}}, now)
	for _, h := range hits {
		ls.Rows = append(ls.Rows, s.cfg.Features.Numbers(&h.Item.Features, now))
	}
	out := []drift.Population{ls}
	names := make([]string, 0, len(s.cfg.Entities))
	for name, e := range s.cfg.Entities {
		if e.Features != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		set := s.cfg.Entities[name].Features
		view := s.others[name]
		if name == "user" {
			view = s.users
		}
		rows, err := numbersOf(ctx, view, set, now)
		if err != nil {
			return nil, fmt.Errorf("sampling %s features: %w", name, err)
		}
		out = append(out, drift.Population{Entity: name, Features: featureNames(set), Rows: rows})
	}
	return out, nil
}

func featureNames(set *features.Set) []string {
	defs := set.All()
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = d.Name
	}
	return out
}

// numbersOf reads the numeric feature values of the first
// MaxCatalogEntities keys of a user or entity view.
func numbersOf(ctx context.Context, view *goka.View, set *features.Set, now time.Time) ([]map[string]float64, error) {
	if view == nil {
		return nil, nil
	}
	it, err := view.Iterator()
	if err != nil {
		return nil, fmt.Errorf("reading the table: %w", err)
	}
	defer it.Release()
	var rows []map[string]float64
	for len(rows) < MaxCatalogEntities && it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		v, err := it.Value()
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", it.Key(), err)
		}
		switch x := v.(type) {
		case *tables.User:
			rows = append(rows, set.Numbers(&x.Features, now))
		case *tables.Entity:
			rows = append(rows, set.Numbers(&x.Features, now))
		}
	}
	return rows, it.Err()
}

// entityFeatures is the feature set of an entity kind, nil if unknown.
func (s *Service) entityFeatures(entity string) *features.Set {
	if entity == "livestream" {
		return s.cfg.Features
	}
	if e, ok := s.cfg.Entities[entity]; ok {
		return e.Features
	}
	return nil
}

// GET /v1/features/{entity}/{name}/distribution
func (s *Service) handleFeatureDistribution(w http.ResponseWriter, r *http.Request) error {
	entity, name := r.PathValue("entity"), r.PathValue("name")
	set := s.entityFeatures(entity)
	if set == nil {
		return notFound("no entity %q with features", entity)
	}
	if _, ok := set.Get(name); !ok {
		return notFound("no %s feature %q", entity, name)
	}
	d, ok := s.drift.Distribution(entity, name)
	if !ok { // not sampled yet
		d = api.FeatureDistribution{Entity: entity, Feature: name, Window: features.FormatDuration(s.drift.Window()),
			Current: api.WindowStats{Quantiles: []api.Quantile{}}, Bins: []api.DriftBin{}, Drift: api.Drift{Level: drift.LevelUnknown}}
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// GET /v1/features/drift
func (s *Service) handleFeatureDrift(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.drift.Summary())
	return nil
}

// GET /v1/features/reference
func (s *Service) handleFeatureReference(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.drift.Reference())
	return nil
}

// POST /v1/features/reference: the current windows become the reference
// (e.g. once a fresh pipeline's windows are full, before a drill).
func (s *Service) handleCaptureReference(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.drift.CaptureReference())
	return nil
}
