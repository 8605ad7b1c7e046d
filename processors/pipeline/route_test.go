package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

// crc32Partition is where librdkafka's default partitioner,
// consistent_random, puts a keyed record: CRC32 (IEEE) of the key modulo
// the partition count (rd_kafka_msg_partitioner_consistent).
func crc32Partition(key string, partitions int32) int32 {
	return int32(crc32.ChecksumIEEE([]byte(key)) % uint32(partitions))
}

// runRouted runs the counter group with a partition check, its input as an
// input-event topic (each record its own origin), as topologies wires a
// livefeed group.
func runRouted(ctx context.Context, t *testing.T, bc *broker.Config, group goka.Group, input goka.Stream, so StateOptions) error {
	c := &counter{}
	so.FlushInterval = 20 * time.Millisecond
	c.state = NewState[count](goka.GroupTable(group), countCodec{}, so)
	edges := []goka.Edge{
		goka.Input(input, new(codec.Bytes), c.state.EventInput(c.onEvent)),
		goka.Output(DLQ(input), new(codec.Bytes)),
		goka.Persist(countCodec{}),
	}
	edges = append(edges, RerouteOutputs(input)...)
	opts := append([]goka.ProcessorOption{goka.WithRebalanceCallback(c.state.Reset)},
		c.state.ProcessorOptions(bc.ProcessorStateDir(), bc.ProducerBuilder())...)
	p, err := goka.NewProcessor(bc.Brokers, goka.DefineGroup(group, edges...), bc.ProcessorOptions(opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { defer close(stopped); c.state.Run(stop) }()
	defer func() { close(stop); <-stopped }()
	return p.Run(ctx)
}

// routedUntilCommitted runs a routed replica with a fresh state dir until
// the group has committed total input offsets, then stops it.
func (r *counterRig) routedUntilCommitted(total int64, routing Routing, log *slog.Logger) {
	r.t.Helper()
	r.untilCommitted(total, func(ctx context.Context, bc *broker.Config) error {
		return runRouted(ctx, r.t, bc, r.group, r.input, StateOptions{Metrics: r.metrics, Routing: routing, Logger: log})
	})
}

// misroutedKeys are keys whose CRC32 partition differs from their murmur2
// one among 4 partitions, produced as librdkafka's default would.
func misroutedKeys(n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("k%02d", i)
		if crc32Partition(k, 4) != broker.PartitionOf(k, 4) {
			keys = append(keys, k)
		}
	}
	return keys
}

// produceMisrouted sends n records over keys, each to its key's CRC32
// partition (not its murmur2 one), and counts them as sent.
func (r *counterRig) produceMisrouted(n int, keys []string, headers ...kgo.RecordHeader) {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		k := keys[i%len(keys)]
		r.want[k]++
		rs[i] = &kgo.Record{Topic: string(r.input), Key: []byte(k), Value: []byte("x"),
			Partition: crc32Partition(k, 4), Headers: headers}
	}
	if err := cl.ProduceSync(r.ctx, rs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *counterRig) misrouted(action string) float64 {
	return testutil.ToFloat64(r.metrics.Misrouted.WithLabelValues(string(r.group), string(r.input), action))
}

// deadLetters reads the input's dead-letter topic: the reason header of
// each record, by key.
func (r *counterRig) deadLetters(want int) map[string][]string {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ConsumeTopics(string(DLQ(r.input))),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	got := map[string][]string{}
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	for n := 0; n < want; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			r.t.Fatalf("reading the dead letters after %d of %d: %v", n, want, err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			for _, h := range rec.Headers {
				if h.Key == HeaderReason {
					got[string(rec.Key)] = append(got[string(rec.Key)], string(h.Value))
				}
			}
		})
	}
	return got
}

