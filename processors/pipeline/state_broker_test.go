package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// counter is a goka group that counts events per key through a State.
type counter struct {
	state *State[count]
}

// count is a counter's table value; it records the offsets applied to it.
type count struct {
	N       int64            `json:"n"`
	Applied map[uint64]int64 `json:"applied,omitempty"`
}

func (c *count) AppliedOffsets() *map[uint64]int64 { return &c.Applied }

type countCodec struct{}

func (countCodec) Encode(v any) ([]byte, error) { return json.Marshal(v.(*count)) }

// appendCountCodec is countCodec with AppendEncode: the State encodes
// into buffers it recycles after the changelog acknowledges them.
type appendCountCodec struct{ countCodec }

func (appendCountCodec) AppendEncode(dst []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v.(*count))
	// Padding of varying length: buffers are reused for values longer and
	// shorter than their last one.
	return append(append(dst, b[:len(b)-1]...), []byte(`,"pad":"`+strings.Repeat("x", 200+len(dst)%97)+`"}`)...), err
}

func (countCodec) Decode(b []byte) (any, error) {
	var c count
	err := json.Unmarshal(b, &c)
	return &c, err
}

func (c *counter) onEvent(ctx goka.Context, _ any) {
	n := c.state.Get(ctx)
	if n == nil {
		n = new(count)
	}
	n.N++
	c.state.Set(ctx, n)
}

