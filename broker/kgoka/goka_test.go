package kgoka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livefeed/livefeed/broker/kgoka"
)

// counting is a goka group that counts events per key in its table and
// forwards each event to out with a header naming its key.
type counting struct {
	group   goka.Group
	inputs  []goka.Stream
	out     goka.Stream
	headers atomic.Int64 // events that arrived with the emitter's header
}

func (c *counting) graph() *goka.GroupGraph {
	cb := func(ctx goka.Context, msg any) {
		if string(ctx.Headers()["src"]) == "emitter" {
			c.headers.Add(1)
		}
		var n int64
		if v := ctx.Value(); v != nil {
			n = v.(int64)
		}
		ctx.SetValue(n + 1)
		ctx.Emit(c.out, ctx.Key(), msg, goka.WithCtxEmitHeaders(goka.Headers{"key": []byte(ctx.Key())}))
	}
	var edges []goka.Edge
	for _, in := range c.inputs {
		edges = append(edges, goka.Input(in, new(codec.Bytes), cb))
	}
	edges = append(edges, goka.Output(c.out, new(codec.Bytes)), goka.Persist(new(codec.Int64)))
	return goka.DefineGroup(c.group, edges...)
}

// running is one processor of a group, with the assignments it was given.
type running struct {
	p      *goka.Processor
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	assign []goka.Assignment
}

func (r *running) last() goka.Assignment {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.assign) == 0 {
		return nil
	}
	return r.assign[len(r.assign)-1]
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("processor: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("processor did not stop")
	}
}

func start(t *testing.T, brokers []string, k *kgoka.Builders, c *counting, st storage.Builder) *running {
	t.Helper()
	r := &running{done: make(chan error, 1)}
	p, err := goka.NewProcessor(brokers, c.graph(), processorOptions(k, st,
		goka.WithRebalanceCallback(func(a goka.Assignment) {
			r.mu.Lock()
			r.assign = append(r.assign, a)
			r.mu.Unlock()
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-p.Done()
	})
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := p.WaitForReadyContext(wctx); err != nil {
		t.Fatalf("processor not ready: %v", err)
	}
	return r
}

// emit emits n events round-robin over keys to each input through emitters,
// with a header, and waits for every promise.
func emit(t *testing.T, brokers []string, k *kgoka.Builders, inputs []goka.Stream, keys []string, n int, want map[string]int64) {
	t.Helper()
	for _, in := range inputs {
		em, err := goka.NewEmitter(brokers, in, new(codec.Bytes), emitterOptions(k)...)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg   sync.WaitGroup
			errs atomic.Int64
		)
		for i := range n {
			key := keys[i%len(keys)]
			pr, err := em.EmitWithHeaders(key, []byte(fmt.Sprintf("%s-%d", in, i)), goka.Headers{"src": []byte("emitter")})
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			pr.Then(func(err error) {
				if err != nil {
					errs.Add(1)
				}
				wg.Done()
			})
			want[key]++
		}
		wg.Wait()
		if err := em.Finish(); err != nil {
			t.Fatal(err)
		}
		if errs.Load() > 0 {
			t.Fatalf("%d emits to %s failed", errs.Load(), in)
		}
	}
}

// view runs a view of the group's table.
func view(t *testing.T, brokers []string, k *kgoka.Builders, group goka.Group) *goka.View {
	t.Helper()
	v, err := goka.NewView(brokers, goka.GroupTable(group), new(codec.Int64), viewOptions(k)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("view: %v", err)
		}
	})
	return v
}

// countsEqual compares a table, read with get, with want.
func countsEqual(get func(string) (any, error), want map[string]int64) (bool, string) {
	for key, n := range want {
		v, err := get(key)
		if err != nil {
			return false, err.Error()
		}
		got, _ := v.(int64)
		if got != n {
			return false, fmt.Sprintf("key %s: count %d, want %d", key, got, n)
		}
	}
	return true, ""
}

func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("key-%d", i)
	}
	return ks
}

