// Package kgoka runs goka on franz-go ("goka on kgo"): it implements the
// builders goka takes for its producer, consumer group, partition consumers
// and topic manager with kgo clients, so processors, views and emitters use
// franz-go's batching and the process has one Kafka client on its hot path.
// Sarama remains only as the types goka's interfaces name
// (sarama.ConsumerGroup, sarama.Consumer, sarama.ConsumerMessage, ...).
//
// How goka's pieces map:
//
//   - goka.Producer (emits, table writes): one kgo client per builder call,
//     idempotent, acks=all, records retried until the delivery timeout. Each
//     promise completes with the broker's ack (offset, partition) or error.
//   - sarama.ConsumerGroup (a processor's input): one kgo group client with
//     the copartition balancer (goka's strategy, same protocol name). kgo
//     rejoins on its own; every rebalance ends the session goka sees, so
//     Consume returns and goka's loop calls it again after its rejoin delay.
//     Offsets goka marks are committed every CommitInterval and once more
//     when the partitions are revoked.
//   - sarama.Consumer (table recovery, joins, views): one direct kgo client
//     per builder call; each ConsumePartition adds a partition to it.
//   - goka.TopicManager: kadm.
//
// A Fence (fence.go) ties a processor's producer to its group membership:
// a replica that lost its partitions while stopped writes nothing when it
// wakes.
package kgoka