// run runs the counter group until ctx is done, wired as topologies.Run
// wires a group.
func runCounter(ctx context.Context, t *testing.T, bc *broker.Config, group goka.Group, input goka.Stream, so StateOptions, appendCodec bool) error {
	c := &counter{}
	so.FlushInterval = 20 * time.Millisecond
	var cd goka.Codec = countCodec{}
	if appendCodec {
		cd = appendCountCodec{}
	}
	c.state = NewState[count](goka.GroupTable(group), cd, so)
	g := goka.DefineGroup(group,
		goka.Input(input, new(codec.Bytes), c.state.Input(c.onEvent)),
		goka.Persist(countCodec{}))
	opts := append([]goka.ProcessorOption{goka.WithRebalanceCallback(c.state.Reset)},
		c.state.ProcessorOptions(bc.ProcessorStateDir(), bc.ProducerBuilder())...)
	p, err := goka.NewProcessor(bc.Brokers, g, bc.ProcessorOptions(opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { defer close(stopped); c.state.Run(stop) }()
	defer func() { close(stop); <-stopped }()
	return p.Run(ctx)
}

func testBrokers(t *testing.T) []string {
	if b := os.Getenv("LIVEFEED_TEST_BROKERS"); b != "" {
		return strings.Split(b, ",")
	}
	e, err := broker.StartEmbedded("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.Addrs()
}

// counterRig is a counter group on a broker: its input and table topics,
// a producer and what was sent.
type counterRig struct {
	t       *testing.T
	ctx     context.Context
	brokers []string
	group   goka.Group
	input   goka.Stream
	cl      *kgo.Client
	adm     *kadm.Client
	want    map[string]int64
	metrics *Metrics
	// maxQueued and maxDirty are the State's MaxQueuedBytes and MaxDirty
	// (0: the defaults); appendCodec encodes through AppendEncode.
	maxQueued   int64
	maxDirty    int
	appendCodec bool
}

func newCounterRig(t *testing.T, name string) *counterRig {
	brokers := testBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	r := &counterRig{t: t, ctx: ctx, brokers: brokers, group: goka.Group(name + "-" + run),
		input: goka.Stream(name + "-in-" + run), want: map[string]int64{}, metrics: NewMetrics(nil)}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	r.cl, r.adm = cl, kadm.NewClient(cl)
	if _, err := broker.EnsureTopics(ctx, r.cl, 1, []broker.TopicSpec{
		{Name: string(r.input), Partitions: 4}, {Name: r.table(), Partitions: 4, Compacted: true},
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *counterRig) table() string { return string(goka.GroupTable(r.group)) }

// produce sends n records over 20 keys; origin, if set, gives each record
// a HeaderOrigin (as a livefeed group's emit has).
func (r *counterRig) produce(n int, origin func(i int) string) {
	r.t.Helper()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		k := fmt.Sprintf("k%02d", i%20)
		r.want[k]++
		rs[i] = &kgo.Record{Topic: string(r.input), Key: []byte(k), Value: []byte("x")}
		if origin != nil {
			rs[i].Headers = []kgo.RecordHeader{{Key: HeaderOrigin, Value: []byte(origin(i))}}
		}
	}
	if err := r.cl.ProduceSync(r.ctx, rs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

// committed is the sum of the group's committed input offsets.
func (r *counterRig) committed() int64 {
	offs, err := r.adm.FetchOffsets(r.ctx, string(r.group))
	// A fresh broker answers COORDINATOR_NOT_AVAILABLE (retriable) while it
	// creates __consumer_offsets: nothing committed yet.
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) && !kerr.IsRetriable(err) {
		r.t.Fatal(err)
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) { n += o.At })
	return n
}

// processUntilCommitted runs a replica with its own (fresh) state dir
// until the group has committed total input offsets, then stops it.
func (r *counterRig) processUntilCommitted(total int64) {
	r.t.Helper()
	r.untilCommitted(total, func(ctx context.Context, bc *broker.Config) error {
		return runCounter(ctx, r.t, bc, r.group, r.input,
			StateOptions{Metrics: r.metrics, MaxQueuedBytes: r.maxQueued, MaxDirty: r.maxDirty}, r.appendCodec)
	})
}

// untilCommitted runs run (a replica with its own, fresh state dir) until
// the group has committed total input offsets, then stops it.
func (r *counterRig) untilCommitted(total int64, run func(context.Context, *broker.Config) error) {
	r.t.Helper()
	bc := &broker.Config{Brokers: r.brokers, StateDir: r.t.TempDir()}
	bc.Defaults()
	pctx, stop := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- run(pctx, bc) }()
	for {
		committed := r.committed()
		if committed == total {
			break
		}
		select {
		case err := <-done:
			r.t.Fatalf("processor stopped: %v (committed %d of %d)", err, committed, total)
		case <-r.ctx.Done():
			r.t.Fatalf("committed %d of %d input offsets", committed, total)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		r.t.Fatal(err)
	}
}

// rewind commits offset 0 on every input partition: the next replica
// replays everything (as after a crash that lost every commit).
func (r *counterRig) rewind() {
	r.t.Helper()
	offs := kadm.Offsets{}
	for p := range int32(4) {
		offs.Add(kadm.Offset{Topic: string(r.input), Partition: p, At: 0, LeaderEpoch: -1})
	}
	if err := r.adm.CommitAllOffsets(r.ctx, string(r.group), offs); err != nil {
		r.t.Fatal(err)
	}
}

// changelog reads the table topic: the last value per key, and how many
// records it holds. It reads every partition up to its end offset; a
// partition whose end offset the broker could not give (a fresh broker
// may answer NOT_LEADER or UNKNOWN_TOPIC for a moment) is asked again,
// so that no partition is cut short.
func (r *counterRig) changelog() (map[string]int64, int) {
	r.t.Helper()
	ends := r.endOffsets(r.table())
	cons, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ConsumeTopics(r.table()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]int64{}
	var records int
	next := map[int32]int64{} // per partition: the offset after the last record read
	done := func() bool {
		for p, end := range ends {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cons.PollFetches(r.ctx)
		if err := fs.Err(); err != nil {
			r.t.Fatalf("reading the changelog %s: %v", r.table(), err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			records++
			next[rec.Partition] = rec.Offset + 1
			var c count
			if err := json.Unmarshal(rec.Value, &c); err != nil {
				r.t.Fatalf("changelog value %q: %v", rec.Value, err)
			}
			got[string(rec.Key)] = c.N
		})
	}
	return got, records
}

// endOffsets lists every partition's end offset, retrying partitions the
// broker answered with an error.
func (r *counterRig) endOffsets(topic string) map[int32]int64 {
	r.t.Helper()
	for {
		listed, err := r.adm.ListEndOffsets(r.ctx, topic)
		ends, failed := map[int32]int64{}, error(nil)
		if err == nil {
			listed.Each(func(o kadm.ListedOffset) {
				if o.Err != nil {
					failed = fmt.Errorf("partition %d: %w", o.Partition, o.Err)
					return
				}
				ends[o.Partition] = o.Offset
			})
		}
		if err == nil && failed == nil && len(ends) == 4 {
			return ends
		}
		select {
		case <-r.ctx.Done():
			r.t.Fatalf("end offsets of %s: %v, %v, %d partitions", topic, err, failed, len(ends))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exact checks that the table's count of every key is what was sent.
func (r *counterRig) exact() int {
	r.t.Helper()
	got, records := r.changelog()
	for k, n := range r.want {
		if got[k] != n {
			r.t.Errorf("key %s: table says %d, %d events were sent", k, got[k], n)
		}
	}
	return records
}

func (r *counterRig) duplicates() float64 {
	return testutil.ToFloat64(r.metrics.Duplicates.WithLabelValues(string(r.group), string(r.input)))
}

// The write-behind state coalesces writes, loses nothing across a graceful
// stop, and a replica starting with no local state recovers exact counts
// from the changelog and the committed offsets.
func TestStateWriteBehindOnABroker(t *testing.T) {
	r := newCounterRig(t, "wb")
	r.produce(3000, nil)
	r.processUntilCommitted(3000)
	r.produce(2000, nil)
	r.processUntilCommitted(5000) // a new replica: no local state

	records := r.exact()
	// Coalescing: far fewer changelog records than events.
	if records >= 5000/2 {
		t.Errorf("%d changelog records for 5000 events: writes were not coalesced", records)
	}
	if d := r.duplicates(); d != 0 {
		t.Errorf("%v duplicates counted without a replay", d)
	}
	t.Logf("5000 events over 20 keys → %d changelog records", records)
}

// A replay of input records already in the table is absorbed: the group's
// commits are rewound to the start, a replica with no local state recovers
// the table from the changelog and skips every replayed record.
func TestStateAbsorbsReplayedInput(t *testing.T) {
	r := newCounterRig(t, "replay")
	r.produce(3000, nil)
	r.processUntilCommitted(3000)
	r.rewind()
	r.produce(1000, nil)
	r.processUntilCommitted(4000)
	r.exact()
	if d := r.duplicates(); d != 3000 {
		t.Errorf("%v duplicates absorbed, want the 3000 replayed records", d)
	}
}

// Records another group emitted carry their origin; one re-emitted by a
// replaying upstream replica (a new offset here, the same origin) is
// absorbed, a new origin is not.
func TestStateAbsorbsReEmittedRecords(t *testing.T) {
	r := newCounterRig(t, "reemit")
	// 20 keys; upstream partition i%3, its offsets in order per key.
	origin := func(i int) string { return fmt.Sprintf("upstream/%d/%d", i%3, 100+i) }
	r.produce(1200, origin)
	r.processUntilCommitted(1200)
	// The upstream replays its last 300 records: same origins, new offsets.
	var replay []*kgo.Record
	for i := 900; i < 1200; i++ {
		replay = append(replay, &kgo.Record{Topic: string(r.input), Key: []byte(fmt.Sprintf("k%02d", i%20)), Value: []byte("x"),
			Headers: []kgo.RecordHeader{{Key: HeaderOrigin, Value: []byte(origin(i))}}})
	}
	if err := r.cl.ProduceSync(r.ctx, replay...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.produce(600, func(i int) string { return origin(1200 + i) }) // then new records
	r.processUntilCommitted(2100)
	r.exact()
	if d := r.duplicates(); d != 300 {
		t.Errorf("%v duplicates absorbed, want the 300 re-emitted records", d)
	}
}

// A queue limit below one flush's size makes the callback after a flush
// wait for the changelog's acknowledgements (backpressure): processing
// goes on, nothing is lost, and the waits are counted. (A flush after every
// record, so that callbacks do meet a full queue.)
func TestStateBoundsItsWriteQueue(t *testing.T) {
	r := newCounterRig(t, "bounded")
	r.maxQueued, r.maxDirty = 1, 1
	r.produce(400, nil)
	r.processUntilCommitted(400)
	r.exact()
	if w := testutil.ToFloat64(r.metrics.StateWaits.WithLabelValues(r.table())); w == 0 {
		t.Error("no callback waited with a 1-byte queue limit")
	}
	if q := testutil.ToFloat64(r.metrics.StateQueued.WithLabelValues(r.table())); q != 0 {
		t.Errorf("%v bytes still queued after every commit", q)
	}
}

// With a codec that encodes into the State's recycled buffers, every
// changelog value still decodes and counts stay exact, also for a replica
// that recovers the table from the changelog alone.
func TestStateRecyclesEncodingBuffers(t *testing.T) {
	r := newCounterRig(t, "recycle")
	r.appendCodec = true
	r.produce(3000, nil)
	r.processUntilCommitted(3000)
	r.produce(2000, nil)
	r.processUntilCommitted(5000) // a new replica: no local state
	r.exact()
}
