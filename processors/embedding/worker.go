// Package embedding is the embedding worker: it takes text embedding off the
// livestream group's hot path. It consumes the livestreams (metadata) topic
// as a Kafka consumer group, gathers records of all its partitions into
// micro-batches (bounded size and delay), looks each stream's text up in an
// LRU of vectors by text hash, embeds the misses in one model call, and
// produces one events.LivestreamVector per record to the vectors topic,
// keyed by livestream_id with Kafka's murmur2 partitioner (so it is
// co-partitioned with the livestream group, which consumes it). Offsets are
// committed only after the batch's vectors are acknowledged: at least once;
// a duplicate vector is harmless (the livestream group upserts).
//
// A model change re-embeds everything: the consumer group is named after
// the model version (topologies.Names.EmbeddingGroup), so a worker with a new
// model starts a new group at the oldest retained metadata event, and the
// livestream group accepts only the current model's vectors.
package embedding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a Worker.
type Config struct {
	Brokers []string
	// Group is the consumer group (include the model version, see the
	// package doc).
	Group string
	// Input is the livestreams topic, Output the vectors topic, DLQ where
	// records that cannot be embedded go (reason in headers).
	Input, Output, DLQ string
	Embedder           models.Embedder
	// MaxBatch is the most records per batch (default 32); MaxDelay the
	// longest a batch waits to fill once it has a record (default 20ms).
	MaxBatch int
	MaxDelay time.Duration
	// CacheSize bounds the vector cache (default 10000 texts).
	CacheSize int
	Metrics   *Metrics
	Logger    *slog.Logger
	// ClientOptions are appended to the Kafka client's options: TLS and
	// SASL (broker.Config.KgoOpts), tests' settings.
	ClientOptions []kgo.Opt
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 || c.Group == "" || c.Input == "" || c.Output == "" || c.DLQ == "" {
		return errors.New("embedding: brokers, group, input, output and dlq required")
	}
	if c.Embedder == nil {
		return errors.New("embedding: embedder required")
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 32
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 20 * time.Millisecond
	}
	if c.MaxBatch < 1 || c.MaxDelay < 0 {
		return fmt.Errorf("embedding: max batch %d / max delay %s out of range", c.MaxBatch, c.MaxDelay)
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Worker is one member of the embedding consumer group.
type Worker struct {
	cfg   Config
	cache *Cache
	lag   lagTracker
}

// New validates cfg.
func New(cfg Config) (*Worker, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Worker{cfg: cfg, cache: NewCache(cfg.CacheSize), lag: lagTracker{m: cfg.Metrics.Lag}}, nil
}

// Run consumes, embeds and produces until ctx is done. ready, if not nil,
// is closed once the worker has joined its group and been assigned partitions.
func (w *Worker) Run(ctx context.Context, ready chan<- struct{}) error {
	var once sync.Once
	opts := []kgo.Opt{
		kgo.SeedBrokers(w.cfg.Brokers...),
		kgo.ConsumerGroup(w.cfg.Group),
		kgo.ConsumeTopics(w.cfg.Input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Rebalances wait until the polled batch is produced and committed.
		kgo.BlockRebalanceOnPoll(),
		kgo.RecordPartitioner(broker.Partitioner()),
		kgo.ProducerLinger(0),
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			if ready != nil {
				once.Do(func() { close(ready) })
			}
		}),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { w.lag.reset() }),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { w.lag.reset() }),
	}
	cl, err := kgo.NewClient(append(opts, w.cfg.ClientOptions...)...)
	if err != nil {
		return fmt.Errorf("creating the embedding worker's kafka client: %w", err)
	}
	defer cl.Close()
	// A client blocking rebalances cannot leave its group: unblock first
	// (the uncommitted batch, if any, is redone by the next owner).
	defer cl.AllowRebalance()
	w.cfg.Logger.Info("embedding worker started", "group", w.cfg.Group, "model", w.cfg.Embedder.Version(),
		"max_batch", w.cfg.MaxBatch, "max_delay", w.cfg.MaxDelay)
	for {
		recs := w.collect(ctx, func(ctx context.Context, n int) []*kgo.Record { return w.poll(ctx, cl, n) })
		if ctx.Err() != nil {
			return nil // the batch is not committed: the next owner redoes it
		}
		if len(recs) == 0 {
			continue
		}
		if err := w.handle(ctx, cl, recs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := cl.CommitRecords(ctx, recs...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The vectors are out; a later commit covers these offsets, or a
			// new owner redoes them (duplicates are harmless).
			w.cfg.Logger.Warn("committing embedding offsets failed", "err", err)
		}
		cl.AllowRebalance()
	}
}

