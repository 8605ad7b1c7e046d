package embedding

import (
	"context"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// The worker's client takes the deployment's security options
// (ClientOptions, which topologies fills from broker.Config.KgoOpts): on a
// cluster that requires SASL it consumes and produces.
func TestWorkerOnSASLCluster(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", "worker", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	auth := kgo.SASL(plain.Auth{User: "worker", Pass: "s3cret"}.AsMechanism())
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), auth, kgo.RecordPartitioner(broker.Partitioner()),
		kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var specs []broker.TopicSpec
	for _, name := range []string{"livestreams", "vectors", "embedding.dlq"} {
		specs = append(specs, broker.TopicSpec{Name: name, Partitions: partitions})
	}
	if _, err := broker.EnsureTopics(context.Background(), cl, 1, specs); err != nil {
		t.Fatal(err)
	}
	cls := &cluster{brokers: c.ListenAddrs(), cl: cl}
	emb := testEmbedder(t)
	w, err := New(Config{Brokers: cls.brokers, Group: "embedding-sasl", Input: "livestreams", Output: "vectors",
		DLQ: "embedding.dlq", Embedder: emb, Metrics: NewMetrics(prometheus.NewRegistry()), ClientOptions: []kgo.Opt{auth}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	cls.produceTitles(t, []string{"pokemon booster box", "vintage sneakers"})
	// consume with SASL too
	rd, err := kgo.NewClient(kgo.SeedBrokers(cls.brokers...), auth, kgo.ConsumeTopics("vectors"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
	defer pcancel()
	got := 0
	for got < 2 && pctx.Err() == nil {
		got += len(rd.PollFetches(pctx).Records())
	}
	if got != 2 {
		t.Fatalf("%d vectors on the SASL cluster, want 2", got)
	}
}
