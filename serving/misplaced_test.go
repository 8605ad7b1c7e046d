package serving

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/tables"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A stream's key stored in a table partition it does not map to (an orphan
// written before the processors checked partitions, or a table copied with
// another partitioner) shadows nothing: lookups answer the copy in the
// key's own partition, the index holds the stream once, live and when it
// is rebuilt from the view's local storage on a restart.
func TestMisplacedKeyShadowsNothing(t *testing.T) {
	e := newSnapEnv(t)
	dir := t.TempDir()
	ids := streamIDs(0, 40)
	e.upsert(t, ids...)
	id := ids[7]
	own := broker.PartitionOf(id, 4)
	stale, err := tables.LivestreamCodec{}.Encode(&tables.Livestream{LivestreamID: id, Title: "a stale copy",
		Category: "a", Language: "en", Status: events.StatusLive, LiveSince: e.now.Add(-time.Hour), Events: 1})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: testLSTable, Partition: (own + 1) % 4, Key: []byte(id), Value: stale}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	check := func(r *running) {
		t.Helper()
		e.current(t, r) // exactly the 40 streams: the copy is not indexed
		ls, err := r.svc.Livestream(id)
		if err != nil || ls == nil || ls.Title == "a stale copy" {
			t.Fatalf("Livestream(%s) = %+v, %v: want the state in partition %d", id, ls, err, own)
		}
	}
	first := e.start(t, dir)
	check(first)
	waitFor(t, "the misplaced copy counted", func() bool {
		return testutil.ToFloat64(first.svc.metrics.indexUpdates.WithLabelValues("misplaced")) == 1
	})
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	// A restart without a usable snapshot rebuilds the index from the
	// view's local storage, which holds the copy in its partition.
	if err := os.WriteFile(filepath.Join(dir, "index.snap"), []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := e.start(t, dir)
	if st := again.svc.Restored(); st.FromSnapshot || len(st.Reconciled) != 4 {
		t.Fatalf("restore: %+v, want the index rebuilt from the local view storage", st)
	}
	check(again)
}