// noOrphan checks that every key's count only grows along the changelog.
// An orphan — a second state a misrouted record would start in another
// partition — is written to the same table partition as the real state
// (table writes go through the murmur2 hasher), so its small count would
// appear between the real one's.
func (r *counterRig) noOrphan() {
	r.t.Helper()
	ends := r.endOffsets(r.table())
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ConsumeTopics(r.table()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	last := map[string]int64{}
	next := map[int32]int64{}
	for p, end := range ends {
		for next[p] < end {
			fs := cl.PollFetches(r.ctx)
			if err := fs.Err(); err != nil {
				r.t.Fatalf("reading the changelog: %v", err)
			}
			fs.EachRecord(func(rec *kgo.Record) {
				next[rec.Partition] = rec.Offset + 1
				var c count
				if err := json.Unmarshal(rec.Value, &c); err != nil {
					r.t.Fatalf("changelog value %q: %v", rec.Value, err)
				}
				k := string(rec.Key)
				if c.N < last[k] {
					r.t.Errorf("key %s: count %d after %d in the changelog: a second state", k, c.N, last[k])
				}
				last[k] = c.N
			})
		}
	}
}

// lockedBuffer is a log destination the processor writes while a test may
// read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newRoutedRig(t *testing.T, name string) *counterRig {
	r := newCounterRig(t, name)
	if _, err := broker.EnsureTopics(r.ctx, r.cl, 1, []broker.TopicSpec{{Name: string(DLQ(r.input)), Partitions: 4}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// Records produced with librdkafka's default partitioner (CRC32) land in
// partitions their keys do not map to. Each is re-routed to its key's
// partition and counted there, exactly once; none makes a second state.
// A replay of everything (commits rewound, a replica with no local state)
// re-routes the misrouted records again and the copies are absorbed:
// counts stay exact.
func TestMisroutedRecordsRerouted(t *testing.T) {
	r := newRoutedRig(t, "reroute")
	routing := Routing{Partitions: 4}
	r.produce(400, nil) // murmur2, as Kafka's default
	r.produceMisrouted(100, misroutedKeys(5))
	// The 100 misrouted records and their 100 re-routed copies.
	var logged lockedBuffer
	r.routedUntilCommitted(600, routing, slog.New(slog.NewTextHandler(&logged, nil)))
	r.exact()
	// One line for the 100 (at most one a minute), naming the cause.
	if lines := strings.Count(logged.String(), "misrouted record"); lines != 1 ||
		!strings.Contains(logged.String(), "consistent_random") || !strings.Contains(logged.String(), "partitioner=murmur2_random") {
		t.Errorf("%d log lines about misrouted records, want 1 naming the partitioner:\n%s", lines, logged.String())
	}
	if got := r.misrouted("reroute"); got != 100 {
		t.Errorf("%v records counted as re-routed, want 100", got)
	}
	if d := r.duplicates(); d != 0 {
		t.Errorf("%v duplicates absorbed without a replay", d)
	}
	r.noOrphan()

	r.rewind()
	// The replay: 400 + 100 (copies, absorbed by their origin) + 100
	// misrouted records re-routed again (absorbed in their partition).
	r.routedUntilCommitted(700, routing, nil)
	r.exact()
	if d := r.duplicates(); d != 600 {
		t.Errorf("%v duplicates absorbed, want 600 (400 replayed, 100 replayed copies, 100 copies re-routed again)", d)
	}
	if got := r.misrouted("reroute"); got != 200 {
		t.Errorf("%v records counted as re-routed after the replay, want 200", got)
	}
}

// With the dead-letter option a misrouted record goes to its topic's
// dead-letter topic with reason "misrouted" and changes no state; a
// re-routed record that arrives misrouted again (replicas disagreeing on
// the partitioning) is dead-lettered even when re-routing: no loop.
func TestMisroutedRecordsDeadLettered(t *testing.T) {
	r := newRoutedRig(t, "deadletter")
	r.produce(200, nil)
	keys := misroutedKeys(3)
	r.produceMisrouted(30, keys)
	for i := range 30 { // not counted: dead-lettered
		r.want[keys[i%len(keys)]]--
	}
	r.routedUntilCommitted(230, Routing{Partitions: 4, Misrouted: DeadLetterMisrouted}, nil)
	r.exact()
	if got := r.misrouted("dead_letter"); got != 30 {
		t.Errorf("%v records counted as dead-lettered, want 30", got)
	}
	if got := testutil.ToFloat64(r.metrics.DeadLetters.WithLabelValues(string(r.input), "misrouted")); got != 30 {
		t.Errorf("%v dead letters with reason misrouted, want 30", got)
	}

	// Re-routing on, a record already re-routed once arrives misrouted.
	r.produceMisrouted(6, keys, kgo.RecordHeader{Key: HeaderRerouted, Value: []byte(string(r.input) + "/0/1")})
	for i := range 6 {
		r.want[keys[i%len(keys)]]--
	}
	r.routedUntilCommitted(236, Routing{Partitions: 4}, nil)
	r.exact()
	if got := r.misrouted("reroute"); got != 0 {
		t.Errorf("%v re-routed records re-routed again", got)
	}
	if got := r.misrouted("dead_letter"); got != 36 {
		t.Errorf("%v records counted as dead-lettered, want 36", got)
	}
	letters := r.deadLetters(36)
	n := 0
	for k, reasons := range letters {
		for _, reason := range reasons {
			n++
			if reason != "misrouted" {
				t.Errorf("dead letter of %s: reason %q", k, reason)
			}
		}
	}
	if n != 36 {
		t.Errorf("%d dead letters, want 36", n)
	}
}

// Without a misrouted record nothing is diverted: the check costs one
// murmur2 of the key and allocates nothing.
func TestPartitionCheckAllocatesNothing(t *testing.T) {
	key := "ls-0123456789abcdef0123456789abcdef-long-key"
	p := broker.PartitionOf(key, 8)
	if allocs := testing.AllocsPerRun(1000, func() {
		if broker.PartitionOf(key, 8) != p {
			t.Fatal("unstable")
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per check", allocs)
	}
}