// TestProcessorViewEmitter: an emitter feeds a counting processor; a view
// of its table sees the exact counts, headers reach the callback, and the
// processor's emits (with their headers) reach the output topic.
func TestProcessorViewEmitter(t *testing.T) {
	brokers := testBrokers(t)
	k := builders(t)
	c := &counting{group: goka.Group(name(t, "group")), inputs: []goka.Stream{goka.Stream(name(t, "in"))}, out: goka.Stream(name(t, "out"))}
	createTopics(t, brokers, 4, false, string(c.inputs[0]), string(c.out))
	createTopics(t, brokers, 4, true, string(goka.GroupTable(c.group)))

	r := start(t, brokers, k, c, storage.MemoryBuilder())
	want := map[string]int64{}
	const n = 400
	emit(t, brokers, k, c.inputs, keys(13), n, want)
	v := view(t, brokers, k, c.group)
	eventually(t, 30*time.Second, "view counts", func() (bool, string) { return countsEqual(v.Get, want) })
	eventually(t, 10*time.Second, "processor counts", func() (bool, string) { return countsEqual(r.p.Get, want) })
	if got := c.headers.Load(); got != n {
		t.Errorf("%d events carried the emitter's header, want %d", got, n)
	}

	// The output topic has one record per event, each with its key header.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(string(c.out)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := 0
	for seen < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("reading %s after %d records: %v", c.out, seen, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			seen++
			if len(rec.Headers) != 1 || rec.Headers[0].Key != "key" || string(rec.Headers[0].Value) != string(rec.Key) {
				t.Errorf("output record %s/%d: headers %v, want key=%s", rec.Topic, rec.Offset, rec.Headers, rec.Key)
			}
		})
	}
	if seen != n {
		t.Errorf("%d output records, want %d", seen, n)
	}
}

// TestRebalance: two processors of one group over two co-partitioned
// inputs; partitions move when the second joins and again when the first
// stops, each member always holds the same partition numbers of both
// inputs, and the counts are exact after each move.
func TestRebalance(t *testing.T) {
	brokers := testBrokers(t)
	k := builders(t)
	c := &counting{group: goka.Group(name(t, "group")), inputs: []goka.Stream{goka.Stream(name(t, "a")), goka.Stream(name(t, "b"))}, out: goka.Stream(name(t, "out"))}
	const parts = 4
	createTopics(t, brokers, parts, false, string(c.inputs[0]), string(c.inputs[1]), string(c.out))
	createTopics(t, brokers, parts, true, string(goka.GroupTable(c.group)))
	v := view(t, brokers, k, c.group)
	ks := keys(17)
	want := map[string]int64{}

	a := start(t, brokers, k, c, storage.MemoryBuilder())
	if got := len(a.last()); got != parts {
		t.Fatalf("the only member has %d partitions, want %d", got, parts)
	}
	emit(t, brokers, k, c.inputs, ks, 150, want)
	eventually(t, 30*time.Second, "counts with one member", func() (bool, string) { return countsEqual(v.Get, want) })

	b := start(t, brokers, k, c, storage.MemoryBuilder())
	eventually(t, 30*time.Second, "partitions split", func() (bool, string) {
		la, lb := a.last(), b.last()
		return len(la) == parts/2 && len(lb) == parts/2, fmt.Sprintf("a %v, b %v", la, lb)
	})
	for p := range a.last() {
		if _, ok := b.last()[p]; ok {
			t.Fatalf("partition %d assigned to both members: a %v, b %v", p, a.last(), b.last())
		}
	}
	emit(t, brokers, k, c.inputs, ks, 150, want)
	eventually(t, 30*time.Second, "counts with two members", func() (bool, string) { return countsEqual(v.Get, want) })

	a.stop(t)
	eventually(t, 30*time.Second, "partitions back on one member", func() (bool, string) {
		return len(b.last()) == parts, fmt.Sprintf("b %v", b.last())
	})
	emit(t, brokers, k, c.inputs, ks, 150, want)
	eventually(t, 30*time.Second, "counts after the first member left", func() (bool, string) { return countsEqual(v.Get, want) })
	// Nothing is replayed late: the counts stay exact.
	time.Sleep(time.Second)
	if ok, msg := countsEqual(v.Get, want); !ok {
		t.Fatalf("counts changed after settling: %s", msg)
	}
}

// TestTableRecovery: a processor restarted without local state recovers its
// table from the changelog before it processes, and counts on from there.
func TestTableRecovery(t *testing.T) {
	brokers := testBrokers(t)
	k := builders(t)
	c := &counting{group: goka.Group(name(t, "group")), inputs: []goka.Stream{goka.Stream(name(t, "in"))}, out: goka.Stream(name(t, "out"))}
	createTopics(t, brokers, 4, false, string(c.inputs[0]), string(c.out))
	createTopics(t, brokers, 4, true, string(goka.GroupTable(c.group)))
	ks := keys(11)
	want := map[string]int64{}

	first := start(t, brokers, k, c, storage.MemoryBuilder())
	emit(t, brokers, k, c.inputs, ks, 300, want)
	eventually(t, 30*time.Second, "counts before the restart", func() (bool, string) { return countsEqual(first.p.Get, want) })
	first.stop(t)

	// Fresh, empty storage: everything comes from the table's changelog.
	second := start(t, brokers, k, c, storage.MemoryBuilder())
	if ok, msg := countsEqual(second.p.Get, want); !ok {
		t.Fatalf("recovered table: %s", msg)
	}
	emit(t, brokers, k, c.inputs, ks, 300, want)
	eventually(t, 30*time.Second, "counts after the restart", func() (bool, string) { return countsEqual(second.p.Get, want) })
}

