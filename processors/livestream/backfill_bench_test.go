package livestream

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkBackfillReplay measures a backfill run of the livestream group:
// LIVEFEED_BENCH_BACKFILL_RECORDS (default 200k) bids of 500 streams over
// an hour, in one partition of kfake, replayed through a 1-hour sum added
// to the defaults, states handed over. records/s is the replay's rate on
// one partition (one core); the producing is not timed.
//
//	flock /work/notes/bench.lock go test -run x -bench BackfillReplay -benchtime 1x ./processors/livestream/
func BenchmarkBackfillReplay(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("LIVEFEED_BENCH_BACKFILL_RECORDS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	inputs := []string{"livestreams", "viewing", "chat", "auctions"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, inputs...))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	client := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(append(client, kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	start := time.Now().Add(-time.Hour)
	for i := range 500 {
		ls := fmt.Sprint("ls-", i)
		v, _ := json.Marshal(events.Livestream{Header: events.Header{EventID: "m" + ls, EventTime: start, LivestreamID: ls},
			SellerID: fmt.Sprint("s-", i%50), Title: "cards", Category: "trading-cards", Status: events.StatusLive})
		cl.Produce(ctx, &kgo.Record{Topic: "livestreams", Key: []byte(ls), Value: v}, nil)
	}
	for i := range n {
		ls := fmt.Sprint("ls-", i%500)
		v, _ := json.Marshal(events.Auction{Header: events.Header{EventID: fmt.Sprint("b", i), LivestreamID: ls,
			EventTime: start.Add(time.Duration(i) * time.Hour / time.Duration(n))},
			AuctionID: "a-" + ls, Type: events.AuctionBid, UserID: fmt.Sprint("u", i%997), Amount: float64(1 + i%300), Currency: "USD"})
		cl.Produce(ctx, &kgo.Record{Topic: "auctions", Key: []byte(ls), Value: v}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, inputs...)
	if err != nil {
		b.Fatal(err)
	}
	defs := features.LivestreamDefaults()
	old, err := features.NewSet(defs...)
	if err != nil {
		b.Fatal(err)
	}
	all, err := features.NewSet(append(defs, features.Definition{Name: "bid_sum_1h", Sources: []string{"auctions"},
		Filter: `type == "bid"`, Field: "amount", Aggregation: features.Sum,
		Window: features.SlidingWindow(time.Hour, time.Minute), Lateness: 2 * time.Minute})...)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var took time.Duration
	for i := range b.N {
		group := fmt.Sprint("bench-", i)
		co := func(set *features.Set) *backfill.Coordinator {
			co, err := backfill.New(backfill.Options{Client: client, Group: group, Inputs: inputs, Topic: group + "-bf",
				StateTopic: group + "-bf-state", Partitions: 1, Features: set, Metrics: backfill.NewMetrics(prometheus.NewRegistry()),
				NewReplay: func(s *features.Set) backfill.Replay { return NewReplay(s, 0, Retention(set), -1) }})
			if err != nil {
				b.Fatal(err)
			}
			if err := co.Prepare(ctx); err != nil {
				b.Fatal(err)
			}
			return co
		}
		b.StopTimer()
		if _, err := adm.CreateTopics(ctx, 1, 1, nil, group+"-bf", group+"-bf-state"); err != nil {
			b.Fatal(err)
		}
		co(old)
		if _, err := adm.CommitOffsets(ctx, group, ends.Offsets()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		if err := co(all).Run(ctx); err != nil {
			b.Fatal(err)
		}
		took += time.Since(began)
		b.StopTimer()
		cats, err := backfill.ReadCatalogs(ctx, client, group+"-bf-state")
		if err != nil {
			b.Fatal(err)
		}
		if r := cats[0].Runs; len(r) != 1 || r[0].Replayed != int64(n+500) || r[0].Keys != 500 {
			b.Fatalf("runs %+v: want %d records replayed into 500 keys", r, n+500)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n+500)*float64(b.N)/took.Seconds(), "records/s")
}
