package serving

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/livefeed/livefeed/tables"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// snapEnv is a kfake broker with the two table topics; services come and
// go on it, sharing a snapshot directory.
type snapEnv struct {
	addrs []string
	cl    *kgo.Client
	rng   *rand.Rand
	now   time.Time
	// want is the table's content: id → vector (deleted: absent).
	want map[string][]float32
}

func newSnapEnv(t *testing.T) *snapEnv {
	emb, err := broker.StartEmbedded("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addrs()...), kgo.RecordPartitioner(broker.Partitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := broker.EnsureTopics(ctx, cl, 1, []broker.TopicSpec{
		{Name: testLSTable, Partitions: 4, Compacted: true}, {Name: testUserTable, Partitions: 4, Compacted: true},
	}); err != nil {
		t.Fatal(err)
	}
	return &snapEnv{addrs: emb.Addrs(), cl: cl, rng: rand.New(rand.NewPCG(1, 2)),
		now: time.Now().UTC().Truncate(time.Second), want: map[string][]float32{}}
}

// upsert writes n streams (new ids from first, or existing ones) with
// random 16-d vectors.
func (e *snapEnv) upsert(t *testing.T, ids ...string) {
	t.Helper()
	var recs []*kgo.Record
	for _, id := range ids {
		v := make(events.Vector, 16)
		for i := range v {
			v[i] = float32(e.rng.NormFloat64())
		}
		ls := &tables.Livestream{LivestreamID: id, SellerID: "s-" + id[len(id)-1:], Title: "stream " + id,
			Category: []string{"a", "b", "c"}[e.rng.IntN(3)], Language: "en", Status: events.StatusLive,
			LiveSince: e.now.Add(-time.Minute), Embedding: v, EmbeddingModel: "test", Viewers: tables.ViewerSet{}}
		b, err := tables.LivestreamCodec{}.Encode(ls)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: testLSTable, Key: []byte(id), Value: b})
		e.want[id] = v
	}
	e.produce(t, recs)
}

func (e *snapEnv) remove(t *testing.T, ids ...string) {
	t.Helper()
	var recs []*kgo.Record
	for _, id := range ids {
		recs = append(recs, &kgo.Record{Topic: testLSTable, Key: []byte(id)}) // tombstone
		delete(e.want, id)
	}
	e.produce(t, recs)
}

func (e *snapEnv) produce(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// running is a started service.
type running struct {
	svc  *Service
	stop func() error
}

func (e *snapEnv) start(t *testing.T, dir string) *running {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	bc := &broker.Config{Brokers: e.addrs, StateDir: t.TempDir(), Partitions: 4, Logger: logger}
	bc.Defaults()
	cfg := Config{Broker: bc, LivestreamTable: testLSTable, UserTable: testUserTable, Features: livestreamFeatures(t),
		Logger: logger, Clock: func() time.Time { return e.now }}
	if dir != "" {
		cfg.Snapshot = SnapshotConfig{Dir: dir, Index: index.Options{M: 8, EfConstruction: 40}}
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			return fmt.Errorf("service did not stop within 20s")
		}
	}
	t.Cleanup(func() { _ = stop() })
	waitFor(t, "views recovered", svc.Ready)
	return &running{svc: svc, stop: stop}
}

// current waits until the index holds exactly the table's content.
func (e *snapEnv) current(t *testing.T, r *running) {
	t.Helper()
	waitFor(t, "index equal to the table", func() bool {
		ix := r.svc.Index()
		if ix.Len() != len(e.want) {
			return false
		}
		for id, v := range e.want {
			hits, _ := ix.Search(v, 1, &index.Filter{}, e.now)
			if len(hits) != 1 || hits[0].Item.ID != id {
				return false
			}
		}
		return true
	})
}

func updatesApplied(r *running) float64 {
	return testutil.ToFloat64(r.svc.metrics.indexUpdates.WithLabelValues("upsert")) +
		testutil.ToFloat64(r.svc.metrics.indexUpdates.WithLabelValues("delete"))
}

