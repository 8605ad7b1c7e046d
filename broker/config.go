// Package broker is the one place where livefeed talks to Kafka's settings: the
// key→partition function, the goka options for processors, views and
// emitters (goka on franz-go, broker/kgoka: offsets policy, group timings,
// producer linger and acks), topic creation with kadm, the embedded kfake
// cluster, TLS and SASL (security.go), the guard that keeps local state from
// outliving its log, and the sarama configuration of plain goka, kept for the
// benchmark's goka floors.
package broker

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/livefeed/livefeed/broker/kgoka"
)

// ProtocolVersion is the Kafka protocol version sarama speaks. It works on the
// embedded kfake cluster and on Apache Kafka 4.x (which dropped protocol
// versions older than 2.1); sarama < 1.46.2 breaks on kfake from 2.4 on.
var ProtocolVersion = sarama.V3_6_0_0

// Config is how livefeed connects to Kafka. The zero value plus Brokers is
// usable once Defaults has run.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID prefixes every Kafka client id. Default "livefeed".
	ClientID string
	// StateDir holds goka's local goleveldb state (processor tables).
	// Default "./data/state".
	StateDir string
	// Partitions of every topic livefeed creates. Default 8.
	Partitions int32
	// Replication of every topic livefeed creates. Default 1.
	Replication int16
	// SessionTimeout of the consumer groups: how long the partitions of a
	// replica that died (kill -9, node loss) stay unassigned before the
	// coordinator gives them to the others. Default 6s, the least Kafka
	// accepts by default (group.min.session.timeout.ms; a shorter one is
	// refused with "The provided session timeout is outside the allowed
	// range"). livefeed bench failover measures what it buys.
	SessionTimeout time.Duration
	// HeartbeatInterval of the consumer groups. Default 1s.
	HeartbeatInterval time.Duration
	// FlushFrequency of goka's producers (franz-go's linger): an emitted
	// record waits at most this long before it is sent. Default 5ms (goka's
	// default is 100ms).
	FlushFrequency time.Duration
	// DeliveryTimeout is how long every producer of the process (goka's
	// on franz-go, the embedding worker's, the simulator's: KgoOpts)
	// retries a record before failing it: across a crashed leader's
	// fencing (broker.session.timeout.ms, 9 s) and a KRaft controller
	// election. Default 2m, the Java producer's delivery.timeout.ms.
	DeliveryTimeout time.Duration
	// Logger receives goka's and the Kafka clients' logs. Default
	// slog.Default().
	Logger *slog.Logger
	// Security is TLS and SASL for every client (security.go). Zero:
	// PLAINTEXT.
	Security Security
	// kgoLog limits the Kafka clients' repeated warnings across every
	// processor, view and emitter of the process (Defaults makes it).
	kgoLog *kgoka.LogThrottle
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.kgoLog == nil {
		c.kgoLog = kgoka.NewLogThrottle()
	}
	if c.ClientID == "" {
		c.ClientID = "livefeed"
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join("data", "state")
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Replication == 0 {
		c.Replication = 1
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 6 * time.Second
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.FlushFrequency == 0 {
		c.FlushFrequency = 5 * time.Millisecond
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = 2 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate rejects unusable settings.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		errs = append(errs, fmt.Errorf("partitions %d out of range 1..1024", c.Partitions))
	}
	if c.Replication < 1 {
		errs = append(errs, fmt.Errorf("replication %d < 1", c.Replication))
	}
	if c.HeartbeatInterval*3 > c.SessionTimeout {
		errs = append(errs, fmt.Errorf("heartbeat %v must be at most a third of the session timeout %v", c.HeartbeatInterval, c.SessionTimeout))
	}
	if c.FlushFrequency <= 0 {
		errs = append(errs, errors.New("flush frequency must be > 0 (0 makes sarama wait for 64 KB)"))
	}
	if c.DeliveryTimeout < 10*time.Second {
		errs = append(errs, fmt.Errorf("delivery timeout %v: a crashed leader is fenced after ~9 s, so use at least 10s", c.DeliveryTimeout))
	}
	if err := c.Security.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Sarama returns a fresh sarama configuration for one plain goka client (the
// benchmark's goka floors: SaramaProcessorOptions). Goka's global config is
// never touched.
func (c *Config) Sarama() *sarama.Config {
	cfg := goka.DefaultConfig()
	cfg.Version = ProtocolVersion
	cfg.ClientID = c.ClientID
	// A feature pipeline must see every event, including those produced
	// before the group first joined.
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = c.SessionTimeout
	cfg.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval
	cfg.Producer.Flush.Frequency = c.FlushFrequency
	// Every record written (events emitted, table changelogs) survives the
	// loss of a broker (acks=all; goka's default is the leader only), and
	// the idempotent producer keeps a partition's records in order through
	// retries: duplicate absorption (processors/pipeline) relies on
	// origins arriving in offset order per partition.
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	// A crashed leader's partitions get a new one after the controller
	// fences it (broker.session.timeout.ms, 9 s by default). sarama's
	// default (3 retries, 100 ms apart) gave up in 0.4 s, failed a table
	// write and stopped the processor (TestBrokerFault, once in CI).
	// sarama has no delivery timeout: retry for DeliveryTimeout, as the
	// franz-go producers do.
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.Retry.Max = int(c.DeliveryTimeout / cfg.Producer.Retry.Backoff)
	// Kafka's default partitioner, for records that goka emits.
	cfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(NewHasher)
	cfg.Metadata.RefreshFrequency = time.Minute
	c.Security.applySarama(cfg)
	return cfg
}

func (c *Config) topicManagerConfig() *goka.TopicManagerConfig {
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication = int(c.Replication)
	tm.Stream.Replication = int(c.Replication)
	tm.Stream.Retention = 7 * 24 * time.Hour
	return tm
}

func (c *Config) saramaBuilders() (goka.ProducerBuilder, goka.ConsumerGroupBuilder, goka.SaramaConsumerBuilder, goka.TopicManagerBuilder) {
	return goka.ProducerBuilderWithConfig(c.Sarama()),
		goka.ConsumerGroupBuilderWithConfig(c.Sarama()),
		goka.SaramaConsumerBuilderWithConfig(c.Sarama()),
		goka.TopicManagerBuilderWithConfig(c.Sarama(), c.topicManagerConfig())
}

// Kgoka are goka's builders on franz-go with these settings: the clients
// every livefeed processor, view and emitter runs on.
func (c *Config) Kgoka() *kgoka.Builders {
	return kgoka.New(kgoka.Options{
		Client:            c.KgoOpts(),
		SessionTimeout:    c.SessionTimeout,
		HeartbeatInterval: c.HeartbeatInterval,
		Linger:            c.FlushFrequency,
		DeliveryTimeout:   c.DeliveryTimeout,
		Partitioner:       Partitioner(),
		Replication:       c.Replication,
		StreamRetention:   7 * 24 * time.Hour,
		Logger:            c.Logger,
		LogThrottle:       c.kgoLog,
	})
}

func (c *Config) kgokaBuilders() (goka.ProducerBuilder, goka.ConsumerGroupBuilder, goka.SaramaConsumerBuilder, goka.TopicManagerBuilder) {
	k := c.Kgoka()
	return k.Producer(), k.ConsumerGroup(), k.Consumer(), k.TopicManager()
}

// ProcessorStateDir is where a processor's goleveldb state lives.
func (c *Config) ProcessorStateDir() string { return filepath.Join(c.StateDir, "processor") }

// ProcessorOptions are the goka options every livefeed processor runs with:
// goka on franz-go (broker/kgoka).
func (c *Config) ProcessorOptions(extra ...goka.ProcessorOption) []goka.ProcessorOption {
	return c.processorOptions(c.kgokaBuilders, extra)
}

// SaramaProcessorOptions are ProcessorOptions on goka's own client, sarama:
// what a plain goka user runs. Only the benchmark's goka floors use them.
func (c *Config) SaramaProcessorOptions(extra ...goka.ProcessorOption) []goka.ProcessorOption {
	return c.processorOptions(c.saramaBuilders, extra)
}

func (c *Config) processorOptions(builders func() (goka.ProducerBuilder, goka.ConsumerGroupBuilder, goka.SaramaConsumerBuilder, goka.TopicManagerBuilder), extra []goka.ProcessorOption) []goka.ProcessorOption {
	pb, cgb, cb, tmb := builders()
	opts := []goka.ProcessorOption{
		goka.WithHasher(NewHasher),
		goka.WithProducerBuilder(pb),
		goka.WithConsumerGroupBuilder(cgb),
		goka.WithConsumerSaramaBuilder(cb),
		goka.WithTopicManagerBuilder(tmb),
		goka.WithStorageBuilder(storage.DefaultBuilder(c.ProcessorStateDir())),
		goka.WithClientID(c.ClientID),
		goka.WithLogger(c.gokaLogger("processor")),
	}
	return append(opts, extra...)
}

// Clients records the partition consumers and topic managers goka builds for
// views: goka's View closes its partitions but never these, so each view
// would leak its clients (and their goroutines) after Run returns.
type Clients struct {
	mu      sync.Mutex
	closers []io.Closer
}

func (cs *Clients) add(c io.Closer) {
	cs.mu.Lock()
	cs.closers = append(cs.closers, c)
	cs.mu.Unlock()
}

// Close closes every recorded client. Call it after the views' Run returned.
func (cs *Clients) Close() error {
	cs.mu.Lock()
	closers := cs.closers
	cs.closers = nil
	cs.mu.Unlock()
	var errs []error
	for _, c := range closers {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ViewOptions are the goka options every livefeed view runs with. Views keep
// their state in memory: serving rebuilds its index from the update callback
// while the view recovers. The clients the view builds are recorded in
// clients, which the caller closes once the view has stopped.
func (c *Config) ViewOptions(clients *Clients, extra ...goka.ViewOption) []goka.ViewOption {
	_, _, cb, tmb := c.kgokaBuilders()
	opts := []goka.ViewOption{
		goka.WithViewHasher(NewHasher),
		goka.WithViewConsumerSaramaBuilder(func(brokers []string, clientID string) (sarama.Consumer, error) {
			cons, err := cb(brokers, clientID)
			if err == nil {
				clients.add(cons)
			}
			return cons, err
		}),
		goka.WithViewTopicManagerBuilder(func(brokers []string) (goka.TopicManager, error) {
			tm, err := tmb(brokers)
			if err == nil {
				clients.add(tm)
			}
			return tm, err
		}),
		goka.WithViewStorageBuilder(MemoryStorageBuilder()),
		goka.WithViewClientID(c.ClientID),
		goka.WithViewLogger(c.gokaLogger("view")),
		goka.WithViewAutoReconnect(),
	}
	return append(opts, extra...)
}

// EmitterOptions are the goka options every livefeed emitter runs with.
func (c *Config) EmitterOptions(extra ...goka.EmitterOption) []goka.EmitterOption {
	pb, _, _, tmb := c.kgokaBuilders()
	opts := []goka.EmitterOption{
		goka.WithEmitterHasher(NewHasher),
		goka.WithEmitterProducerBuilder(pb),
		goka.WithEmitterTopicManagerBuilder(tmb),
		goka.WithEmitterClientID(c.ClientID),
		goka.WithEmitterLogger(c.gokaLogger("emitter")),
	}
	return append(opts, extra...)
}
