package embedding

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const partitions = 4

type cluster struct {
	brokers []string
	cl      *kgo.Client
}

// startCluster starts an in-process kfake cluster with the worker's topics.
func startCluster(tb testing.TB) *cluster {
	tb.Helper()
	e, err := broker.StartEmbedded("127.0.0.1:0", "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...), kgo.RecordPartitioner(broker.Partitioner()),
		kgo.MetadataMinAge(50*time.Millisecond), kgo.ProducerLinger(0))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	var specs []broker.TopicSpec
	for _, name := range []string{"livestreams", "vectors", "embedding.dlq"} {
		specs = append(specs, broker.TopicSpec{Name: name, Partitions: partitions})
	}
	if _, err := broker.EnsureTopics(context.Background(), cl, 1, specs); err != nil {
		tb.Fatal(err)
	}
	return &cluster{brokers: e.Addrs(), cl: cl}
}

func (c *cluster) runWorker(tb testing.TB, emb models.Embedder, m *Metrics) {
	tb.Helper()
	w, err := New(Config{Brokers: c.brokers, Group: "embedding-" + emb.Version(), Input: "livestreams", Output: "vectors",
		DLQ: "embedding.dlq", Embedder: emb, Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan struct{})
	go func() { done <- w.Run(ctx, ready) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("worker: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		tb.Fatalf("worker stopped: %v", err)
	case <-time.After(30 * time.Second):
		tb.Fatal("worker not assigned after 30s")
	}
}

func (c *cluster) produceTitles(tb testing.TB, titles []string) {
	tb.Helper()
	recs := make([]*kgo.Record, len(titles))
	for i, title := range titles {
		id := fmt.Sprintf("ls-%d", i)
		v, _ := json.Marshal(events.Livestream{
			Header:   events.Header{EventID: fmt.Sprint("e", i), EventTime: t0.Add(time.Duration(i) * time.Millisecond), LivestreamID: id},
			SellerID: "s", Title: title, Category: "trading-cards", Language: "en", Status: events.StatusLive})
		recs[i] = &kgo.Record{Topic: "livestreams", Key: []byte(id), Value: v}
	}
	if err := c.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		tb.Fatal(err)
	}
}

// consume reads n records of topic from the start and returns them.
func (c *cluster) consume(tb testing.TB, topic string, n int) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("%d of %d records of %s after 2 minutes", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// Through Kafka: every title comes back as a vector on the partition of its
// stream (co-partitioned), and the offsets are committed after the vectors.
func TestWorkerOnKafka(t *testing.T) {
	c := startCluster(t)
	m := NewMetrics(prometheus.NewRegistry())
	emb := &counting{Embedder: testEmbedder(t)}
	c.runWorker(t, emb, m)
	titles := make([]string, 100)
	for i := range titles {
		titles[i] = fmt.Sprintf("pokemon booster box %d", i%25) // 25 distinct texts
	}
	c.produceTitles(t, titles)
	vecs := c.consume(t, "vectors", len(titles))
	for _, r := range vecs {
		var v events.LivestreamVector
		if err := events.Decode(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if want := broker.Partition(r.Key, partitions); r.Partition != want {
			t.Fatalf("vector of %s on partition %d, want %d", r.Key, r.Partition, want)
		}
	}
	if got := testutil.ToFloat64(m.CacheMisses); got != 25 {
		t.Errorf("%v distinct texts sent to the model, want 25", got)
	}
	// Offsets committed: the group's lag reaches 0.
	adm := kadm.NewClient(c.cl)
	deadline := time.Now().Add(30 * time.Second)
	for {
		lags, err := adm.Lag(context.Background(), "embedding-"+emb.Version())
		if err == nil {
			if total := lags["embedding-"+emb.Version()].Lag.Total(); total == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("offsets not committed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkWorkerThroughput: titles/s through the worker on kfake, from a
// backlog, with batching (32 / 20ms) and the cache; half of the titles
// repeat. Uses LIVEFEED_MODEL_DIR (the real model) if set.
//
//	LIVEFEED_MODEL_DIR=$(deploy/models/fetch.sh all-minilm-l6-v2) go test -run '^$' -bench WorkerThroughput -benchtime 1x ./processors/embedding/
func BenchmarkWorkerThroughput(b *testing.B) {
	var emb models.Embedder
	if dir := os.Getenv("LIVEFEED_MODEL_DIR"); dir != "" {
		e, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: dir,
			Backend: os.Getenv("LIVEFEED_EMBED_BACKEND"), ORTLibraryDir: os.Getenv("LIVEFEED_ORT_LIB_DIR")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = e.Close() })
		emb = e
	} else {
		emb = testEmbedder(b)
	}
	n := 512
	if s := os.Getenv("LIVEFEED_BENCH_TITLES"); s != "" {
		fmt.Sscan(s, &n)
	}
	for range b.N {
		c := startCluster(b)
		titles := make([]string, n)
		for i := range titles {
			titles[i] = fmt.Sprintf("%s lot %d", benchTitles[i%len(benchTitles)], i%(n/2)) // every text twice
		}
		c.produceTitles(b, titles)
		m := NewMetrics(prometheus.NewRegistry())
		start := time.Now()
		c.runWorker(b, emb, m)
		c.consume(b, "vectors", n)
		took := time.Since(start)
		b.ReportMetric(float64(n)/took.Seconds(), "titles/s")
		b.ReportMetric(testutil.ToFloat64(m.CacheHits)/float64(n), "cache-hit-ratio")
		b.ReportMetric(testutil.ToFloat64(m.Embedded)/took.Seconds(), "model-texts/s")
	}
	b.ReportMetric(0, "ns/op")
}

var benchTitles = []string{"Pokemon booster box break", "Vintage Jordan sneakers", "Rolex Submariner watches",
	"Marvel comics first edition", "Blue Note jazz vinyl", "Louis Vuitton handbags", "Morgan silver dollars", "LEGO Star Wars sets"}
