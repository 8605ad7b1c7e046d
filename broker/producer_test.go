package broker

import (
	"math"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Every producer of the binary retries as Kafka's Java producer does by
// default: acks=all, idempotent, unlimited retries bounded by a 2-minute
// delivery timeout, long enough to outlast a crashed leader's fencing
// (broker.session.timeout.ms, 9 s) and a KRaft controller election. The
// franz-go clients take KgoOpts (goka's on broker/kgoka get the same
// timeout through Kgoka); sarama's, kept for the benchmark's goka floors,
// retries as long. TestBrokerFault (app) is the same on a real cluster.
func TestProducersRetryLikeKafka(t *testing.T) {
	cfg := &Config{Brokers: []string{"127.0.0.1:1"}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(cfg.KgoOpts(kgo.ProducerLinger(time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.OptValue(kgo.RecordDeliveryTimeout); got != 2*time.Minute {
		t.Errorf("franz-go delivery timeout %v, want 2m", got)
	}
	if got := cl.OptValue(kgo.RecordRetries); got != int64(math.MaxInt64) {
		t.Errorf("franz-go record retries %v, want unlimited (bounded by the delivery timeout)", got)
	}
	if got := cl.OptValue(kgo.RequiredAcks); got != kgo.AllISRAcks() {
		t.Errorf("franz-go acks %v, want all in-sync replicas", got)
	}
	if got := cl.OptValue(kgo.DisableIdempotentWrite); got != false {
		t.Errorf("franz-go idempotent writes disabled: %v", got)
	}

	sc := cfg.Sarama()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(sc.Producer.Retry.Max) * sc.Producer.Retry.Backoff; d < cfg.DeliveryTimeout {
		t.Errorf("sarama retries for %v (%d × %v), want at least %v", d, sc.Producer.Retry.Max, sc.Producer.Retry.Backoff, cfg.DeliveryTimeout)
	}
	if !sc.Producer.Idempotent || sc.Producer.RequiredAcks != sarama.WaitForAll {
		t.Errorf("sarama producer: idempotent %v, acks %v", sc.Producer.Idempotent, sc.Producer.RequiredAcks)
	}

	// Shorter than a fencing is refused, not silently used.
	short := &Config{Brokers: cfg.Brokers, DeliveryTimeout: 400 * time.Millisecond}
	short.Defaults()
	if err := short.Validate(); err == nil {
		t.Error("a 400ms delivery timeout was accepted")
	}
}