// poll returns up to n records, logging fetch errors other than ctx's.
func (w *Worker) poll(ctx context.Context, cl *kgo.Client, n int) []*kgo.Record {
	fs := cl.PollRecords(ctx, n)
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			w.cfg.Logger.Warn("fetching livestream metadata", "topic", topic, "partition", p, "err", err)
		}
	})
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			w.lag.observe(p.Partition, p.HighWatermark-p.Records[len(p.Records)-1].Offset-1)
		}
	})
	return fs.Records()
}

// collect gathers one batch: it waits for a first record, then keeps polling
// until MaxBatch records or MaxDelay after the first, whichever comes first.
// poll(ctx, n) returns at most n records, blocking until some are available
// or ctx is done.
func (w *Worker) collect(ctx context.Context, poll func(ctx context.Context, n int) []*kgo.Record) []*kgo.Record {
	recs := poll(ctx, w.cfg.MaxBatch)
	if len(recs) == 0 {
		return nil
	}
	deadline := time.Now().Add(w.cfg.MaxDelay)
	for len(recs) < w.cfg.MaxBatch && ctx.Err() == nil && time.Now().Before(deadline) {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		recs = append(recs, poll(pctx, w.cfg.MaxBatch-len(recs))...)
		cancel()
	}
	return recs
}

// handle embeds a batch and produces its vectors and dead letters, waiting
// until Kafka acknowledged them all.
func (w *Worker) handle(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	out := w.Process(ctx, recs)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
		return fmt.Errorf("producing vectors: %w", err)
	}
	now := time.Now()
	for _, r := range recs {
		w.cfg.Metrics.Age.Observe(now.Sub(r.Timestamp).Seconds())
	}
	return nil
}

type pending struct {
	rec  *kgo.Record
	ev   events.Livestream
	text string
	hash string
	vec  []float32
	err  error
}

// Process turns a batch of livestream records into the records to produce:
// a vector per valid record, a dead letter per record that is invalid or
// that the model fails on, nothing for a stream that ended. Texts are looked up in the cache; the misses,
// deduplicated, go to the model in one call. Only a cancelled ctx leaves
// records without an output.
func (w *Worker) Process(ctx context.Context, recs []*kgo.Record) []*kgo.Record {
	m := w.cfg.Metrics
	m.BatchSize.Observe(float64(len(recs)))
	items := make([]pending, len(recs))
	var texts []string
	missing := map[string][]int{} // hash → items waiting for it
	for i, r := range recs {
		it := &items[i]
		it.rec = r
		if len(r.Value) == 0 {
			it.err = fmt.Errorf("%w: empty value", events.ErrMalformed)
		} else if it.err = events.Decode(r.Value, &it.ev); it.err == nil {
			it.err = events.CheckKey(string(r.Key), &it.ev.Header)
		}
		if it.err != nil || it.ev.Status == events.StatusEnded {
			continue // an ended stream is not served: no vector
		}
		it.text = events.ContentText(it.ev.Title, it.ev.Category, it.ev.Tags)
		it.hash = events.TextHash(it.text)
		if v, ok := w.cache.Get(it.hash); ok {
			it.vec = v
			m.CacheHits.Inc()
			continue
		}
		if _, ok := missing[it.hash]; !ok {
			texts = append(texts, it.text)
			m.CacheMisses.Inc()
		} else {
			m.CacheHits.Inc() // a repeat within the batch costs nothing either
		}
		missing[it.hash] = append(missing[it.hash], i)
	}
	if len(texts) > 0 {
		vecs, errs := w.embed(ctx, texts)
		if ctx.Err() != nil {
			return nil
		}
		for j, text := range texts {
			hash := events.TextHash(text)
			if errs[j] == nil {
				w.cache.Put(hash, vecs[j])
			}
			for _, i := range missing[hash] {
				items[i].vec, items[i].err = vecs[j], errs[j]
			}
		}
	}
	out := make([]*kgo.Record, 0, len(recs))
	model := w.cfg.Embedder.Version()
	for i := range items {
		it := &items[i]
		if it.err != nil {
			out = append(out, w.deadLetter(it.rec, it.err))
			continue
		}
		if it.ev.Status == events.StatusEnded {
			m.Records.WithLabelValues("ended").Inc()
			continue
		}
		value, err := json.Marshal(&events.LivestreamVector{
			LivestreamID: it.ev.LivestreamID, TextHash: it.hash, Model: model,
			Vector: it.vec, EventTime: it.ev.EventTime,
		})
		if err != nil { // a NaN from the model
			out = append(out, w.deadLetter(it.rec, fmt.Errorf("encoding vector: %w", err)))
			continue
		}
		m.Records.WithLabelValues("vector").Inc()
		out = append(out, &kgo.Record{Topic: w.cfg.Output, Key: []byte(it.ev.LivestreamID), Value: value})
	}
	return out
}

