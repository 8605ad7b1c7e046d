package kgoka_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/broker/kgoka"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testBrokers is the real-Kafka tier's broker (LIVEFEED_TEST_BROKERS) or a
// fresh embedded kfake cluster.
func testBrokers(t *testing.T) []string {
	t.Helper()
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

// name is a topic or group name unique to this run (real Kafka keeps them).
func name(t *testing.T, what string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "kgoka-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + what + "-" + hex.EncodeToString(b)
}

func builders(t *testing.T) *kgoka.Builders {
	t.Helper()
	// Short group timings so rebalances in the tests are quick; Kafka
	// accepts sessions of 6s and more by default. No periodic commits: the
	// offsets a test's processors consumed are committed only when their
	// partitions are revoked or they stop, so exact counts after a
	// partition moved show that those commits happen.
	return kgoka.New(kgoka.Options{SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond, CommitInterval: time.Hour})
}

func admin(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopics(t *testing.T, brokers []string, partitions int32, compacted bool, topics ...string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	specs := make([]broker.TopicSpec, len(topics))
	for i, tp := range topics {
		specs[i] = broker.TopicSpec{Name: tp, Partitions: partitions, Compacted: compacted}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := broker.EnsureTopics(ctx, cl, 1, specs); err != nil {
		t.Fatal(err)
	}
}

func processorOptions(k *kgoka.Builders, st storage.Builder, extra ...goka.ProcessorOption) []goka.ProcessorOption {
	return append([]goka.ProcessorOption{
		goka.WithProducerBuilder(k.Producer()),
		goka.WithConsumerGroupBuilder(k.ConsumerGroup()),
		goka.WithConsumerSaramaBuilder(k.Consumer()),
		goka.WithTopicManagerBuilder(k.TopicManager()),
		goka.WithStorageBuilder(st),
	}, extra...)
}

func viewOptions(k *kgoka.Builders) []goka.ViewOption {
	return []goka.ViewOption{
		goka.WithViewConsumerSaramaBuilder(k.Consumer()),
		goka.WithViewTopicManagerBuilder(k.TopicManager()),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
	}
}

func emitterOptions(k *kgoka.Builders) []goka.EmitterOption {
	return []goka.EmitterOption{
		goka.WithEmitterProducerBuilder(k.Producer()),
		goka.WithEmitterTopicManagerBuilder(k.TopicManager()),
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %s", what, d, last)
}

func kgokaWithQueue(t *testing.T, records int) *kgoka.Builders {
	t.Helper()
	return kgoka.New(kgoka.Options{SessionTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond, QueueRecords: records})
}

// feeder produces an input to its topic every interval (key and value the
// input's sequence number) until Stop, counting the acknowledged ones.
type feeder struct {
	sent atomic.Int64
	stop context.CancelFunc
	done chan struct{}
}

func feed(t *testing.T, brokers []string, topic goka.Stream, every time.Duration) *feeder {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(string(topic)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, stop := context.WithCancel(context.Background())
	f := &feeder{stop: stop, done: make(chan struct{})}
	t.Cleanup(func() { f.Stop() })
	go func() {
		defer close(f.done)
		for i := 0; ctx.Err() == nil; i++ {
			v := strconv.Itoa(i)
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err == nil {
				f.sent.Add(1)
			}
			time.Sleep(every)
		}
	}()
	return f
}

// Stop stops feeding and returns how many inputs were acknowledged.
func (f *feeder) Stop() int64 {
	f.stop()
	<-f.done
	return f.sent.Load()
}