import (
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Options configure every client kgoka builds. Fill Client; the rest have
// defaults (Defaults).
type Options struct {
	// Client are the options every kgo client starts from: TLS, SASL
	// (broker.Config.KgoOpts). The seed brokers are those goka passes to
	// the builder; seeds in Client are used when goka passes none.
	Client []kgo.Opt
	// SessionTimeout of the consumer groups. Default 10s (kgo's and Kafka's).
	SessionTimeout time.Duration
	// HeartbeatInterval of the consumer groups. Default 3s.
	HeartbeatInterval time.Duration
	// RebalanceTimeout bounds how long a member may take to give its
	// partitions back (goka's Cleanup and the final commit). Default 60s.
	RebalanceTimeout time.Duration
	// CommitInterval is how often the offsets goka marked are committed
	// while a session runs (as sarama's auto-commit did). Default 1s.
	CommitInterval time.Duration
	// Linger is how long a produced record may wait for others to share
	// its batch. Default 5ms.
	Linger time.Duration
	// DeliveryTimeout is how long a record is retried (leader changes,
	// broker restarts) before its promise fails. Default 2m, Kafka's
	// delivery.timeout.ms.
	DeliveryTimeout time.Duration
	// CloseTimeout bounds what a stopping client waits for the brokers:
	// a producer's Close for its buffered records to be acknowledged
	// (those still unacknowledged then fail, so nothing waiting for them
	// is committed), and the final offset commit of a session its
	// context ended. It keeps a shutdown short while the brokers are
	// unreachable. Default 3s.
	CloseTimeout time.Duration
	// FetchMaxWait is how long a fetch waits for data. It also bounds how
	// soon a newly added or resumed partition is fetched. Default 500ms.
	FetchMaxWait time.Duration
	// QueueRecords is how many fetched records one partition may hold
	// before its fetching pauses until goka has taken half of them.
	// Default 4096.
	QueueRecords int
	// Partitioner places emitted records. Nil: goka's hasher, as sarama's
	// hash partitioner used it.
	Partitioner kgo.Partitioner
	// Replication of the topics the topic manager creates. Default 1.
	Replication int16
	// StreamRetention of the streams the topic manager creates. Default 7 days.
	StreamRetention time.Duration
	// Logger receives the clients' warnings and errors (and more at debug
	// level). Default slog.Default().
	Logger *slog.Logger
	// LogThrottle logs one warning of a kind per 30 s (the others at
	// debug); share one across the Builders of a process. Nil: one per
	// Builders.
	LogThrottle *LogThrottle
	// LeaseMargin is how much shorter than SessionTimeout a fenced
	// member's lease is after its last answered heartbeat (Fence): what
	// covers the way from the check to the broker. Default
	// HeartbeatInterval.
	LeaseMargin time.Duration
	// Metrics count fencing. Default: unregistered.
	Metrics *Metrics
}

// Defaults fills unset fields.
func (o *Options) Defaults() {
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 10 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 3 * time.Second
	}
	if o.RebalanceTimeout == 0 {
		o.RebalanceTimeout = time.Minute
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = time.Second
	}
	if o.Linger == 0 {
		o.Linger = 5 * time.Millisecond
	}
	if o.DeliveryTimeout == 0 {
		o.DeliveryTimeout = 2 * time.Minute
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = 3 * time.Second
	}
	if o.FetchMaxWait == 0 {
		o.FetchMaxWait = 500 * time.Millisecond
	}
	if o.QueueRecords == 0 {
		o.QueueRecords = 4096
	}
	if o.Replication == 0 {
		o.Replication = 1
	}
	if o.StreamRetention == 0 {
		o.StreamRetention = 7 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LogThrottle == nil {
		o.LogThrottle = NewLogThrottle()
	}
	if o.LeaseMargin == 0 {
		o.LeaseMargin = o.HeartbeatInterval
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
}

// Validate rejects unusable options.
func (o *Options) Validate() error {
	var errs []error
	if o.HeartbeatInterval*3 > o.SessionTimeout {
		errs = append(errs, fmt.Errorf("kgoka: heartbeat %v must be at most a third of the session timeout %v", o.HeartbeatInterval, o.SessionTimeout))
	}
	if o.CommitInterval < 0 || o.Linger < 0 || o.DeliveryTimeout < 0 || o.FetchMaxWait < 0 || o.CloseTimeout < 0 {
		errs = append(errs, errors.New("kgoka: negative duration"))
	}
	if o.LeaseMargin < 0 || o.LeaseMargin+o.HeartbeatInterval >= o.SessionTimeout {
		errs = append(errs, fmt.Errorf("kgoka: lease margin %v plus heartbeat %v must be below the session timeout %v", o.LeaseMargin, o.HeartbeatInterval, o.SessionTimeout))
	}
	if o.QueueRecords < 2 {
		errs = append(errs, fmt.Errorf("kgoka: queue records %d < 2", o.QueueRecords))
	}
	return errors.Join(errs...)
}

// Builders are goka's four builders on franz-go.
type Builders struct {
	opts Options
	err  error // from Validate; every builder returns it
}

// New fills opts' defaults and returns the builders. Invalid options make
// every builder fail with Validate's error.
func New(opts Options) *Builders {
	opts.Defaults()
	return &Builders{opts: opts, err: opts.Validate()}
}

// clientOpts are the base options of a client of brokers with goka's
// clientID.
func (b *Builders) clientOpts(brokers []string, clientID string, extra ...kgo.Opt) []kgo.Opt {
	opts := make([]kgo.Opt, 0, len(b.opts.Client)+len(extra)+3)
	opts = append(opts, b.opts.Client...)
	if len(brokers) > 0 {
		opts = append(opts, kgo.SeedBrokers(brokers...))
	}
	if clientID != "" {
		opts = append(opts, kgo.ClientID(clientID))
	}
	opts = append(opts, kgo.WithLogger(newLogger(b.opts.Logger, clientID, b.opts.LogThrottle)))
	return append(opts, extra...)
}

// Producer builds goka producers on kgo (goka.WithProducerBuilder,
// goka.WithEmitterProducerBuilder).
func (b *Builders) Producer() goka.ProducerBuilder {
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		if b.err != nil {
			return nil, b.err
		}
		return newProducer(b, brokers, clientID, hasher, nil)
	}
}

// ConsumerGroup builds goka's consumer groups on kgo
// (goka.WithConsumerGroupBuilder).
func (b *Builders) ConsumerGroup() goka.ConsumerGroupBuilder {
	return func(brokers []string, group, clientID string) (sarama.ConsumerGroup, error) {
		if b.err != nil {
			return nil, b.err
		}
		return newConsumerGroup(b, brokers, group, clientID), nil
	}
}

// Consumer builds goka's partition consumers on kgo
// (goka.WithConsumerSaramaBuilder, goka.WithViewConsumerSaramaBuilder).
func (b *Builders) Consumer() goka.SaramaConsumerBuilder {
	return func(brokers []string, clientID string) (sarama.Consumer, error) {
		if b.err != nil {
			return nil, b.err
		}
		return newConsumer(b, brokers, clientID)
	}
}

// TopicManager builds goka's topic managers on kadm
// (goka.WithTopicManagerBuilder and the view and emitter equivalents).
func (b *Builders) TopicManager() goka.TopicManagerBuilder {
	return func(brokers []string) (goka.TopicManager, error) {
		if b.err != nil {
			return nil, b.err
		}
		return newTopicManager(b, brokers)
	}
}
