package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/serving/drift"
)

// runFeaturesReference writes a feature reference file (api.FeatureReference)
// for serving's drift monitoring (serve --feature-reference FILE): the
// distribution of every feature's values, per entity kind, either
// recomputed from an event log at one instant (the data a model was trained
// on) or as a running server's rolling window.
func runFeaturesReference(ctx context.Context, args []string) error {
	f := newFlags("features reference", false, false)
	var eventsPath, at, url, out, source string
	var bins int
	f.fs.StringVar(&eventsPath, "events", "", "event log (JSONL records {topic, key, value}): the distribution of every entity's features at --at")
	f.fs.StringVar(&at, "at", "", "with --events: evaluate windows at this time (RFC 3339); default: the newest event time in the log")
	f.fs.StringVar(&url, "url", "", "a running server's base URL: its rolling window (GET /v1/features/reference; token from $LIVEFEED_API_TOKEN)")
	f.fs.StringVar(&out, "out", "", "reference file to write (JSON)")
	f.fs.StringVar(&source, "source", "", "what the reference is of, recorded in the file (default: the log and instant, or the server's window)")
	f.fs.IntVar(&bins, "bins", drift.DefaultBins, "bins per feature (the reference's quantiles i/bins as edges)")
	if err := f.parse(args, false); err != nil {
		return err
	}
	if out == "" || (eventsPath == "") == (url == "") {
		return errors.New("usage: livefeed features reference (--events FILE.jsonl [--at TIME] | --url URL) --out FILE")
	}
	if bins < 2 || bins > drift.MaxBins {
		return fmt.Errorf("--bins: want 2..%d, got %d", drift.MaxBins, bins)
	}
	var ref api.FeatureReference
	var err error
	if url != "" {
		ref, err = fetchReference(ctx, url)
	} else {
		ref, err = logReference(ctx, f.cfg, eventsPath, at, bins)
	}
	if err != nil {
		return err
	}
	if source != "" {
		ref.Source = source
	}
	b, err := json.MarshalIndent(ref, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing reference: %w", err)
	}
	fmt.Fprintf(os.Stderr, "%s: %d features (%s)\n", out, len(ref.Features), ref.Source)
	return nil
}

// fetchReference reads a server's GET /v1/features/reference.
func fetchReference(ctx context.Context, base string) (api.FeatureReference, error) {
	var ref api.FeatureReference
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/v1/features/reference", nil)
	if err != nil {
		return ref, err
	}
	if tok := os.Getenv("LIVEFEED_API_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ref, fmt.Errorf("fetching the reference: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ref, fmt.Errorf("fetching the reference: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ref); err != nil {
		return ref, fmt.Errorf("decoding the reference: %w", err)
	}
	return ref, nil
}

// logReference recomputes every feature from an event log at one instant
// (as `features compute` does) and takes each entity kind's values as the
// reference: one observation per entity (per live stream for the
// livestream features, as serving samples them), a feature without a
// number null.
func logReference(ctx context.Context, cfg app.Config, path, at string, bins int) (api.FeatureReference, error) {
	var ref api.FeatureReference
	file, err := os.Open(path)
	if err != nil {
		return ref, fmt.Errorf("opening event log: %w", err)
	}
	defer file.Close()
	cfg.NoEmbeddings = true // values only
	topo, closeTopo, err := app.OfflineTopology(ctx, cfg)
	if err != nil {
		return ref, err
	}
	defer closeTopo()
	en := offline.New(topo)
	if _, err := en.ReadLog(ctx, file); err != nil {
		return ref, err
	}
	when := time.Time{}
	if at != "" {
		if when, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return ref, fmt.Errorf("--at: %w", err)
		}
	} else {
		for _, st := range en.Streams() {
			if st.Features.Watermark.After(when) {
				when = st.Features.Watermark
			}
		}
	}
	sets := map[string]*features.Set{"livestream": topo.Features}
	for _, e := range topo.Entities {
		sets[e.Name] = e.Features
	}
	ref = api.FeatureReference{Version: 1, CapturedAt: when, Source: fmt.Sprintf("%s at %s", path, when.UTC().Format(time.RFC3339))}
	streams := en.Streams()
	for entity, byID := range en.Values(when) {
		set := sets[entity]
		if set == nil {
			continue
		}
		if entity == "livestream" {
			// Serving monitors the live streams (its index); so does the
			// reference.
			live := map[string]map[string]float64{}
			for id, row := range byID {
				if st := streams[id]; st != nil && st.Status == events.StatusLive {
					live[id] = row
				}
			}
			byID = live
		}
		for _, d := range set.All() {
			vals := make([]float64, 0, len(byID))
			for _, row := range byID {
				v, ok := row[d.Name]
				if !ok {
					v = math.NaN()
				}
				vals = append(vals, v)
			}
			r := drift.ReferenceOf(entity, d.Name, vals, bins)
			r.From, r.To = when, when
			ref.Features = append(ref.Features, r)
		}
	}
	sort.Slice(ref.Features, func(i, j int) bool {
		a, b := ref.Features[i], ref.Features[j]
		if a.Entity != b.Entity {
			return a.Entity < b.Entity
		}
		return a.Feature < b.Feature
	})
	return ref, nil
}
