package kgoka

import (
	"context"
	"fmt"
	"hash"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// producer is goka.Producer on one kgo client. Every record is acknowledged
// by all in-sync replicas; the idempotent producer keeps a partition's
// records in order through retries (duplicate absorption in
// processors/pipeline relies on it).
type producer struct {
	cl *kgo.Client
}

func newProducer(b *Builders, brokers []string, clientID string, hasher func() hash.Hash32) (*producer, error) {
	part := b.opts.Partitioner
	if part == nil {
		part = hasherPartitioner(hasher)
	}
	cl, err := kgo.NewClient(b.clientOpts(brokers, clientID,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(b.opts.Linger),
		kgo.RecordDeliveryTimeout(b.opts.DeliveryTimeout),
		kgo.RecordPartitioner(part),
	)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka producer: %w", err)
	}
	return &producer{cl: cl}, nil
}

// hasherPartitioner places keyed records as sarama's hash partitioner did
// with goka's hasher.
func hasherPartitioner(hasher func() hash.Hash32) kgo.Partitioner {
	return kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(func(key []byte) uint32 {
		h := hasher()
		_, _ = h.Write(key)
		return h.Sum32()
	}))
}

// Emit implements goka.Producer.
func (p *producer) Emit(topic, key string, value []byte) *goka.Promise {
	return p.EmitWithHeaders(topic, key, value, nil)
}

// EmitWithHeaders implements goka.Producer. The promise completes once the
// broker acknowledged the record (with its partition and offset in the
// message goka's table writes read) or the record failed.
func (p *producer) EmitWithHeaders(topic, key string, value []byte, headers goka.Headers) *goka.Promise {
	promise, finish := goka.NewPromiseWithFinisher()
	rec := &kgo.Record{Topic: topic, Key: []byte(key), Value: value}
	if len(headers) > 0 {
		rec.Headers = make([]kgo.RecordHeader, 0, len(headers))
		for k, v := range headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: v})
		}
	}
	// Produce blocks only while the client buffers its maximum of records
	// (backpressure); after Close it fails the record at once.
	p.cl.Produce(context.Background(), rec, func(r *kgo.Record, err error) {
		if err != nil {
			finish(nil, fmt.Errorf("producing to %s: %w", topic, err))
			return
		}
		finish(producerMessage(r), nil)
	})
	return promise
}

// producerMessage is the acknowledged record as goka's promise callbacks
// read it: where it landed (goka's table writes and pipeline.State store
// msg.Offset). Key, value and headers are left out: no callback reads
// them, and boxing them cost four allocations per emit.
func producerMessage(r *kgo.Record) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: r.Topic, Offset: r.Offset, Partition: r.Partition, Timestamp: r.Timestamp}
}

// Close sends what is buffered (each record until it is acknowledged or its
// delivery timeout passes) and closes the client. Records emitted after
// Close fail with kgo.ErrClientClosed.
func (p *producer) Close() error {
	err := p.cl.Flush(context.Background())
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("flushing kafka producer: %w", err)
	}
	return nil
}
