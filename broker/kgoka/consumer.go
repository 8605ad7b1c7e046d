package kgoka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type topicPartition struct {
	topic     string
	partition int32
}

// consumer is sarama.Consumer on one direct (group-less) kgo client: goka
// recovers tables and runs joins and views with it. Each ConsumePartition
// adds a partition to the client; one goroutine polls and hands each
// partition's records to its feed.
//
// Adding and removing partitions is exclusive with a poll and the handing
// out of its records (gate), so a record fetched for a partition consumer
// that was closed never reaches one opened later for the same partition at
// another offset: kgo drops buffered data when a partition is removed, and
// whatever a poll already returned is handed out before the change.
type consumer struct {
	cl    *kgo.Client
	log   *slog.Logger
	limit int

	gate sync.RWMutex // poll + hand-out (read) vs add/remove (write)

	mu         sync.Mutex
	parts      map[topicPartition]*partitionConsumer
	hwms       map[string]map[int32]int64
	cancelPoll context.CancelFunc
	writers    int

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	close1 sync.Once
}

func newConsumer(b *Builders, brokers []string, clientID string) (*consumer, error) {
	cl, err := kgo.NewClient(b.clientOpts(brokers, clientID,
		kgo.FetchMaxWait(b.opts.FetchMaxWait),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka consumer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{
		cl: cl, log: b.opts.Logger.With("component", "kgoka-consumer", "client_id", clientID),
		limit: b.opts.QueueRecords,
		parts: make(map[topicPartition]*partitionConsumer),
		hwms:  make(map[string]map[int32]int64),
		ctx:   ctx, cancel: cancel, done: make(chan struct{}),
	}
	go c.run()
	return c, nil
}

func (c *consumer) run() {
	defer close(c.done)
	for {
		c.gate.RLock()
		c.mu.Lock()
		pollCtx, cancel := context.WithCancel(c.ctx)
		if c.writers > 0 {
			cancel()
		}
		c.cancelPoll = cancel
		c.mu.Unlock()
		var fetches kgo.Fetches
		if pollCtx.Err() == nil {
			fetches = c.cl.PollFetches(pollCtx)
		}
		cancel()
		if c.ctx.Err() != nil || fetches.IsClientClosed() {
			c.gate.RUnlock()
			return
		}
		c.handOut(fetches)
		c.gate.RUnlock()
	}
}

// handOut gives each partition's records to its feed; gate held (read).
func (c *consumer) handOut(fetches kgo.Fetches) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Partition < 0 { // injected: poll interrupted
			return
		}
		c.mu.Lock()
		pc := c.parts[topicPartition{p.Topic, p.Partition}]
		if p.Err == nil {
			hw := c.hwms[p.Topic]
			if hw == nil {
				hw = make(map[int32]int64)
				c.hwms[p.Topic] = hw
			}
			hw[p.Partition] = p.HighWatermark
		}
		c.mu.Unlock()
		if pc == nil {
			return
		}
		if p.Err != nil {
			var loss *kgo.ErrDataLoss
			if errors.As(p.Err, &loss) {
				c.log.Warn("kafka: offset out of range, consuming from the log start", "topic", p.Topic, "partition", p.Partition, "err", p.Err)
			} else if !errors.Is(p.Err, context.Canceled) {
				pc.fail(p.Err)
			}
		}
		pc.feed.push(p.Records, p.HighWatermark)
	})
}

// exclusive runs fn with no poll running and no records being handed out.
func (c *consumer) exclusive(fn func()) {
	c.mu.Lock()
	c.writers++
	if c.cancelPoll != nil {
		c.cancelPoll()
	}
	c.mu.Unlock()
	c.gate.Lock()
	fn()
	c.gate.Unlock()
	c.mu.Lock()
	c.writers--
	c.mu.Unlock()
}

// Topics lists the cluster's topics.
func (c *consumer) Topics() ([]string, error) {
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	details, err := kadm.NewClient(c.cl).ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	return details.Names(), nil
}

// Partitions lists the partitions of topic.
func (c *consumer) Partitions(topic string) ([]int32, error) {
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	details, err := kadm.NewClient(c.cl).ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok {
		return nil, errTopicNotFound
	}
	if d.Err != nil {
		return nil, fmt.Errorf("listing topic %s: %w", topic, d.Err)
	}
	return d.Partitions.Numbers(), nil
}

