package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Vectors from Apache Kafka's UtilsTest.testMurmur2.
func TestMurmur2MatchesKafka(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range cases {
		if got := int32(Murmur2([]byte(in))); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// PartitionOf (a string key, no copy) is Partition.
func TestPartitionOfIsPartition(t *testing.T) {
	for i := range 2000 {
		key := fmt.Sprintf("ls-%05d-%s", i, "abcdefghijklmnopqrstuvwxyz"[:i%27])
		for _, n := range []int32{1, 3, 8, 12} {
			if got, want := PartitionOf(key, n), Partition([]byte(key), n); got != want {
				t.Fatalf("key %s, %d partitions: PartitionOf %d, Partition %d", key, n, got, want)
			}
		}
	}
}

func TestHasherAgreesWithPartition(t *testing.T) {
	for i := range 2000 {
		key := []byte(fmt.Sprintf("ls-%05d", i))
		h := NewHasher()
		h.Write(key)
		// goka: abs(int32(sum)) % n
		g := int32(h.Sum32())
		if g < 0 {
			g = -g
		}
		for _, n := range []int32{1, 3, 8, 12} {
			if g%n != Partition(key, n) {
				t.Fatalf("key %s, %d partitions: goka hash → %d, kafka → %d", key, n, g%n, Partition(key, n))
			}
		}
	}
}

// A record produced by a plain franz-go client with default settings lands
// where Partition says, and a goka view with livefeed's options finds it under
// its key.
func TestPlainProducerRecordFoundByGokaView(t *testing.T) {
	brokers := testBrokers(t)
	cfg := &Config{Brokers: brokers, StateDir: t.TempDir()}
	cfg.Defaults()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(50*time.Millisecond)) // default partitioner
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	table := fmt.Sprintf("plain-%d-table", time.Now().UnixNano())
	if _, err := EnsureTopics(ctx, cl, 1, []TopicSpec{{Name: table, Partitions: 8, Compacted: true}}); err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		r := &kgo.Record{Topic: table, Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "value-%d", i)}
		res := cl.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		if got, want := res[0].Record.Partition, Partition(r.Key, 8); got != want {
			t.Fatalf("franz-go put %s on partition %d, Partition says %d", r.Key, got, want)
		}
	}

	var clients Clients
	defer clients.Close()
	view, err := goka.NewView(cfg.Brokers, goka.Table(table), new(codec.String), cfg.ViewOptions(&clients)...)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	for !view.Recovered() {
		select {
		case <-ctx.Done():
			t.Fatal("view did not recover")
		case <-time.After(20 * time.Millisecond):
		}
	}
	for i := range n {
		v, err := view.Get(fmt.Sprintf("key-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if v != fmt.Sprintf("value-%d", i) {
			t.Fatalf("view.Get(key-%d) = %v", i, v)
		}
	}
	cancel()
	<-done
}

func startEmbedded(t *testing.T) *Embedded {
	t.Helper()
	e, err := StartEmbedded("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}
