package kgoka_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/livefeed/livefeed/broker/kgoka"
)

// A zombie on kfake: a processor forwards every input record to out while
// the coordinator stops answering its heartbeats (a network partition
// between the member and the coordinator; the partition leader stays
// reachable, the dangerous case). The coordinator expires the member
// SessionTimeout after the last heartbeat it answered. Fenced, the processor
// writes no produce request after that instant (its lease lapses
// LeaseMargin before it), not even through kgo's rejoin; once the
// coordinator answers again (the member is gone) it aborts what it held
// and stops with ErrFenced. Unfenced (the processor options without
// Fence.ProcessorOptions), hundreds of produce requests arrive after the
// expiry. A new processor then forwards every input: nothing is lost.
func TestFenceStopsAZombie(t *testing.T) {
	if os.Getenv("LIVEFEED_TEST_BROKERS") != "" {
		t.Skip("kfake only (its control of the coordinator's answers); the kfake tier runs it, TestZombieReplica is the real-Kafka test")
	}
	const session = 6 * time.Second // kfake's group.min.session.timeout.ms
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	in, out, group := goka.Stream(name(t, "in")), goka.Stream(name(t, "out")), goka.Group(name(t, "group"))
	createTopics(t, brokers, 2, false, string(in), string(out))
	createTopics(t, brokers, 2, true, string(goka.GroupTable(group)))
	td, err := admin(t, brokers).ListTopics(context.Background(), string(out))
	if err != nil {
		t.Fatal(err)
	}
	outID := td[string(out)].ID // produce requests name topics by id from v13

	// The coordinator: heartbeats answered until partitioned (the time of
	// the last one answered is kept), dropped unanswered while partitioned.
	var (
		mu          sync.Mutex
		partitioned bool
		lastHB      time.Time
		produced    []time.Time // produce requests with records for out
	)
	c.ControlKey(kmsg.NewPtrHeartbeatRequest().Key(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		if partitioned {
			return nil, nil, true // no answer
		}
		lastHB = time.Now()
		return nil, nil, false
	})
	c.ControlKey(kmsg.NewPtrProduceRequest().Key(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			if tp.Topic == string(out) || tp.TopicID == outID {
				mu.Lock()
				produced = append(produced, time.Now())
				mu.Unlock()
			}
		}
		return nil, nil, false
	})

	k := kgoka.New(kgoka.Options{SessionTimeout: session, HeartbeatInterval: 500 * time.Millisecond, LeaseMargin: time.Second})
	reg := prometheus.NewRegistry()
	metrics := kgoka.NewMetrics(reg)
	graph := goka.DefineGroup(group, goka.Input(in, new(codec.String), func(ctx goka.Context, msg any) {
		ctx.Emit(out, ctx.Key(), msg)
	}), goka.Output(out, new(codec.String)))
	runProcessor := func(ctx context.Context) <-chan error {
		f := k.Fence(metrics)
		p, err := goka.NewProcessor(brokers, graph, append(processorOptions(k, storage.MemoryBuilder()), f.ProcessorOptions()...)...)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		return done
	}

	inputs := feed(t, brokers, in, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	pctx, stop := context.WithCancel(ctx)
	zombie := runProcessor(pctx)
	eventually(t, 30*time.Second, "records forwarded before the partition", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(produced) >= 20, fmt.Sprintf("%d produce requests, %d inputs sent, %v refused", len(produced), inputs.sent.Load(), counterSum(t, reg, "livefeed_kafka_fenced_records_total"))
	})

	mu.Lock()
	partitioned = true
	mu.Unlock()
	// The coordinator expires the member; an unfenced zombie keeps
	// producing (kgo even rejoins with a JoinGroup and carries on), a
	// fenced one holds what it produces.
	time.Sleep(session + 3*time.Second)
	mu.Lock()
	expiry := lastHB.Add(session)
	var late []time.Duration
	for _, at := range produced {
		if at.After(expiry) {
			late = append(late, at.Sub(expiry).Round(time.Millisecond))
		}
	}
	last := produced[len(produced)-1].Sub(lastHB).Round(time.Millisecond)
	partitioned = false
	mu.Unlock()
	if len(late) > 0 {
		t.Fatalf("%d produce requests reached the broker after it could expire the member (last answered heartbeat + %v): %v after it", len(late), session, late[:min(len(late), 10)])
	}
	// Healed, the coordinator answers that the member is gone: the
	// processor aborts what it held and stops.
	var zerr error
	select {
	case zerr = <-zombie:
	case <-time.After(15 * time.Second):
		t.Fatal("the fenced processor did not stop once the coordinator answered")
	}
	stop()
	t.Logf("last produce request %v after the last answered heartbeat (session %v); the processor stopped with: %v", last, session, zerr)
	if zerr == nil || !strings.Contains(zerr.Error(), "fenced") {
		t.Fatalf("the fenced processor stopped with %v, want an error naming the fence", zerr)
	}
	if n := counterSum(t, reg, "livefeed_kafka_fenced_total"); n < 1 {
		t.Fatalf("livefeed_kafka_fenced_total = %v, want ≥ 1", n)
	}
	if n := counterSum(t, reg, "livefeed_kafka_fenced_records_total"); n < 1 {
		t.Fatalf("livefeed_kafka_fenced_records_total = %v, want ≥ 1", n)
	}

	// A new processor (what a restart does) forwards every input.
	fctx, stopFresh := context.WithCancel(context.Background())
	defer stopFresh()
	fresh := runProcessor(fctx)
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(string(out)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cons.Close)
	seen := map[string]bool{}
	time.Sleep(time.Second)
	want := inputs.Stop() // what was sent must all arrive
	deadline := time.Now().Add(30 * time.Second)
	for int64(len(seen)) < want && time.Now().Before(deadline) {
		fctx, fcancel := context.WithTimeout(context.Background(), time.Second)
		cons.PollFetches(fctx).EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
		fcancel()
	}
	if int64(len(seen)) < want {
		t.Fatalf("%d of %d inputs forwarded after the restart", len(seen), want)
	}
	stopFresh()
	if err := <-fresh; err != nil {
		t.Fatal(err)
	}
	// Both processors stopped: no member's lease loop is left.
	eventually(t, 10*time.Second, "lease loops stopped", func() (bool, string) {
		buf := make([]byte, 1<<20)
		n := strings.Count(string(buf[:runtime.Stack(buf, true)]), "kgoka.(*member).leaseLoop")
		return n == 0, fmt.Sprintf("%d running", n)
	})
}

// counterSum sums every series of the counter name in g.
func counterSum(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