// TestProducerPromises: a promise completes with the broker's offset and
// partition and the record carries its headers; a record the broker refuses
// and one emitted after Close fail their promises.
func TestProducerPromises(t *testing.T) {
	brokers := testBrokers(t)
	k := builders(t)
	topic := name(t, "t")
	createTopics(t, brokers, 3, false, topic)
	p, err := k.Producer()(brokers, "kgoka-test", goka.DefaultHasher())
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		part   int32
		offset int64
		err    error
	}
	wait := func(pr *goka.Promise) result {
		ch := make(chan result, 1)
		pr.ThenWithMessage(func(msg *sarama.ProducerMessage, err error) {
			if msg == nil {
				ch <- result{err: err}
				return
			}
			ch <- result{msg.Partition, msg.Offset, err}
		})
		select {
		case r := <-ch:
			return r
		case <-time.After(2 * time.Minute):
			t.Fatal("promise never completed")
			return result{}
		}
	}
	var acked []result
	for i := range 5 {
		r := wait(p.EmitWithHeaders(topic, "k", []byte(fmt.Sprint(i)), goka.Headers{"h": []byte(fmt.Sprint("v", i))}))
		if r.err != nil {
			t.Fatal(r.err)
		}
		acked = append(acked, r)
	}
	// goka's hasher places "k"; every record of one key in one partition, in order.
	for i, r := range acked {
		if r.part != acked[0].part || r.offset != acked[0].offset+int64(i) {
			t.Fatalf("acks %+v: want one partition, consecutive offsets", acked)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {acked[0].part: kgo.NewOffset().At(acked[0].offset)}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for got := 0; got < len(acked); {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			i := int(rec.Offset - acked[0].offset)
			if string(rec.Value) != fmt.Sprint(i) || len(rec.Headers) != 1 || string(rec.Headers[0].Value) != fmt.Sprint("v", i) {
				t.Errorf("record at %d: value %q headers %v", rec.Offset, rec.Value, rec.Headers)
			}
			got++
		})
	}

	if r := wait(p.Emit("not a valid topic name!", "k", []byte("x"))); r.err == nil {
		t.Error("emit to an invalid topic: promise without error")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if r := wait(p.Emit(topic, "k", []byte("late"))); !errors.Is(r.err, kgo.ErrClientClosed) {
		t.Errorf("emit after Close: %v, want %v", r.err, kgo.ErrClientClosed)
	}
}

// TestFailedCallbackStopsProcessor: a callback that fails stops the
// processor with its error (the session ends as in sarama: its claim
// returns, Cleanup reports the failure, Consume returns it), and the failed
// record is not committed: the next processor of the group gets it again.
func TestFailedCallbackStopsProcessor(t *testing.T) {
	brokers := testBrokers(t)
	k := builders(t)
	in, group := goka.Stream(name(t, "in")), goka.Group(name(t, "group"))
	createTopics(t, brokers, 2, false, string(in))
	createTopics(t, brokers, 2, true, string(goka.GroupTable(group)))
	var poisonSeen atomic.Int64
	graph := func(fail bool) *goka.GroupGraph {
		return goka.DefineGroup(group, goka.Input(in, new(codec.Bytes), func(ctx goka.Context, _ any) {
			if ctx.Key() == "poison" {
				poisonSeen.Add(1)
				if fail {
					ctx.Fail(errors.New("poison record"))
				}
			}
			ctx.SetValue(int64(1))
		}), goka.Persist(new(codec.Int64)))
	}
	p, err := goka.NewProcessor(brokers, graph(true), processorOptions(k, storage.MemoryBuilder())...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	em, err := goka.NewEmitter(brokers, in, new(codec.Bytes), emitterOptions(k)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"a", "b", "poison", "c"} {
		if err := em.EmitSync(key, []byte(key)); err != nil {
			t.Fatal(err)
		}
	}
	if err := em.Finish(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "poison record") {
			t.Fatalf("processor stopped with %v, want the callback's error", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the processor did not stop after its callback failed")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p2, err := goka.NewProcessor(brokers, graph(false), processorOptions(k, storage.MemoryBuilder())...)
	if err != nil {
		t.Fatal(err)
	}
	done2 := make(chan error, 1)
	go func() { done2 <- p2.Run(ctx) }()
	eventually(t, 30*time.Second, "the poison record consumed again", func() (bool, string) {
		return poisonSeen.Load() >= 2, fmt.Sprintf("seen %d times", poisonSeen.Load())
	})
	cancel()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
}
