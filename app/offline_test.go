package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/simulate"
	"github.com/twmb/franz-go/pkg/kgo"
)

// simulatedLog is a reproducible event log: n simulated events with event
// times spaced 20ms apart and ending 5s ago, a share of them made late and
// out of order (rateLog: event time pushed back by 30s or by 5 minutes,
// within and beyond the livestream features' 2-minute lateness).
func simulatedLog(t *testing.T, n int) []offline.Record {
	t.Helper()
	return rateLog(t, simulate.Config{Seed: 7, Users: 300, Sellers: 40, LiveStreams: 20}, n, 20*time.Millisecond)
}

// offlineEngine is the offline recomputation of recs with the topology of
// a stack whose data dir is dataDir; it is released when the test ends.
func offlineEngine(ctx context.Context, t *testing.T, dataDir string, recs []offline.Record) *offline.Engine {
	t.Helper()
	topo, release, err := OfflineTopology(ctx, Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	en := offline.New(topo)
	for _, rec := range recs {
		en.Apply(ctx, rec)
	}
	return en
}

func shiftEventTime(t *testing.T, value []byte, d time.Duration) []byte {
	var m map[string]any
	if err := json.Unmarshal(value, &m); err != nil {
		t.Fatal(err)
	}
	et, err := time.Parse(time.RFC3339Nano, m["event_time"].(string))
	if err != nil {
		t.Fatal(err)
	}
	m["event_time"] = et.Add(d).Format(time.RFC3339Nano)
	b, _ := json.Marshal(m)
	return b
}

// Online equals offline: the simulated log (with late and out-of-order
// events) goes through Kafka and the processors; every livestream's, user's
// and seller's served features — the default set, sketches included — equal
// what offline recomputation of the same log gives, at the same instant.
func TestOnlineEqualsOffline(t *testing.T) {
	ctx := context.Background()
	recs := simulatedLog(t, 3000)
	cfg := Config{
		Brokers:     testBrokers(),
		DataDir:     t.TempDir(),
		TopicPrefix: fmt.Sprintf("oo%d-", time.Now().UnixNano()),
	}
	r, _ := startStack(t, cfg)

	// Offline, with the same topology.
	en := offlineEngine(ctx, t, cfg.DataDir, recs)
	if en.Late == 0 {
		t.Fatal("the log has no late events; the test would not exercise lateness")
	}

	// Online: streams first (as in production, a stream exists before its
	// engagement), then everything in log order, from a plain client.
	cl := r.newProducer(t)
	defer cl.Close()
	produce := func(keep func(offline.Record) bool) {
		var batch []*kgo.Record
		for _, rec := range recs {
			if keep(rec) {
				batch = append(batch, &kgo.Record{Topic: r.prefix + rec.Topic, Key: []byte(rec.Key), Value: rec.Value})
			}
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(func(rec offline.Record) bool { return rec.Topic == events.TopicLivestreams })
	r.waitFor(t, "every stream's metadata", func() bool {
		for id, st := range en.Streams() {
			var lf serving.LivestreamFeatures
			if r.get(t, "/v1/features/livestream/"+url.PathEscape(id), &lf) != 200 || lf.Status != st.Status {
				return false
			}
		}
		return true
	})
	produce(func(rec offline.Record) bool { return rec.Topic != events.TopicLivestreams })

	at := time.Now().UTC()
	want := en.Values(at)
	q := "?at=" + url.QueryEscape(at.Format(time.RFC3339Nano))
	diff := "not compared yet"
	for deadline := time.Now().Add(45 * time.Second); diff != "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		diff = firstDifference(t, r, want, q)
	}
	if diff != "" {
		t.Fatalf("online differs from offline after 45s: %s", diff)
	}
	// Some values are null (absent on both sides): max_bid_5m of a stream
	// without bids in the window.
	nulls := 0
	for _, id := range want.IDs("livestream") {
		if _, ok := want["livestream"][id]["max_bid_5m"]; !ok {
			nulls++
		}
	}
	if nulls == 0 {
		t.Error("every stream has a max_bid_5m; the test would not compare null values")
	}
	t.Logf("%d records: %d livestreams, %d users, %d sellers equal online and offline (%d late events, %d streams with max_bid_5m null)",
		len(recs), len(want["livestream"]), len(want["user"]), len(want["seller"]), en.Late, nulls)
}

func firstDifference(t *testing.T, r *running, want offline.Values, q string) string {
	for _, entity := range sortedKeys(want) {
		for _, id := range want.IDs(entity) {
			if d := compare(want[entity][id], fetchFeatures(t, r, entity, id, q)); d != "" {
				return fmt.Sprintf("%s %s: %s", entity, id, d)
			}
		}
	}
	return ""
}

func sortedKeys(v offline.Values) []string {
	var ks []string
	for k := range v {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func fetchFeatures(t *testing.T, r *running, entity, id, q string) map[string]float64 {
	path := "/v1/features/" + entity + "/" + url.PathEscape(id) + q
	switch entity {
	case "livestream":
		var lf serving.LivestreamFeatures
		if r.get(t, path, &lf) != 200 {
			return nil
		}
		return lf.Features
	case "user":
		var uf serving.UserFeatures
		if r.get(t, path, &uf) != 200 {
			return nil
		}
		return uf.Features
	default:
		var ef serving.EntityFeatures
		if r.get(t, path, &ef) != 200 {
			return nil
		}
		return ef.Features
	}
}

// compare reports the first feature that differs (relative 1e-9: sums of
// floats may be added in another order online).
func compare(want, got map[string]float64) string {
	if got == nil {
		return "not served"
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			return name + " missing online (offline: " + fmt.Sprint(w) + ")"
		}
		if math.Abs(w-g) > 1e-9*math.Max(1, math.Abs(w)) {
			return fmt.Sprintf("%s = %v online, %v offline", name, g, w)
		}
	}
	// A feature without a value (null) is absent on both sides.
	for name, g := range got {
		if _, ok := want[name]; !ok {
			return fmt.Sprintf("%s = %v online, null offline", name, g)
		}
	}
	return ""
}
