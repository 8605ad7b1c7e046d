package features_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/livefeed/livefeed/features"
)

// Features are defined in Go (or YAML, see ExampleLoad), compiled into a
// Set, fed events and read at any time.
func Example() {
	set, err := features.NewSet(
		features.Definition{
			Name: "bids_5m", Entity: "livestream", Sources: []string{"auctions"},
			Filter: `type == "bid"`, Aggregation: features.Count,
			Window: features.SlidingWindow(5*time.Minute, 30*time.Second), Lateness: time.Minute,
		},
		features.Definition{
			Name: "top_bidders_1h", Entity: "livestream", Sources: []string{"auctions"},
			Filter: `type == "bid"`, Field: "user_id", Aggregation: features.TopK, K: 2,
			Window: features.SlidingWindow(time.Hour, 5*time.Minute), Lateness: time.Minute,
		},
	)
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	bid := func(at time.Duration, user string, amount float64) features.Event {
		return features.MapEvent{Src: "auctions", At: t0.Add(at),
			Fields: map[string]any{"type": "bid", "user_id": user, "amount": amount}}
	}
	var st features.State // one livestream's state
	for _, e := range []features.Event{bid(0, "ann", 10), bid(time.Minute, "bob", 12), bid(2*time.Minute, "ann", 15)} {
		set.ApplyEvent(&st, e)
	}
	// 2 minutes late: beyond the 1-minute lateness, dropped and counted.
	out := set.ApplyEvent(&st, bid(0, "cid", 11))
	fmt.Println("late:", out.Dropped(), st.Dropped["bids_5m"])

	now := t0.Add(3 * time.Minute)
	fmt.Println("bids_5m:", set.Values(&st, now)["bids_5m"])
	top, _ := json.Marshal(set.Results(&st, now)["top_bidders_1h"])
	fmt.Println("top_bidders_1h:", string(top))

	// The state encodes compactly for the processor's table.
	bin, _ := st.MarshalBinary()
	var back features.State
	if err := back.UnmarshalBinary(bin); err != nil {
		panic(err)
	}
	fmt.Println("after a round trip:", set.Values(&back, now)["bids_5m"])
	// Output:
	// late: true 1
	// bids_5m: 3
	// top_bidders_1h: [{"key":"ann","count":2},{"key":"bob","count":1}]
	// after a round trip: 3
}

// A features file: errors carry line:column and a fix.
func ExampleLoad() {
	_, err := features.Load([]byte(`
features:
  - name: gmv_1h
    sources: [auctions]
    filter: type == "sold"
    field: amount
    aggregation: summ
    window: {type: sliding, size: 1h, hop: 5m}
    lateness: 2m
`), features.WithFilename("my-features.yaml"))
	fmt.Println(err)
	// Output:
	// my-features.yaml:7:18: feature gmv_1h: aggregation: unknown aggregation "summ" (fix: did you mean "sum"?)
}
