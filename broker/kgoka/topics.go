package kgoka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// errTopicNotFound is what Partitions returns for a topic that does not
// exist (goka's own sentinel is unexported; it only logs the error).
var errTopicNotFound = errors.New("requested topic was not found")

// requestTimeout bounds each admin request of the topic manager.
const requestTimeout = 30 * time.Second

// topicManager is goka.TopicManager on kadm.
type topicManager struct {
	cl              *kgo.Client
	adm             *kadm.Client
	replication     int16
	streamRetention time.Duration
}

func newTopicManager(b *Builders, brokers []string) (*topicManager, error) {
	cl, err := kgo.NewClient(b.clientOpts(brokers, "")...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka admin client: %w", err)
	}
	return &topicManager{cl: cl, adm: kadm.NewClient(cl), replication: b.opts.Replication, streamRetention: b.opts.StreamRetention}, nil
}

func (m *topicManager) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), requestTimeout)
}

// EnsureTableExists creates a compacted topic unless it exists.
func (m *topicManager) EnsureTableExists(topic string, npar int) error {
	return m.EnsureTopicExists(topic, npar, int(m.replication), map[string]string{"cleanup.policy": "compact"})
}

// EnsureStreamExists creates a topic with time retention unless it exists.
func (m *topicManager) EnsureStreamExists(topic string, npar int) error {
	return m.EnsureTopicExists(topic, npar, int(m.replication), map[string]string{
		"cleanup.policy": "delete",
		"retention.ms":   strconv.FormatInt(m.streamRetention.Milliseconds(), 10),
	})
}

// EnsureTopicExists creates topic unless it exists; an existing topic must
// have npar partitions (goka's co-partitioning depends on it). The config
// of an existing topic is not compared (goka's default, "ignore").
func (m *topicManager) EnsureTopicExists(topic string, npar, rfactor int, config map[string]string) error {
	parts, err := m.Partitions(topic)
	switch {
	case err == nil:
		if len(parts) != npar {
			return fmt.Errorf("topic %s has %d partitions, goka needs %d", topic, len(parts), npar)
		}
		return nil
	case !errors.Is(err, errTopicNotFound):
		return err
	}
	cfg := make(map[string]*string, len(config))
	for k, v := range config {
		cfg[k] = kadm.StringPtr(v)
	}
	ctx, cancel := m.ctx()
	defer cancel()
	if _, err := m.adm.CreateTopic(ctx, int32(npar), int16(rfactor), cfg, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s (%d partitions, replication %d): %w", topic, npar, rfactor, err)
	}
	// Wait until the metadata lists the topic with a leader per partition.
	for {
		parts, err := m.Partitions(topic)
		if err == nil && len(parts) == npar {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for topic %s to be created: %w", topic, errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retry calls fn until it succeeds, fails with an error Kafka does not
// call retriable, or ctx ends. A topic created a moment ago answers
// LEADER_NOT_AVAILABLE or NOT_LEADER_FOR_PARTITION until its leaders are
// elected (sarama's client retried these too).
func retry[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	wait := 50 * time.Millisecond
	for {
		v, err := fn()
		if err == nil || !retriable(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// retriable: Kafka calls err retriable, or it is the transport's (a
// refused dial, a closed connection). A crashed broker's partitions have no
// reachable leader until the controller moves their leadership, seconds
// later; goka's Setup (table recovery) asks for their offsets meanwhile,
// and an error there stops the processor.
func retriable(err error) bool {
	var op *net.OpError
	return kerr.IsRetriable(err) || kgo.IsRetryableBrokerErr(err) || errors.As(err, &op) || errors.Is(err, io.EOF)
}

// Partitions lists the partitions of topic, sorted.
func (m *topicManager) Partitions(topic string) ([]int32, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	return retry(ctx, func() ([]int32, error) { return m.partitions(ctx, topic) })
}

func (m *topicManager) partitions(ctx context.Context, topic string) ([]int32, error) {
	details, err := m.adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return nil, errTopicNotFound
	}
	if d.Err != nil {
		return nil, fmt.Errorf("listing topic %s: %w", topic, d.Err)
	}
	parts := d.Partitions.Numbers()
	slices.Sort(parts)
	return parts, nil
}

// GetOffset returns the oldest offset (sarama.OffsetOldest), the high
// watermark (sarama.OffsetNewest) or the first offset at or after a
// timestamp in milliseconds of one partition.
func (m *topicManager) GetOffset(topic string, partition int32, t int64) (int64, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	return retry(ctx, func() (int64, error) { return m.getOffset(ctx, topic, partition, t) })
}

func (m *topicManager) getOffset(ctx context.Context, topic string, partition int32, t int64) (int64, error) {
	var (
		listed kadm.ListedOffsets
		err    error
	)
	switch t {
	case sarama.OffsetOldest:
		listed, err = m.adm.ListStartOffsets(ctx, topic)
	case sarama.OffsetNewest:
		listed, err = m.adm.ListEndOffsets(ctx, topic)
	default:
		listed, err = m.adm.ListOffsetsAfterMilli(ctx, t, topic)
	}
	if err != nil {
		if retriable(err) {
			m.cl.ForceMetadataRefresh() // the next try asks the partition's new leader
		}
		return 0, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	o, ok := listed.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("listing offsets of %s/%d: partition not found", topic, partition)
	}
	if o.Err != nil {
		if retriable(o.Err) {
			m.cl.ForceMetadataRefresh()
		}
		return 0, fmt.Errorf("listing offsets of %s/%d: %w", topic, partition, o.Err)
	}
	return o.Offset, nil
}

// Close closes the admin client.
func (m *topicManager) Close() error {
	m.cl.Close()
	return nil
}
