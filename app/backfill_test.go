package app

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/offline"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/serving"
	"github.com/twmb/franz-go/pkg/kgo"
)

// backfillFeatures are the features the test adds to a running pipeline:
// 1-hour windows of a sum, a distinct count and a percentile of bids per
// stream, and of a sum per seller (the seller entity's group).
const backfillFeatures = `  - name: bid_sum_1h
    entity: livestream
    sources: [auctions]
    filter: type == "bid"
    field: amount
    aggregation: sum
    window: {type: sliding, size: 1h, hop: 1m}
    lateness: 2m
  - name: bidders_1h
    entity: livestream
    sources: [auctions]
    filter: type == "bid"
    field: user_id
    aggregation: approx_distinct
    window: {type: sliding, size: 1h, hop: 5m}
    lateness: 2m
  - name: bid_p50_1h
    entity: livestream
    sources: [auctions]
    filter: type == "bid"
    field: amount
    aggregation: approx_percentile
    p: 0.5
    window: {type: sliding, size: 1h, hop: 5m}
    lateness: 2m
  - name: seller_bid_amount_1h
    entity: seller
    sources: [auctions]
    filter: type == "bid"
    field: amount
    aggregation: sum
    window: {type: sliding, size: 1h, hop: 1m}
    lateness: 30m
`

// logged records what the test produced, for the offline recomputation.
type logged struct {
	r    *running
	recs []offline.Record
}

func (l *logged) produce(t *testing.T, topic, key string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	l.r.produce(t, topic, key, b)
	l.recs = append(l.recs, offline.Record{Topic: topic, Key: key, Value: b})
}