// ConsumePartition starts consuming topic/partition at offset (an offset,
// sarama.OffsetOldest or sarama.OffsetNewest). An offset the log no longer
// has starts at the log's start.
func (c *consumer) ConsumePartition(topic string, partition int32, offset int64) (sarama.PartitionConsumer, error) {
	var at kgo.Offset
	switch offset {
	case sarama.OffsetOldest:
		at = kgo.NewOffset().AtStart()
	case sarama.OffsetNewest:
		at = kgo.NewOffset().AtEnd()
	default:
		if offset < 0 {
			return nil, fmt.Errorf("consuming %s/%d: invalid offset %d", topic, partition, offset)
		}
		at = kgo.NewOffset().At(offset)
	}
	tp := topicPartition{topic, partition}
	pc := &partitionConsumer{c: c, tp: tp, feed: newFeed(c.cl, topic, partition, c.limit), errs: make(chan *sarama.ConsumerError, 16)}
	var err error
	c.exclusive(func() {
		if c.ctx.Err() != nil {
			err = fmt.Errorf("consuming %s/%d: consumer closed", topic, partition)
			return
		}
		if _, ok := c.parts[tp]; ok {
			err = fmt.Errorf("consuming %s/%d: already consumed", topic, partition)
			return
		}
		c.mu.Lock()
		c.parts[tp] = pc
		c.mu.Unlock()
		c.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: at}})
	})
	if err != nil {
		return nil, err
	}
	go pc.feed.run()
	return pc, nil
}

// HighWaterMarks are the high watermarks of the partitions fetched so far.
func (c *consumer) HighWaterMarks() map[string]map[int32]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[int32]int64, len(c.hwms))
	for t, ps := range c.hwms {
		m := make(map[int32]int64, len(ps))
		for p, o := range ps {
			m[p] = o
		}
		out[t] = m
	}
	return out
}

func (c *consumer) each(tps map[string][]int32, fn func(*partitionConsumer)) {
	c.mu.Lock()
	var pcs []*partitionConsumer
	for tp, pc := range c.parts {
		if tps == nil {
			pcs = append(pcs, pc)
			continue
		}
		for _, p := range tps[tp.topic] {
			if p == tp.partition {
				pcs = append(pcs, pc)
			}
		}
	}
	c.mu.Unlock()
	for _, pc := range pcs {
		fn(pc)
	}
}

// Pause stops fetching the given partitions until Resume.
func (c *consumer) Pause(tps map[string][]int32) {
	c.each(tps, func(pc *partitionConsumer) { pc.Pause() })
}

// Resume resumes the given partitions.
func (c *consumer) Resume(tps map[string][]int32) {
	c.each(tps, func(pc *partitionConsumer) { pc.Resume() })
}

// PauseAll pauses every partition.
func (c *consumer) PauseAll() { c.each(nil, func(pc *partitionConsumer) { pc.Pause() }) }

// ResumeAll resumes every partition.
func (c *consumer) ResumeAll() { c.each(nil, func(pc *partitionConsumer) { pc.Resume() }) }

// Close closes the partition consumers still open and the client.
func (c *consumer) Close() error {
	c.close1.Do(func() {
		c.each(nil, func(pc *partitionConsumer) { pc.AsyncClose() })
		c.cancel()
		c.cl.Close()
		<-c.done
		c.each(nil, func(pc *partitionConsumer) { pc.AsyncClose() }) // opened while closing
	})
	return nil
}

// partitionConsumer is sarama.PartitionConsumer on a consumer's client.
type partitionConsumer struct {
	c     *consumer
	tp    topicPartition
	feed  *feed
	errs  chan *sarama.ConsumerError
	once  sync.Once
	errMu sync.Mutex // fail vs closing errs
	shut  bool
}

func (pc *partitionConsumer) fail(err error) {
	pc.errMu.Lock()
	defer pc.errMu.Unlock()
	if pc.shut {
		return
	}
	select {
	case pc.errs <- &sarama.ConsumerError{Topic: pc.tp.topic, Partition: pc.tp.partition, Err: err}:
	default:
		pc.c.log.Warn("kafka: dropped a partition consumer error (nobody reads them)", "topic", pc.tp.topic, "partition", pc.tp.partition, "err", err)
	}
}

// AsyncClose stops consuming the partition; Messages and Errors close
// once the partition is removed from the client.
func (pc *partitionConsumer) AsyncClose() {
	pc.once.Do(func() {
		c := pc.c
		c.exclusive(func() {
			c.mu.Lock()
			if c.parts[pc.tp] == pc {
				delete(c.parts, pc.tp)
			}
			c.mu.Unlock()
			c.cl.RemoveConsumePartitions(map[string][]int32{pc.tp.topic: {pc.tp.partition}})
		})
		pc.feed.close()
		pc.errMu.Lock()
		pc.shut = true
		close(pc.errs)
		pc.errMu.Unlock()
	})
}

// Close closes the partition consumer and returns the errors it had not
// delivered.
func (pc *partitionConsumer) Close() error {
	pc.AsyncClose()
	var errs sarama.ConsumerErrors
	for e := range pc.errs {
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (pc *partitionConsumer) Messages() <-chan *sarama.ConsumerMessage { return pc.feed.msgs }
func (pc *partitionConsumer) Errors() <-chan *sarama.ConsumerError     { return pc.errs }
func (pc *partitionConsumer) HighWaterMarkOffset() int64               { return pc.feed.hwm.Load() }
func (pc *partitionConsumer) Pause()                                   { pc.feed.hold(true) }
func (pc *partitionConsumer) Resume()                                  { pc.feed.hold(false) }
func (pc *partitionConsumer) IsPaused() bool                           { return pc.feed.isHeld() }