// sameSearch: two services answer a set of queries identically.
func sameSearch(t *testing.T, a, b *running, queries [][]float32, now time.Time) {
	t.Helper()
	for qi, q := range queries {
		ha, _ := a.svc.Index().Search(q, 10, &index.Filter{}, now)
		hb, _ := b.svc.Index().Search(q, 10, &index.Filter{}, now)
		if len(ha) != len(hb) {
			t.Fatalf("query %d: %d hits vs %d", qi, len(ha), len(hb))
		}
		for j := range ha {
			if ha[j].Item.ID != hb[j].Item.ID {
				t.Fatalf("query %d rank %d: %s vs %s", qi, j, ha[j].Item.ID, hb[j].Item.ID)
			}
		}
	}
}

func streamIDs(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("ls-%04d", i))
	}
	return out
}

// TestRestartFromSnapshot: a replica stops (snapshot on shutdown), the
// table moves on, a new replica restores the snapshot and its view resumes
// from the local goleveldb offsets: it applies only the tail, not the whole
// table, and ends equal to the table and to a replica built from Kafka.
func TestRestartFromSnapshot(t *testing.T) {
	e := newSnapEnv(t)
	dir := t.TempDir()
	e.upsert(t, streamIDs(0, 300)...)

	first := e.start(t, dir)
	e.current(t, first)
	if first.svc.Restored().FromSnapshot {
		t.Fatal("first start claims a snapshot")
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.snap")); err != nil {
		t.Fatalf("no snapshot after a graceful shutdown: %v", err)
	}

	// The table moves on while no replica runs.
	e.upsert(t, streamIDs(300, 330)...) // new
	e.upsert(t, streamIDs(0, 20)...)    // vectors moved
	e.remove(t, streamIDs(100, 115)...) // deleted
	const tail = 30 + 20 + 15

	second := e.start(t, dir)
	st := second.svc.Restored()
	if !st.FromSnapshot || len(st.Reconciled) != 0 || st.Items != 300 {
		t.Fatalf("restore: %+v", st)
	}
	e.current(t, second)
	if n := updatesApplied(second); n != tail {
		t.Fatalf("the restarted replica applied %.0f table messages, want the %d of the tail (not a replay)", n, tail)
	}

	// A replica without snapshots, built from Kafka, agrees.
	fresh := e.start(t, "")
	e.current(t, fresh)
	queries := make([][]float32, 20)
	for i := range queries {
		queries[i] = e.want[fmt.Sprintf("ls-%04d", 200+i)]
	}
	sameSearch(t, second, fresh, queries, e.now)
}

// TestRestartReconcilesAnOldSnapshot: the snapshot is older than the view's
// local state (a periodic snapshot, then a crash): the partitions that
// moved on are reconciled from the local view storage.
func TestRestartReconcilesAnOldSnapshot(t *testing.T) {
	e := newSnapEnv(t)
	dir := t.TempDir()
	e.upsert(t, streamIDs(0, 200)...)
	r := e.start(t, dir)
	e.current(t, r)
	if err := r.svc.SaveSnapshot(); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(filepath.Join(dir, "index.snap"))
	if err != nil {
		t.Fatal(err)
	}
	e.upsert(t, streamIDs(200, 240)...)
	e.upsert(t, streamIDs(0, 10)...)
	e.remove(t, streamIDs(50, 60)...)
	e.current(t, r)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// "Crash": the newest snapshot is lost, the old one remains.
	if err := os.WriteFile(filepath.Join(dir, "index.snap"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	again := e.start(t, dir)
	st := again.svc.Restored()
	if !st.FromSnapshot || len(st.Reconciled) == 0 {
		t.Fatalf("restore: %+v", st)
	}
	e.current(t, again)
	if n := updatesApplied(again); n != 0 {
		t.Fatalf("the view replayed %.0f messages: its local state was current", n)
	}

	// A corrupt snapshot is ignored: the index is built from the view.
	if err := again.stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.snap"), old[:len(old)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	third := e.start(t, dir)
	if st := third.svc.Restored(); st.FromSnapshot || st.Reason == "" {
		t.Fatalf("a truncated snapshot was used: %+v", st)
	}
	// The view resumes from its local offsets, so the index is rebuilt
	// from the local storage, not from Kafka.
	if st := third.svc.Restored(); len(st.Reconciled) != 4 {
		t.Fatalf("restore without a snapshot: %+v", st)
	}
	e.current(t, third)
	if n := updatesApplied(third); n != 0 {
		t.Fatalf("the view replayed %.0f messages", n)
	}
}