// A definitions file adds three 1-hour features to a pipeline that has
// run for 50 minutes: after the restart they are served as warming up,
// the backfill replays the input topics' history, and once it is done
// every feature of every stream — the new ones and the old — equals the
// offline recomputation over the same log, at an instant after the
// restart's events (a late one among them).
func TestBackfillNewFeatures(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Brokers: testBrokers(), TopicPrefix: fmt.Sprintf("bf%d-", time.Now().UnixNano()), NoEmbeddings: true}
	start := time.Now().UTC().Add(-50 * time.Minute).Truncate(time.Second)
	streams := []string{"ls-bf-1", "ls-bf-2", "ls-bf-3"}
	n := 0
	h := func(ls string, at time.Duration) events.Header {
		n++
		return events.Header{EventID: fmt.Sprintf("bf-%d", n), EventTime: start.Add(at), LivestreamID: ls}
	}
	r, stop := startStack(t, cfg)
	cl := r.newProducer(t)
	r.client = cl
	lg := &logged{r: r}
	for i, ls := range streams {
		lg.produce(t, events.TopicLivestreams, ls, events.Livestream{Header: h(ls, 0), SellerID: fmt.Sprintf("s-%d", i),
			Title: "vintage cards", Category: "trading-cards", Language: "en", Status: events.StatusLive})
	}
	// 48 minutes of bids and chat, a bid every 20 s per stream.
	for at := 10 * time.Second; at < 48*time.Minute; at += 20 * time.Second {
		for i, ls := range streams {
			k := int(at / time.Second)
			lg.produce(t, events.TopicAuctions, ls, events.Auction{Header: h(ls, at+time.Duration(i)*time.Second), AuctionID: "a-" + ls,
				Type: events.AuctionBid, UserID: fmt.Sprintf("u%d", (k*7+i)%23), Amount: float64(10 + (k*13+i*5)%97), Currency: "USD"})
			if k%60 == 10 {
				lg.produce(t, events.TopicChat, ls, events.Chat{Header: h(ls, at), UserID: fmt.Sprintf("u%d", k%5), Text: "nice"})
			}
		}
	}
	before := len(lg.recs)
	waitEvents(t, r, streams, lg)
	cl.Close()
	stop()

	file := filepath.Join(dir, "features.yaml")
	if err := os.WriteFile(file, append(append([]byte{}, features.DefaultsYAML...), backfillFeatures...), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.FeaturesFile = file
	r, stop = startStack(t, cfg)
	defer stop()
	cl = r.newProducer(t)
	defer cl.Close()
	r.client = cl
	lg.r = r
	// Live events after the split, one late within the lateness.
	for at := 48 * time.Minute; at < 50*time.Minute; at += 10 * time.Second {
		for i, ls := range streams {
			k := int(at / time.Second)
			lg.produce(t, events.TopicAuctions, ls, events.Auction{Header: h(ls, at), AuctionID: "a-" + ls,
				Type: events.AuctionBid, UserID: fmt.Sprintf("v%d", (k+i)%11), Amount: float64(200 + k%31), Currency: "USD"})
		}
	}
	lg.produce(t, events.TopicAuctions, streams[0], events.Auction{Header: h(streams[0], 49*time.Minute), AuctionID: "a-late",
		Type: events.AuctionBid, UserID: "late", Amount: 999, Currency: "USD"})
	waitEvents(t, r, streams, lg)

	// The offline recomputation of the whole log with the new file.
	topo, release, err := OfflineTopology(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	en := offline.New(topo)
	for _, rec := range lg.recs {
		en.Apply(context.Background(), rec)
	}
	at := start.Add(50 * time.Minute)
	want := en.Values(at)["livestream"]

	var lf serving.LivestreamFeatures
	sawWarming := false
	r.waitFor(t, "the backfill merged into every stream", func() bool {
		for _, ls := range streams {
			lf = serving.LivestreamFeatures{}
			if r.get(t, "/v1/features/livestream/"+ls+"?at="+at.Format(time.RFC3339Nano), &lf) != 200 {
				return false
			}
			if len(lf.Warming) > 0 {
				sawWarming = true
				return false
			}
			if !sameFeatures(lf.Features, want[ls], []string{"bid_sum_1h", "bidders_1h", "bid_p50_1h"}) {
				return false
			}
		}
		return true
	})
	sellers := en.Values(at)["seller"]
	for i := range streams {
		id := fmt.Sprintf("s-%d", i)
		var ef serving.EntityFeatures
		r.waitFor(t, "the seller backfill merged", func() bool {
			ef = serving.EntityFeatures{}
			return r.get(t, "/v1/features/seller/"+id+"?at="+at.Format(time.RFC3339Nano), &ef) == 200 && len(ef.Warming) == 0 &&
				sameFeatures(ef.Features, sellers[id], []string{"seller_bid_amount_1h"})
		})
		var names []string
		for name := range sellers[id] {
			names = append(names, name)
		}
		if !sameFeatures(ef.Features, sellers[id], names) || ef.Features["seller_bid_amount_1h"] == 0 {
			t.Errorf("seller %s: served %v\noffline %v", id, ef.Features, sellers[id])
		}
	}
	for _, ls := range streams {
		lf = serving.LivestreamFeatures{}
		r.get(t, "/v1/features/livestream/"+ls+"?at="+at.Format(time.RFC3339Nano), &lf)
		var names []string
		for name := range want[ls] {
			names = append(names, name)
		}
		sort.Strings(names)
		if !sameFeatures(lf.Features, want[ls], names) {
			t.Errorf("%s: served %v\noffline %v", ls, lf.Features, want[ls])
		}
		if lf.Features["bid_sum_1h"] == 0 {
			t.Errorf("%s: bid_sum_1h is 0", ls)
		}
	}
	t.Logf("warming seen while backfilling: %v; %d records before the split, %d after", sawWarming, before, len(lg.recs)-before)

	// The catalog records the finished run with what it replayed.
	cats, err := backfill.ReadCatalogs(context.Background(), []kgo.Opt{kgo.SeedBrokers(r.app.Brokers()...)},
		cfg.TopicPrefix+"livestream-backfill-state")
	if err != nil {
		t.Fatal(err)
	}
	var replayed int64
	runs := 0
	for _, c := range cats {
		for _, run := range c.Runs {
			runs++
			replayed += run.Replayed
			if !run.Done {
				t.Errorf("partition %d: run %s not done", c.Partition, run.ID)
			}
		}
	}
	if runs == 0 || replayed < int64(before)/2 {
		t.Errorf("%d runs replayed %d records; %d were before the split", runs, replayed, before)
	}
	// What `livefeed features explain --brokers` prints.
	desc := backfill.Describe(cfg.TopicPrefix+"livestream", cats, time.Now())
	if !strings.Contains(desc, "(100%)") || !strings.Contains(desc, "bid_sum_1h, bidders_1h, bid_p50_1h: done") {
		t.Errorf("explain:\n%s", desc)
	}
	t.Logf("explain:\n%s", desc)
}

// sameFeatures compares the named features of a served and an offline
// map (absent in both is equal).
func sameFeatures(got, want map[string]float64, names []string) bool {
	for _, name := range names {
		g, gok := got[name]
		w, wok := want[name]
		if gok != wok || math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
			return false
		}
	}
	return true
}

// waitEvents waits until serving counts every event produced per stream.
func waitEvents(t *testing.T, r *running, streams []string, lg *logged) {
	t.Helper()
	want := map[string]int64{}
	for _, rec := range lg.recs {
		want[rec.Key]++
	}
	r.waitFor(t, "every event processed", func() bool {
		for _, ls := range streams {
			var lf serving.LivestreamFeatures
			if r.get(t, "/v1/features/livestream/"+ls, &lf) != 200 || lf.Events != want[ls] {
				return false
			}
		}
		return true
	})
}
