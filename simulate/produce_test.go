package simulate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/livefeed/livefeed/events"
)

const testPrefix = "test."

func prefixed(prefix string) []string {
	var ts []string
	for _, t := range events.InputTopics() {
		ts = append(ts, prefix+t)
	}
	return ts
}

// cluster starts an in-process Kafka with the prefixed input topics.
func cluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func client(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// fakeClock advances by step at every call.
func fakeClock(step time.Duration) func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(step)
		return now
	}
}

// TestProduce produces 5000 events to kfake and consumes them back: every
// record arrives once, in its generation order per key, on the same partition
// in all four topics (co-partitioning by livestream_id).
func TestProduce(t *testing.T) {
	const n = 5000
	c := cluster(t, 8, prefixed(testPrefix)...)
	cfg := Config{Seed: 21}
	st, err := Produce(context.Background(), client(t, c), newGen(t, cfg),
		ProduceOptions{Limit: n, TopicPrefix: testPrefix, Clock: fakeClock(5 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if st.Generated != n || st.Acked() != n || st.Errors != 0 || st.Unacked != 0 || st.Bad != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%+v, %.0f events/s", st, st.Rate())

	// The expected records: the same generator with the same clock.
	want := map[string]int{}
	wantSeq := map[string][]string{} // key → values in generation order
	g := newGen(t, cfg)
	clock := fakeClock(5 * time.Millisecond)
	perTopic := map[string]int64{}
	for range n {
		r := g.Next(clock())
		want[r.Topic+"|"+string(r.Value)]++
		wantSeq[r.Key] = append(wantSeq[r.Key], r.Topic+"|"+string(r.Value))
		perTopic[r.Topic]++
	}
	for _, topic := range events.InputTopics() {
		if st.Produced[topic] != perTopic[topic] {
			t.Fatalf("topic %s: produced %d, want %d", topic, st.Produced[topic], perTopic[topic])
		}
	}

	cons := client(t, c, kgo.ConsumeTopics(prefixed(testPrefix)...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	partition := map[string]int32{}   // key → partition
	got := map[string][]*kgo.Record{} // topic/partition → records
	seen := 0
	for seen < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", seen, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			topic := r.Topic[len(testPrefix):]
			d, err := decode(Record{Topic: topic, Key: string(r.Key), Value: r.Value})
			if err != nil {
				t.Fatalf("%s: %v", r.Value, err)
			}
			if !r.Timestamp.Equal(d.hdr.EventTime) {
				t.Fatalf("record timestamp %v, event time %v", r.Timestamp, d.hdr.EventTime)
			}
			if p, ok := partition[string(r.Key)]; ok && p != r.Partition {
				t.Fatalf("key %s on partitions %d and %d", r.Key, p, r.Partition)
			}
			partition[string(r.Key)] = r.Partition
			k := topic + "|" + string(r.Value)
			if want[k] == 0 {
				t.Fatalf("unexpected or duplicate record %s", k)
			}
			want[k]--
			tp := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			got[tp] = append(got[tp], r)
		})
	}
	used := map[int32]bool{}
	for _, p := range partition {
		used[p] = true
	}
	if len(used) < 6 {
		t.Fatalf("%d streams use only %d of 8 partitions", len(partition), len(used))
	}
	// Per key, the records of each topic arrive in generation order.
	for key, seq := range wantSeq {
		for _, topic := range events.InputTopics() {
			var w []string
			for _, v := range seq {
				if v[:len(topic)+1] == topic+"|" {
					w = append(w, v)
				}
			}
			var g []string
			for _, r := range got[fmt.Sprintf("%s%s/%d", testPrefix, topic, partition[key])] {
				if string(r.Key) == key {
					g = append(g, topic+"|"+string(r.Value))
				}
			}
			if fmt.Sprint(w) != fmt.Sprint(g) {
				t.Fatalf("key %s topic %s: order differs", key, topic)
			}
		}
	}
}

func TestProduceRate(t *testing.T) {
	c := cluster(t, 2, prefixed("")...)
	const rate, n = 2000.0, 600
	start := time.Now()
	st, err := Produce(context.Background(), client(t, c), newGen(t, Config{Seed: 22}), ProduceOptions{Rate: rate, Limit: n})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if st.Acked() != n {
		t.Fatalf("stats %+v", st)
	}
	// 600 events at 2000/s take 0.3s (less the first token).
	if min := time.Duration((n - 1) / rate * float64(time.Second)); took < min*9/10 {
		t.Fatalf("%d events at %v/s took %v, want at least %v", n, rate, took, min)
	}
	t.Logf("%d events at %v/s in %v", n, rate, took)
}

func TestProduceStopsWithContext(t *testing.T) {
	c := cluster(t, 4, prefixed("p.")...)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	st, err := Produce(ctx, client(t, c), newGen(t, Config{Seed: 23, BadFraction: 0.05}),
		ProduceOptions{TopicPrefix: "p."})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stopped after %v", took)
	}
	if st.Generated == 0 || st.Acked() != st.Generated || st.Errors != 0 || st.Unacked != 0 || st.Bad == 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("unthrottled for 300ms: %d events, %.0f events/s", st.Generated, st.Rate())
}

func TestProduceErrors(t *testing.T) {
	c := cluster(t, 1) // no topics, no auto-creation
	cl := client(t, c, kgo.UnknownTopicRetries(1), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	st, err := Produce(context.Background(), cl, newGen(t, Config{Seed: 24}), ProduceOptions{Limit: 100})
	if err == nil || !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("err = %v", err)
	}
	if st.Errors != 100 || st.Acked() != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Log(err)

	for _, opt := range []ProduceOptions{{Rate: -1}, {Limit: -1}} {
		if _, err := Produce(context.Background(), cl, newGen(t, Config{}), opt); err == nil {
			t.Fatalf("%+v accepted", opt)
		}
	}
	if _, err := Produce(context.Background(), nil, newGen(t, Config{}), ProduceOptions{}); err == nil {
		t.Fatal("nil client accepted")
	}
}

// BenchmarkProduce measures Produce unthrottled against kfake (in-process,
// one broker, 8 partitions per topic) with franz-go's default producer
// settings.
func BenchmarkProduce(b *testing.B) {
	c := cluster(b, 8, prefixed("")...)
	cl := client(b, c)
	cfg := Config{Seed: 1}
	g := newGen(b, cfg)
	b.ResetTimer()
	st, err := Produce(context.Background(), cl, g, ProduceOptions{Limit: b.N})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Acked())/b.Elapsed().Seconds(), "events/s")
}
