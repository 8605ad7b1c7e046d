package livestream

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/pipeline/pipelinetest"
	"github.com/livefeed/livefeed/tables"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The group's side of a backfill, against a real (fake) broker for the
// coordinator and goka's tester for the group: a feature added after the
// group processed a stream's history is not fed by records before the
// split when the group handles them again (after a crash), is marked
// warming up by the live path's writes during the run, merges the backfill's record once (a replayed record changes
// nothing), equals one pass over every event, and stops warming after the
// done record; the old features are untouched; the catalog keeps the run
// done, and a coordinator prepared again finds no new feature.
func TestBackfillInGroup(t *testing.T) {
	ctx := context.Background()
	const group, bfTopic, stateTopic = "livestream", "livestream-backfill", "livestream-backfill-state"
	inputs := []string{"livestreams", "viewing", "chat", "auctions"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, append(inputs, bfTopic, stateTopic)...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	old, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		t.Fatal(err)
	}
	added := features.Definition{Name: "bid_sum_1h", Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: "amount",
		Aggregation: features.Sum, Window: features.SlidingWindow(time.Hour, time.Minute), Lateness: 2 * time.Minute}
	all, err := features.NewSet(append(features.LivestreamDefaults(), added)...)
	if err != nil {
		t.Fatal(err)
	}
	coordinator := func(set *features.Set) *backfill.Coordinator {
		co, err := backfill.New(backfill.Options{Client: client, Group: group, Inputs: inputs, Topic: bfTopic, StateTopic: stateTopic,
			Partitions: 1, Features: set, Metrics: backfill.NewMetrics(prometheus.NewRegistry()),
			NewReplay: func(s *features.Set) backfill.Replay { return NewReplay(s, 0, Retention(set), -1) }})
		if err != nil {
			t.Fatal(err)
		}
		if err := co.Prepare(ctx); err != nil {
			t.Fatal(err)
		}
		return co
	}

	// The history: the group ran with the old features over it.
	var history [][2]any // topic, event
	history = append(history, [2]any{"livestreams", &events.Livestream{Header: hdr("m", "ls1", 0), SellerID: "s1", Title: "cards",
		Category: "trading-cards", Status: events.StatusLive}})
	for i := range 90 {
		history = append(history, [2]any{"auctions", &events.Auction{Header: hdr(fmt.Sprint("b", i), "ls1", time.Duration(i)*30*time.Second),
			AuctionID: "a1", Type: events.AuctionBid, UserID: fmt.Sprint("u", i%7), Amount: float64(10 + i%13), Currency: "USD"}})
	}
	cl, err := kgo.NewClient(client...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	co := coordinator(old) // the catalog of the old features
	if len(co.Active(0)) != 0 {
		t.Fatal("a run for a group that never ran")
	}
	ref := &tables.Livestream{LivestreamID: "ls1"} // one pass over everything with every feature
	refUpdater := &Updater{Features: all, ViewerTimeout: 2 * time.Minute}
	for _, h := range history {
		b, _ := json.Marshal(h[1])
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: h[0].(string), Key: []byte("ls1"), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		refUpdater.Apply(ctx, ref, h[1])
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, inputs...)
	if err != nil {
		t.Fatal(err)
	}
	// A crash: the group committed only 40 of the 90 auctions it applied.
	committed := ends.Offsets()
	o := committed["auctions"][0]
	o.At = 40
	committed["auctions"][0] = o
	if _, err := adm.CommitOffsets(ctx, group, committed); err != nil {
		t.Fatal(err)
	}

	// Restart with the new feature.
	co = coordinator(all)
	if co.Live(0, "auctions", 5) == nil || co.Live(0, "auctions", 90) != nil {
		t.Fatalf("live sets: before the split %v, after %v", co.Live(0, "auctions", 5), co.Live(0, "auctions", 90))
	}
	act := co.Active(0)
	if len(act) != 1 || act[0].Set.Len() != 1 {
		t.Fatalf("active runs %+v, want one for bid_sum_1h", act)
	}
	if again := coordinator(all).Active(0); len(again) != 1 || again[0].ID != act[0].ID {
		t.Fatalf("prepared again before it ran: %+v, want the same run %s", again, act[0].ID)
	}
	g, err := New(Config{Group: DefaultGroup, Topics: topics, Features: all, Metrics: pipeline.NewMetrics(prometheus.NewRegistry()),
		Backfill: co, BackfillTopic: bfTopic, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	gkt := pipelinetest.Run(t, g)
	table := Table(DefaultGroup)
	state := func() *tables.Livestream {
		pipelinetest.Sync(t, g)
		v, _ := gkt.TableValue(table, "ls1").(*tables.Livestream)
		if v == nil {
			t.Fatal("no state")
		}
		return v
	}
	live := func(i int) {
		ev := &events.Auction{Header: hdr(fmt.Sprint("l", i), "ls1", 45*time.Minute+time.Duration(i)*10*time.Second),
			AuctionID: "a1", Type: events.AuctionBid, UserID: "late-bidder", Amount: 100, Currency: "USD"}
		b, _ := json.Marshal(ev)
		gkt.Consume("auctions", "ls1", b)
		refUpdater.Apply(ctx, ref, ev)
	}
	// The group handles the history again (as after a crash, from its
	// committed offsets; the tester's offsets start at 0 as the topics'
	// did): before the split, only the old features take it.
	for _, h := range history {
		b, _ := json.Marshal(h[1])
		gkt.Consume(h[0].(string), "ls1", b)
	}
	if st := state(); st.Features.Series["bid_sum_1h"] != nil || st.Events != int64(len(history)) {
		t.Fatalf("before the split the live path fed the new feature (events %d)", st.Events)
	}
	if st := state(); !reflect.DeepEqual(st.Features.WarmingNames(), []string{"bid_sum_1h"}) {
		t.Fatalf("warming %v after the live path wrote the stream during the run", st.Features.WarmingNames())
	}

	// The backfill runs and hands its records over: the key's warming
	// mark, its state, the done marker.
	if err := co.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	rd, err := kgo.NewClient(append(client, kgo.ConsumeTopics(bfTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for len(recs) < 3 {
		fs := rd.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	if len(recs) != 3 || string(recs[0].Key) != "ls1" || string(recs[1].Key) != "ls1" || len(recs[2].Key) != 0 {
		t.Fatalf("backfill records: %d", len(recs))
	}
	gkt.Consume(bfTopic, "ls1", recs[0].Value)
	if st := state(); !reflect.DeepEqual(st.Features.WarmingNames(), []string{"bid_sum_1h"}) {
		t.Fatalf("warming %v after the backfill met the key", st.Features.WarmingNames())
	}
	live(0)
	if st := state(); !reflect.DeepEqual(st.Features.WarmingNames(), []string{"bid_sum_1h"}) {
		t.Fatalf("warming %v after a live event during the backfill", st.Features.WarmingNames())
	}
	now := t0.Add(50 * time.Minute)
	for range 2 { // the second is a replay of the same record
		gkt.Consume(bfTopic, "ls1", recs[1].Value)
		st := state()
		if got, want := all.Results(&st.Features, now), all.Results(&ref.Features, now); !reflect.DeepEqual(got, want) {
			t.Fatalf("after the merge:\n got %v\nwant %v", got, want)
		}
		if len(st.Features.Warming) != 0 || !st.Features.Merged(act[0].ID) {
			t.Fatalf("warming %v, merged %v", st.Features.Warming, st.Features.Backfilled)
		}
	}
	if !co.IsActive(0, act[0].ID) {
		t.Fatal("finished before its done record")
	}
	gkt.Consume(bfTopic, "ls1", recs[0].Value) // a warming mark replayed after the merge
	if st := state(); len(st.Features.Warming) != 0 {
		t.Fatalf("warming %v after the merge", st.Features.Warming)
	}
	gkt.Consume(bfTopic, "", recs[2].Value)
	pipelinetest.Sync(t, g)
	if co.IsActive(0, act[0].ID) {
		t.Fatal("still active after its done record")
	}
	live(1)
	st := state()
	if len(st.Features.Warming) != 0 {
		t.Fatalf("warming %v after the backfill", st.Features.Warming)
	}
	if got, want := all.Results(&st.Features, now), all.Results(&ref.Features, now); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the backfill:\n got %v\nwant %v", got, want)
	}

	cats, err := backfill.ReadCatalogs(ctx, client, stateTopic)
	if err != nil {
		t.Fatal(err)
	}
	runs := cats[0].Runs
	if len(runs) != 1 || !runs[0].Done || runs[0].Replayed != int64(len(history)) || runs[0].Keys != 1 || runs[0].Remaining() != 0 {
		t.Fatalf("catalog runs %+v", runs)
	}
	if len(coordinator(all).Active(0)) != 0 {
		t.Fatal("a finished run is active after a restart")
	}
}
