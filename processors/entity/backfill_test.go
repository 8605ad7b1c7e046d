package entity

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The entity replay absorbs what the group absorbs: a record re-emitted by
// a replaying livestream group (the same origin at a new offset) counts
// once, and an undecodable one not at all.
func TestReplayAbsorbsDuplicates(t *testing.T) {
	set, err := features.NewSet(features.Definition{Name: "seller_bids_1h", Entity: "seller", Sources: []string{"auctions"},
		Filter: `type == "bid"`, Aggregation: features.Count, Window: features.SlidingWindow(time.Hour, time.Minute), Lateness: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rec := func(i int, origin string) *kgo.Record {
		at := t0.Add(time.Duration(i) * time.Second)
		ev, _ := json.Marshal(events.Auction{Header: events.Header{EventID: fmt.Sprint("e", i), EventTime: at, LivestreamID: "ls1"},
			AuctionID: "a1", Type: events.AuctionBid, UserID: "u1", Amount: 10, Currency: "USD"})
		v, _ := json.Marshal(events.Enriched{Source: "auctions", EventID: fmt.Sprint("e", i), EventTime: at, LivestreamID: "ls1",
			SellerID: "s1", Event: ev})
		return &kgo.Record{Key: []byte("s1"), Value: v, Headers: []kgo.RecordHeader{{Key: pipeline.HeaderOrigin, Value: []byte(origin)}}}
	}
	rp := NewReplay(set)
	ctx := context.Background()
	for i := range 5 {
		rp.Apply(ctx, "features-seller", rec(i, fmt.Sprint("auctions/0/", i)))
	}
	rp.Apply(ctx, "features-seller", rec(3, "auctions/0/3"))                             // re-emitted: same origin
	rp.Apply(ctx, "features-seller", rec(6, "auctions/1/3"))                             // another partition's offset 3
	rp.Apply(ctx, "features-seller", &kgo.Record{Key: []byte("s1"), Value: []byte("{")}) // malformed
	n := 0
	rp.States(func(key string, st *features.State) bool {
		n++
		if got := set.Values(st, t0.Add(time.Minute))["seller_bids_1h"]; key != "s1" || got != 6 {
			t.Errorf("%s: %v bids, want 6", key, got)
		}
		return true
	})
	if n != 1 {
		t.Fatalf("%d keys", n)
	}
}
