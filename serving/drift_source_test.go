package serving_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/api"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/drift"
	"github.com/livefeed/livefeed/serving/servingtest"
)

func getJSON(t *testing.T, url string, out any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// The monitor samples what serving serves: the live streams' and the
// entities' numeric values, nulls kept apart; the distribution route and
// /metrics show it; a feature that goes null drifts, the others do not.
func TestDriftSamplesServedValues(t *testing.T) {
	env := servingtest.Start(t, func(c *serving.Config) {
		c.Drift = drift.Options{Interval: -1, Window: time.Hour, MinCount: 3}
	})
	env.PutStreams(t,
		servingtest.Stream{ID: "a1", Seller: "A", Category: "cards", Sim: 0.9, Viewers: 1, Minutes: 10},
		servingtest.Stream{ID: "a2", Seller: "A", Category: "cards", Sim: 0.8, Viewers: 2, Minutes: 10, Sold: 2},
		servingtest.Stream{ID: "c1", Seller: "C", Category: "shoes", Sim: 0.5, Viewers: 3, Minutes: 10, Bids: 7},
	)
	env.PutSeller(t, "A", 2)
	m := env.Service.Drift()
	if err := m.Sample(context.Background()); err != nil {
		t.Fatal(err)
	}
	var d api.FeatureDistribution
	if code := getJSON(t, env.URL+"/v1/features/livestream/max_bid_5m/distribution", &d); code != 200 {
		t.Fatalf("status %d", code)
	}
	// Three live streams, one with bids (all of 10): max_bid_5m is null
	// for the two others.
	if d.Current.Count != 3 || d.Current.Nulls != 2 || d.Current.Max < 9.9 || d.Current.Max > 10.1 {
		t.Fatalf("max_bid_5m window: %+v", d.Current)
	}
	if d.Reference != nil || d.PSI != nil || d.Level != drift.LevelUnknown {
		t.Fatalf("a reference before a full window: %+v", d)
	}
	var seller api.FeatureDistribution
	getJSON(t, env.URL+"/v1/features/seller/seller_sold_7d/distribution", &seller)
	if seller.Current.Count != 1 || seller.Current.Nulls != 0 || seller.Current.Max < 1.98 || seller.Current.Max > 2.02 {
		t.Fatalf("seller_sold_7d window: %+v", seller.Current)
	}

	// A reference from this window; then c1's bids age out of the 5m
	// window: max_bid_5m goes null everywhere, bids_5m to 0 (the 1h
	// rolling window still holds the first sample).
	ref := m.Reference()
	if err := m.SetReference(ref); err != nil {
		t.Fatal(err)
	}
	env.Now = env.Now.Add(10 * time.Minute)
	for range 3 {
		if err := m.Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	getJSON(t, env.URL+"/v1/features/livestream/max_bid_5m/distribution", &d)
	// The window holds the first sample and three of the new instant:
	// null rate 11/12 against the reference's 2/3.
	if d.PSI == nil || *d.PSI < drift.PSISignificant || d.Current.Nulls != 11 || d.NullRateChange < 0.24 {
		t.Fatalf("max_bid_5m after its window emptied: %+v", d)
	}
	var sum api.DriftSummary
	getJSON(t, env.URL+"/v1/features/drift", &sum)
	levels := map[string]string{}
	for _, f := range sum.Features {
		levels[f.Entity+"/"+f.Feature] = f.Level
	}
	for f, want := range map[string]string{
		"livestream/max_bid_5m": drift.LevelSignificant, "livestream/bids_5m": drift.LevelSignificant,
		"livestream/gmv_1h": drift.LevelNone, "livestream/sold_1h": drift.LevelNone,
	} {
		if levels[f] != want {
			t.Errorf("%s: %s, want %s", f, levels[f], want)
		}
	}

	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`livefeed_feature_drift_psi{entity="livestream",feature="max_bid_5m"}`,
		`livefeed_feature_null_rate{entity="livestream",feature="max_bid_5m"} 0.916`,
		`livefeed_feature_monitor_samples_total{result="ok"} 4`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// POST /v1/features/reference: the window is the reference now.
	resp, err = http.Post(env.URL+"/v1/features/reference", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	getJSON(t, env.URL+"/v1/features/livestream/max_bid_5m/distribution", &d)
	if resp.StatusCode != 200 || d.ReferenceSource != "window (captured on request)" || d.PSI == nil || *d.PSI != 0 {
		t.Fatalf("after POST /v1/features/reference (%d): %+v", resp.StatusCode, d.Drift)
	}
	if code := getJSON(t, env.URL+"/v1/features/livestream/nope/distribution", nil); code != 404 {
		t.Fatalf("unknown feature: %d", code)
	}
}
