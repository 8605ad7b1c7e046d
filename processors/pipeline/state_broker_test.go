package pipeline

import (
	"context"
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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// counter is a goka group that counts events per key through a State.
type counter struct {
	state *State[int64]
}

type int64Codec struct{}

func (int64Codec) Encode(v any) ([]byte, error) {
	return strconv.AppendInt(nil, *v.(*int64), 10), nil
}

func (int64Codec) Decode(b []byte) (any, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	return &n, err
}

func (c *counter) onEvent(ctx goka.Context, _ any) {
	n := c.state.Get(ctx)
	if n == nil {
		n = new(int64)
	}
	*n++
	c.state.Set(ctx, n)
}

// run runs the counter group until ctx is done, wired as topologies.Run
// wires a group.
func runCounter(ctx context.Context, t *testing.T, bc *broker.Config, group goka.Group, input goka.Stream) error {
	c := &counter{}
	c.state = NewState[int64](goka.GroupTable(group), int64Codec{}, StateOptions{FlushInterval: 20 * time.Millisecond})
	g := goka.DefineGroup(group,
		goka.Input(input, new(codec.Bytes), c.state.Input(c.onEvent)),
		goka.Persist(int64Codec{}))
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

// The write-behind state coalesces writes, loses nothing across a graceful
// stop, and a replica starting with no local state recovers exact counts
// from the changelog and the committed offsets.
func TestStateWriteBehindOnABroker(t *testing.T) {
	brokers := testBrokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	group, input := goka.Group("wb-"+run), goka.Stream("wb-in-"+run)
	table := string(goka.GroupTable(group))
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := broker.EnsureTopics(ctx, adm, 1, []broker.TopicSpec{
		{Name: string(input), Partitions: 4}, {Name: table, Partitions: 4, Compacted: true},
	}); err != nil {
		t.Fatal(err)
	}
	const keys = 20
	want := map[string]int64{}
	produce := func(n int) {
		t.Helper()
		rs := make([]*kgo.Record, n)
		for i := range rs {
			k := fmt.Sprintf("k%02d", i%keys)
			want[k]++
			rs[i] = &kgo.Record{Topic: string(input), Key: []byte(k), Value: []byte("x")}
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// processUntilCommitted runs a replica with its own (fresh) state dir
	// until the group has committed every input offset, then stops it.
	processUntilCommitted := func(total int64) {
		t.Helper()
		bc := &broker.Config{Brokers: brokers, StateDir: t.TempDir()}
		bc.Defaults()
		pctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- runCounter(pctx, t, bc, group, input) }()
		for {
			offs, err := adm.FetchOffsets(ctx, string(group))
			if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
				t.Fatal(err)
			}
			var committed int64
			offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
			if committed == total {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("processor stopped: %v (committed %d of %d)", err, committed, total)
			case <-ctx.Done():
				t.Fatalf("committed %d of %d input offsets", committed, total)
			case <-time.After(50 * time.Millisecond):
			}
		}
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	produce(3000)
	processUntilCommitted(3000)
	produce(2000)
	processUntilCommitted(5000) // a new replica: no local state

	// The changelog's last value per key is the exact count.
	got := map[string]int64{}
	var records int
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(table),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ends, err := adm.ListEndOffsets(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	for int64(records) < end {
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			records++
			n, _ := strconv.ParseInt(string(r.Value), 10, 64)
			got[string(r.Key)] = n
		})
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("key %s: table says %d, %d events were sent", k, got[k], n)
		}
	}
	// Coalescing: far fewer changelog records than events.
	if records >= 5000/2 {
		t.Errorf("%d changelog records for 5000 events: writes were not coalesced", records)
	}
	t.Logf("5000 events over %d keys → %d changelog records", keys, records)
}
