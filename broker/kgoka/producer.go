package kgoka

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// producer is goka.Producer on one kgo client. Every record is acknowledged
// by all in-sync replicas; the idempotent producer keeps a partition's
// records in order through retries (duplicate absorption in
// processors/pipeline relies on it).
type producer struct {
	cl           *kgo.Client
	closeTimeout time.Duration
	// fence, if set, holds produce requests on the wire while the
	// processor's group membership lease is not valid, and refuses
	// records once it has tripped (fence.go).
	fence *Fence
}

func newProducer(b *Builders, brokers []string, clientID string, hasher func() hash.Hash32, fence *Fence) (*producer, error) {
	part := b.opts.Partitioner
	if part == nil {
		part = hasherPartitioner(hasher)
	}
	opts := b.clientOpts(brokers, clientID,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(b.opts.Linger),
		kgo.RecordDeliveryTimeout(b.opts.DeliveryTimeout),
		kgo.RecordPartitioner(part),
	)
	if fence != nil {
		var err error
		if opts, err = fencedDialer(opts, fence); err != nil {
			return nil, fmt.Errorf("creating kafka producer: %w", err)
		}
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka producer: %w", err)
	}
	return &producer{cl: cl, closeTimeout: b.opts.CloseTimeout, fence: fence}, nil
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
	if p.fence != nil {
		if err := p.fence.refuse(); err != nil {
			p.fence.refused("produce", 1)
			finish(nil, fmt.Errorf("producing to %s: %w", topic, err))
			return promise
		}
	}
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
			if p.fence != nil && errors.Is(err, kgo.ErrAborting) {
				if ferr := p.fence.refuse(); ferr != nil { // aborted because fenced
					p.fence.refused("aborted", 1)
					err = fmt.Errorf("%w (%w)", ferr, err)
				}
			}
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

// AbortBuffered fails every record not yet acknowledged with
// kgo.ErrAborting, at once, without waiting for the requests in flight (an
// unreachable broker answers none): for a shutdown that cannot wait for the
// broker (pipeline.State.Abort), followed by Close. A record in flight may
// still have been written; its source is replayed and absorbed as a
// duplicate.
func (p *producer) AbortBuffered() {
	p.cl.UnsafeAbortBufferedRecords()
}

// Close sends what is buffered, waiting at most Options.CloseTimeout for
// the acknowledgements, and closes the client: records still buffered then
// fail with kgo.ErrClientClosed, as do records emitted after Close.
func (p *producer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.closeTimeout)
	defer cancel()
	err := p.cl.Flush(ctx)
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("flushing kafka producer: %w", err)
	}
	return nil
}