// ErrEmbedding marks a text the model failed on (dead-letter reason "embed").
var ErrEmbedding = errors.New("embedding failed")

// embed runs the model over texts in one call; if the call fails it retries
// text by text so that one bad text fails alone.
func (w *Worker) embed(ctx context.Context, texts []string) ([][]float32, []error) {
	vecs := make([][]float32, len(texts))
	errs := make([]error, len(texts))
	start := time.Now()
	got, err := w.cfg.Embedder.Embed(ctx, texts)
	w.cfg.Metrics.EmbedTime.Observe(time.Since(start).Seconds())
	if err == nil && len(got) == len(texts) {
		w.cfg.Metrics.Embedded.Add(float64(len(texts)))
		copy(vecs, got)
		return vecs, errs
	}
	if ctx.Err() != nil {
		return vecs, errs
	}
	w.cfg.Logger.Warn("embedding a batch failed; embedding its texts one by one", "texts", len(texts), "err", err)
	for i, t := range texts {
		v, err := w.cfg.Embedder.Embed(ctx, []string{t})
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("%w: %v", ErrEmbedding, err)
		case len(v) != 1:
			errs[i] = fmt.Errorf("%w: %d vectors for one text", ErrEmbedding, len(v))
		default:
			vecs[i] = v[0]
			w.cfg.Metrics.Embedded.Inc()
		}
	}
	return vecs, errs
}

func (w *Worker) deadLetter(r *kgo.Record, err error) *kgo.Record {
	reason := pipeline.Reason(err)
	if errors.Is(err, ErrEmbedding) {
		reason = "embed"
	}
	w.cfg.Metrics.DeadLetters.WithLabelValues(reason).Inc()
	w.cfg.Metrics.Records.WithLabelValues("dead_letter").Inc()
	value, size := pipeline.DeadLetterValue(r.Value)
	dl := &kgo.Record{Topic: w.cfg.DLQ, Key: r.Key, Value: value, Headers: []kgo.RecordHeader{
		{Key: pipeline.HeaderReason, Value: []byte(reason)},
		{Key: pipeline.HeaderError, Value: []byte(err.Error())},
		{Key: pipeline.HeaderTopic, Value: []byte(r.Topic)},
		{Key: pipeline.HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		{Key: pipeline.HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	}}
	if size != nil {
		// An oversized value is truncated, so the dead letter fits the
		// producer's limit however large the input record was.
		dl.Headers = append(dl.Headers, kgo.RecordHeader{Key: pipeline.HeaderOriginalSize, Value: size})
	}
	return dl
}

// lagTracker keeps the records behind per assigned partition.
type lagTracker struct {
	mu  sync.Mutex
	per map[int32]int64
	m   prometheus.Gauge
}

func (l *lagTracker) observe(p int32, lag int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.per == nil {
		l.per = map[int32]int64{}
	}
	l.per[p] = max(lag, 0)
	var sum int64
	for _, v := range l.per {
		sum += v
	}
	l.m.Set(float64(sum))
}

func (l *lagTracker) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.per = nil
	l.m.Set(0)
}
