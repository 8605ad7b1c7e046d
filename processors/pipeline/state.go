package pipeline

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"maps"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// State is a group's table state with a write-behind record cache in front
// of goka's storage and changelog — our answer to the per-record state write
// that bounds a goka group (Kafka Streams puts a record cache in front of its
// stores for the same reason).
//
// Callbacks read and change decoded values in memory. A changed key is
// marked dirty instead of being encoded, written to goleveldb and produced
// to the changelog on every event; every FlushInterval (100ms by default; and when MaxDirty
// keys are dirty, or when a callback asks for FlushNow) the dirty keys of a
// partition are encoded once each, written to local storage and produced to
// the table topic. A hot stream with hundreds of events between flushes
// costs one write instead of hundreds.
//
// Recovery is unchanged and nothing acknowledged is lost: every input
// message's offset commit is deferred (goka's Context.DeferCommit) until the
// changelog records of the flush that follows it are acknowledged, and
// commits are released in offset order per partition (Kafka commits an
// offset as "everything before it is done"). A crash replays exactly the
// events whose state had not reached the changelog — the at-least-once
// contract goka gives with a write per event. The price is data latency:
// a value reaches the table (and serving's views) up to FlushInterval later.
//
// Wire it in three places: wrap every input callback with Input and every
// visitor with Visitor; add ProcessorOptions (with the deployment's storage
// and producer builders) to the processor's options; run Run beside the
// processor and stop it only after the processor returned (a partition
// that stops waits for its deferred commits, which the flusher releases).
//
// Each partition's values are touched by its own callback goroutine and the
// flusher, under the partition's mutex.
type State[T any] struct {
	table goka.Table
	codec goka.Codec
	opts  StateOptions
	log   *slog.Logger
	route *router

	mu       sync.Mutex
	parts    map[int32]*partState[T]
	stores   map[int32]*tableStorage
	producer goka.Producer // the processor's producer, for the changelog
	wired    atomic.Bool   // ProcessorOptions were taken

	// emits counts the processor's emits for the emit barrier; writes are
	// the flushes waiting for it, oldest first, written by Run's writer.
	emits    *emitTracker
	writesMu sync.Mutex
	writes   []*write
	queued   chan struct{} // a write was queued (capacity 1)
	// queuedBytes is the encoded size of the flushed values not yet
	// acknowledged by the changelog; callbacks wait on room while it is
	// over MaxQueuedBytes (until stopped). Guarded by writesMu.
	queuedBytes int64
	room        *sync.Cond
	stopped     bool
	// batch is the goleveldb batch of the partitions' checkpoints.
	batch sharedBatch
	// bufs are encoding buffers (*[]byte), recycled once the value they
	// hold is staged for the local store (which copies it) and acknowledged by the
	// changelog: a busy stream's value is tens of KiB, ten times a second.
	bufs sync.Pool
	// failing is set while table writes fail: the failure and the
	// recovery are logged once each, not once per write.
	failing atomic.Bool
	// aborted: Abort was called; the writer drops what is queued.
	aborted atomic.Bool
	// partBudget is each partition cache's share of CacheBytes; cached
	// the estimated bytes of every partition's cached values, exported as
	// cacheGauge.
	partBudget atomic.Int64
	cached     atomic.Int64
	cacheGauge prometheus.Gauge
	assigned   int // partitions of the last assignment (Reset); guarded by mu
}

// StateOptions tune a State. Zero values take the defaults.
type StateOptions struct {
	// CacheSize is how many decoded values are kept per partition (LRU;
	// dirty values are kept until flushed whatever the size). Default
	// DefaultCacheSize.
	CacheSize int
	// CacheBytes bounds the estimated memory of the decoded values cached
	// by all the partitions of this State together (Sized; each partition
	// holds an equal share), besides CacheSize: what keeps a lagging
	// processor's memory flat when its working set is larger than the
	// cache. The partitions of the current assignment (Reset) share it
	// equally. Values waiting for a flush are not cached values: MaxDirty
	// and MaxQueuedBytes bound those. Default DefaultCacheBytes.
	CacheBytes int64
	// FlushInterval is how long a changed value may wait before it is
	// written. Default 100ms. Negative: write through on every change (one
	// storage write and changelog record per event, as plain goka).
	FlushInterval time.Duration
	// MaxDirty flushes a partition when this many keys wait. Default 20000.
	MaxDirty int
	// MaxQueuedBytes bounds the encoded values flushed and not yet
	// acknowledged by the changelog: past it, callbacks wait before their
	// next record until acknowledgements bring it under (backpressure
	// instead of a queue that grows while the changelog lags). Default
	// DefaultMaxQueuedBytes per group table.
	MaxQueuedBytes int64
	// WriteBuffer is the memtable of each table partition's goleveldb,
	// which holds up to three (the one written, one being compacted, one
	// kept for reuse), allocated whole: 8 partitions of a table hold up to
	// 24 × WriteBuffer of heap. Tables are written at checkpoints of up to
	// CheckpointBytes, so one memtable holds about one checkpoint; a
	// smaller one flushes and compacts more often. Default
	// DefaultWriteBuffer.
	WriteBuffer int
	// CheckpointInterval is how often a table partition's flushed values
	// are written to its local store, with the changelog offset they
	// reach (tableStorage): between checkpoints only the changelog gets
	// every flush, and a crash recovers the rest from it. Default
	// DefaultCheckpointInterval; negative: at every flush.
	CheckpointInterval time.Duration
	// CheckpointBytes writes a partition's checkpoint early when this many
	// bytes of values wait for it (their newest versions, copied). Default
	// DefaultCheckpointBytes.
	CheckpointBytes int64
	// Routing checks that every record is in the partition its key maps
	// to before it reaches a callback or the state (route.go). Zero: no
	// check.
	Routing Routing
	// Metrics count the duplicates absorbed (default: unregistered).
	Metrics *Metrics
	Logger  *slog.Logger
}

// NewState builds the state of the group table with the table's codec.
func NewState[T any](table goka.Table, codec goka.Codec, opts StateOptions) *State[T] {
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.WriteBuffer == 0 {
		opts.WriteBuffer = DefaultWriteBuffer
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.CheckpointBytes == 0 {
		opts.CheckpointBytes = DefaultCheckpointBytes
	}
	if opts.MaxDirty == 0 {
		opts.MaxDirty = 20000
	}
	if opts.MaxQueuedBytes == 0 {
		opts.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	s := &State[T]{table: table, codec: codec, opts: opts, log: opts.Logger,
		parts: map[int32]*partState[T]{}, stores: map[int32]*tableStorage{},
		emits: newEmitTracker(), queued: make(chan struct{}, 1)}
	s.route = newRouter(opts.Routing, opts.Metrics, opts.Logger)
	s.room = sync.NewCond(&s.writesMu)
	s.bufs.New = func() any { return new([]byte) }
	s.partBudget.Store(opts.CacheBytes)
	s.cacheGauge = opts.Metrics.StateCached.WithLabelValues(string(table))
	return s
}

// Defaults of StateOptions.
const (
	// DefaultMaxQueuedBytes is MaxQueuedBytes's default.
	DefaultMaxQueuedBytes = 16 << 20
	// DefaultCacheSize is CacheSize's default (per partition).
	DefaultCacheSize = 10000
	// DefaultCacheBytes is CacheBytes's default (per State, that is per
	// group table of a process).
	DefaultCacheBytes = 128 << 20
	// DefaultWriteBuffer is WriteBuffer's default: half goleveldb's, as
	// the table is written at checkpoints (DefaultCheckpointBytes).
	DefaultWriteBuffer = 2 << 20
	// DefaultCheckpointInterval is CheckpointInterval's default.
	DefaultCheckpointInterval = 5 * time.Second
	// DefaultCheckpointBytes is CheckpointBytes's default (per partition).
	DefaultCheckpointBytes = 2 << 20
)

// waitRoom waits while the flushed, unacknowledged values are over
// MaxQueuedBytes, or until c is done or the state stops. Called before a
// callback takes its partition's lock: the writer needs that lock to
// finish a write.
func (s *State[T]) waitRoom(c context.Context) {
	s.writesMu.Lock()
	defer s.writesMu.Unlock()
	if s.queuedBytes <= s.opts.MaxQueuedBytes || s.stopped {
		return
	}
	s.opts.Metrics.StateWaits.WithLabelValues(string(s.table)).Inc()
	stop := context.AfterFunc(c, func() {
		s.writesMu.Lock()
		s.writesMu.Unlock()
		s.room.Broadcast()
	})
	defer stop()
	for s.queuedBytes > s.opts.MaxQueuedBytes && !s.stopped && c.Err() == nil {
		s.room.Wait()
	}
}

// unqueue takes n acknowledged (or failed) bytes off the queue.
func (s *State[T]) unqueue(n int64) {
	s.writesMu.Lock()
	s.queuedBytes -= n
	q := s.queuedBytes
	s.writesMu.Unlock()
	s.room.Broadcast()
	s.opts.Metrics.StateQueued.WithLabelValues(string(s.table)).Set(float64(q))
}

// writeThrough: every change goes to goka's SetValue at once, when
// configured so (FlushInterval < 0). Otherwise the processor must be built
// with ProcessorOptions or WrapOptions (goka's tester: pipelinetest), or
// its callbacks fail with ErrStateNotWired: no silent switch to another
// write path.
func (s *State[T]) writeThrough() bool { return s.opts.FlushInterval < 0 }

// ErrStateNotWired fails a callback of a write-behind State whose
// processor was built without its ProcessorOptions or WrapOptions.
var ErrStateNotWired = errors.New("state: the processor was built without the State's options (ProcessorOptions or WrapOptions)")

// partState is one partition's cache, dirty keys and deferred commits.
type partState[T any] struct {
	mu    sync.Mutex // held by callbacks and the flusher
	cache *lru[T]
	dirty map[string]*T
	// writing are the values of flushes not yet in local storage (they
	// wait for the emit barrier), with the number of such flushes holding
	// each: a read must not fall through to the older stored value.
	writing   map[string]*inflight[T]
	pending   []func(error) // commits of messages since the last flush
	lastFlush time.Time
	flushNow  bool
	// origin is the current record's origin header, built once for all
	// its emits (Emit).
	originTopic  goka.Stream
	originOffset int64
	origin       goka.Headers

	// in-flight flushes, oldest first; guarded by genMu (acks arrive on the
	// producer's goroutine).
	genMu  sync.Mutex
	gens   []*generation
	offset int64 // newest changelog offset acknowledged (stored at the next checkpoint)
}

type inflight[T any] struct {
	v *T
	n int
}

// generation is one flush: the commits it releases once its records are
// acknowledged.
type generation struct {
	commits     []func(error)
	outstanding int
	offset      int64 // newest changelog offset acknowledged
	err         error
}

func (s *State[T]) part(p int32) *partState[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.parts[p]
	if ps == nil {
		ps = &partState[T]{cache: newLRU[T](s.opts.CacheSize, &s.partBudget, &s.cached), dirty: map[string]*T{},
			writing: map[string]*inflight[T]{}, lastFlush: time.Now()}
		s.parts[p] = ps
		s.setBudget()
	}
	return ps
}

// setBudget shares CacheBytes equally among the assigned partitions (or,
// before an assignment is known, the partitions seen); a cache over its
// new share shrinks with its next put or flush. s.mu is held.
func (s *State[T]) setBudget() {
	n := s.assigned
	if n == 0 {
		n = len(s.parts)
	}
	s.partBudget.Store(s.opts.CacheBytes / int64(max(n, 1)))
}

// Input wraps the callback of a topic a livefeed group emits (its records
// carry HeaderOrigin): the message's commit is deferred until its state is
// in the changelog, and the callback runs under its partition's lock. A
// record already applied to the key's value (a replay after a crash, or a
// record re-emitted by a replaying upstream; see Deduplicated) is skipped,
// and counted; otherwise the record's origin offset is recorded in the
// value once the callback returns.
func (s *State[T]) Input(cb goka.ProcessCallback) goka.ProcessCallback {
	return s.input(cb, true)
}

// EventInput is Input for a topic of input events: each record is its own
// origin (no header is read).
func (s *State[T]) EventInput(cb goka.ProcessCallback) goka.ProcessCallback {
	return s.input(cb, false)
}

func (s *State[T]) input(cb goka.ProcessCallback, carried bool) goka.ProcessCallback {
	return func(ctx goka.Context, msg any) {
		if s.writeThrough() {
			if !s.route.divert(ctx, msg, carried) {
				cb(ctx, msg)
			}
			return
		}
		if !s.wired.Load() {
			ctx.Fail(ErrStateNotWired)
		}
		s.waitRoom(ctx.Context())
		ps := s.part(ctx.Partition())
		commit := ctx.DeferCommit()
		ps.mu.Lock()
		defer ps.mu.Unlock()
		ps.pending = append(ps.pending, commit)
		// A misrouted record goes elsewhere before any state is read: its
		// commit still waits its turn above.
		if s.route.divert(ctx, msg, carried) {
			s.maybeFlush(ctx.Partition(), ps)
			return
		}
		o := originOf(ctx, carried)
		if v := s.Get(ctx); v != nil {
			if d, ok := any(v).(Deduplicated); ok && seen(*d.AppliedOffsets(), o) {
				// Written again with the next flush: the replayed record's
				// commit must not pass a value that only local storage has.
				s.markDirty(ctx, ps, v)
				s.opts.Metrics.Duplicates.WithLabelValues(string(ctx.Group()), string(ctx.Topic())).Inc()
				s.maybeFlush(ctx.Partition(), ps)
				return
			}
		}
		cb(ctx, msg)
		if v := s.Get(ctx); v != nil {
			if d, ok := any(v).(Deduplicated); ok {
				applied := d.AppliedOffsets()
				if *applied == nil {
					*applied = map[uint64]int64{}
				}
				(*applied)[o.key] = o.offset
				s.markDirty(ctx, ps, v)
			}
		}
		s.maybeFlush(ctx.Partition(), ps)
	}
}

// Emit emits value to topic with the current record as its origin (so the
// receiving group absorbs the duplicates a replay here would send it). Call
// it from a wrapped callback.
func (s *State[T]) Emit(ctx goka.Context, topic goka.Stream, key string, value any) {
	ps := s.part(ctx.Partition())
	if ps.origin == nil || ps.originTopic != ctx.Topic() || ps.originOffset != ctx.Offset() {
		ps.originTopic, ps.originOffset, ps.origin = ctx.Topic(), ctx.Offset(), originHeaders(ctx)
	}
	ctx.Emit(topic, key, value, goka.WithCtxEmitHeaders(ps.origin))
}

// markDirty makes v, the key's current value, part of the next flush.
func (s *State[T]) markDirty(ctx goka.Context, ps *partState[T], v *T) {
	if _, ok := ps.dirty[ctx.Key()]; !ok {
		s.Set(ctx, v)
	}
}

// maybeFlush flushes the partition when it is due. ps.mu is held.
func (s *State[T]) maybeFlush(partition int32, ps *partState[T]) {
	if ps.flushNow || len(ps.dirty) >= s.opts.MaxDirty || time.Since(ps.lastFlush) >= s.opts.FlushInterval {
		s.flush(partition, ps)
	}
}

// Visitor wraps a visitor callback so that it runs under its partition's
// lock (visits commit nothing). A key stored in a partition it does not map
// to (an orphan a misrouted record made before the partition check) is not
// visited: its delete would go to the table partition of the real state.
func (s *State[T]) Visitor(cb goka.ProcessCallback) goka.ProcessCallback {
	return func(ctx goka.Context, meta any) {
		if !s.route.placed(ctx) {
			return
		}
		if s.writeThrough() {
			cb(ctx, meta)
			return
		}
		if !s.wired.Load() {
			ctx.Fail(ErrStateNotWired)
		}
		ps := s.part(ctx.Partition())
		ps.mu.Lock()
		defer ps.mu.Unlock()
		cb(ctx, meta)
	}
}

// Get returns the key's value: dirty or cached, else decoded from the table,
// else nil. Call it from a wrapped callback.
func (s *State[T]) Get(ctx goka.Context) *T {
	ps := s.part(ctx.Partition())
	if v, ok := ps.dirty[ctx.Key()]; ok {
		return v
	}
	if v, ok := ps.cache.get(ctx.Key()); ok {
		return v
	}
	if w, ok := ps.writing[ctx.Key()]; ok {
		ps.cache.put(ctx.Key(), w.v)
		return w.v
	}
	v, _ := ctx.Value().(*T)
	if v != nil {
		ps.cache.put(ctx.Key(), v)
	}
	return v
}

// Set records the key's new value; it is written with the partition's next
// flush. Call it from a wrapped callback.
func (s *State[T]) Set(ctx goka.Context, v *T) {
	ps := s.part(ctx.Partition())
	if s.writeThrough() {
		ctx.SetValue(v)
	} else {
		ps.dirty[ctx.Key()] = v
	}
	ps.cache.put(ctx.Key(), v)
}

// FlushNow asks for the partition to be flushed when the current callback
// returns (for changes whose latency matters more than their cost, e.g. a
// stream going live).
func (s *State[T]) FlushNow(ctx goka.Context) {
	if !s.writeThrough() {
		s.part(ctx.Partition()).flushNow = true
	}
}

// Delete removes the key from the cache and, with the partition's next
// flush, from the table (a tombstone in the changelog).
func (s *State[T]) Delete(ctx goka.Context) {
	ps := s.part(ctx.Partition())
	ps.cache.remove(ctx.Key())
	if s.writeThrough() {
		delete(ps.dirty, ctx.Key())
		ctx.Delete()
		return
	}
	// The tombstone goes with the next flush, in order behind the writes
	// of the key still waiting for their barrier.
	ps.dirty[ctx.Key()] = nil
}

// Reset drops the cached values; goka calls it on every new assignment
// (wire it into goka.WithRebalanceCallback). The previous session's
// partitions have stopped by then, which waited for their flushes. The
// assigned partitions share CacheBytes from now on.
func (s *State[T]) Reset(a goka.Assignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assigned = len(a)
	s.setBudget()
	for p, ps := range s.parts {
		ps.mu.Lock()
		if len(ps.dirty) > 0 || len(ps.pending) > 0 {
			// Not expected: a stopped partition waited for its flush.
			s.log.Warn("state: unflushed changes at rebalance; their events will be replayed",
				"table", s.table, "partition", p, "dirty", len(ps.dirty))
			ps.mu.Unlock()
			continue
		}
		ps.cache.clear()
		ps.mu.Unlock()
	}
	s.cacheGauge.Set(float64(s.cached.Load()))
}

// Sync flushes every partition now and waits until those flushes are
// acknowledged and their commits released, or ctx ends, then writes every
// partition's checkpoint to the local store. For
// tests that read the table after a callback (pipelinetest.Sync).
func (s *State[T]) Sync(ctx context.Context) error {
	if s.writeThrough() {
		return nil
	}
	for p, ps := range s.partitions() {
		ps.mu.Lock()
		s.flush(p, ps)
		ps.mu.Unlock()
	}
	for {
		done := true
		s.writesMu.Lock()
		if len(s.writes) > 0 {
			done = false
		}
		s.writesMu.Unlock()
		for _, ps := range s.partitions() {
			ps.genMu.Lock()
			if len(ps.gens) > 0 {
				done = false
			}
			ps.genMu.Unlock()
		}
		if done {
			return s.checkpointAll()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// partitions is a copy of the partitions' states, to visit without s.mu.
func (s *State[T]) partitions() map[int32]*partState[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.parts)
}

// CachedBytes is the estimated memory of the cached values, all
// partitions together (the livefeed_state_cache_bytes gauge).
func (s *State[T]) CachedBytes() int64 { return s.cached.Load() }

// Len is the number of cached keys.
func (s *State[T]) Len() int {
	n := 0
	for _, ps := range s.partitions() {
		ps.mu.Lock()
		n += ps.cache.len()
		ps.mu.Unlock()
	}
	return n
}

// ProcessorOptions make goka's storage of the table (goleveldb under dir,
// laid out as goka's storage.DefaultBuilder lays it out) reachable to the
// flusher, which writes each flush as one batch, and capture the producer
// the processor builds with pb; append them after the deployment's options.
func (s *State[T]) ProcessorOptions(dir string, pb goka.ProducerBuilder) []goka.ProcessorOption {
	fallback := storage.DefaultBuilder(dir)
	return s.options(func(topic string, partition int32) (storage.Storage, *leveldb.DB, error) {
		if topic != string(s.table) {
			st, err := fallback(topic, partition)
			return st, nil, err
		}
		db, err := leveldb.OpenFile(filepath.Join(dir, fmt.Sprintf("%s.%d", topic, partition)), storageOptions(s.opts.WriteBuffer))
		if err != nil {
			return nil, nil, fmt.Errorf("opening leveldb of %s/%d: %w", topic, partition, err)
		}
		st, err := storage.New(db)
		if err != nil {
			return nil, nil, err
		}
		return st, db, nil
	}, pb)
}

// WrapOptions is ProcessorOptions over any storage: the flusher writes a
// flush key by key through sb's storage instead of as one goleveldb
// batch. goka's tester runs the write-behind path through it
// (processors/pipeline/pipelinetest), so the processors' unit tests run
// the production write path, not a write-through stand-in.
func (s *State[T]) WrapOptions(sb storage.Builder, pb goka.ProducerBuilder) []goka.ProcessorOption {
	return s.options(func(topic string, partition int32) (storage.Storage, *leveldb.DB, error) {
		st, err := sb(topic, partition)
		return st, nil, err
	}, pb)
}

// options wraps open (a table partition's storage, and its goleveldb when
// it has one) and pb.
func (s *State[T]) options(open func(topic string, partition int32) (storage.Storage, *leveldb.DB, error), pb goka.ProducerBuilder) []goka.ProcessorOption {
	if s.opts.FlushInterval < 0 {
		return nil
	}
	s.wired.Store(true)
	return []goka.ProcessorOption{
		goka.WithStorageBuilder(func(topic string, partition int32) (storage.Storage, error) {
			st, db, err := open(topic, partition)
			if err != nil || topic != string(s.table) {
				return st, err
			}
			ts := newTableStorage(st, db, checkpointOptions{interval: s.opts.CheckpointInterval,
				bytes: s.opts.CheckpointBytes, pending: s.opts.Metrics.StateUnstored.WithLabelValues(string(s.table)),
				batch: &s.batch})
			ts.release = s.trackStorage(partition, ts)
			return ts, nil
		}),
		goka.WithProducerBuilder(func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
			p, err := pb(brokers, clientID, hasher)
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			s.producer = p
			s.mu.Unlock()
			// The callbacks' emits are counted for the emit barrier.
			return &trackedProducer{Producer: p, tracker: s.emits}, nil
		}),
	}
}

func (s *State[T]) trackStorage(partition int32, st *tableStorage) func() {
	s.mu.Lock()
	s.stores[partition] = st
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.stores[partition] == st {
			delete(s.stores, partition)
		}
		s.mu.Unlock()
	}
}

// storageOptions open a table partition's goleveldb. A bloom filter (10
// bits per key) answers most reads of keys not in the table (a user's
// first event) without reading a block from every level. The block cache
// is a quarter of goleveldb's default (8 MiB): a process holds one
// database per table partition (8 partitions × 3 tables by default) and
// the write-behind cache in front of it holds the hot values decoded. The
// write buffer is StateOptions.WriteBuffer.
func storageOptions(writeBuffer int) *opt.Options {
	return &opt.Options{Filter: filter.NewBloomFilter(10), BlockCacheCapacity: 2 << 20, WriteBuffer: writeBuffer}
}

// Run flushes partitions whose callbacks have gone quiet, every half
// FlushInterval, and writes the flushes whose emit barrier has passed,
// until stop is closed. Close stop only after the processor returned.
func (s *State[T]) Run(stop <-chan struct{}) {
	if s.writeThrough() {
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.writer(stop)
	}()
	defer wg.Wait()
	defer func() { // callbacks waiting for room go on; their writes will fail
		s.writesMu.Lock()
		s.stopped = true
		s.writesMu.Unlock()
		s.room.Broadcast()
	}()
	t := time.NewTicker(max(s.opts.FlushInterval/2, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			for p, ps := range s.partitions() {
				ps.mu.Lock()
				if (len(ps.dirty) > 0 || len(ps.pending) > 0) && time.Since(ps.lastFlush) >= s.opts.FlushInterval {
					s.flush(p, ps)
				}
				ps.mu.Unlock()
			}
			s.checkpointQuiet()
		}
	}
}

// openStores are the table partitions' open storages, a snapshot.
func (s *State[T]) openStores() []*tableStorage {
	s.mu.Lock()
	defer s.mu.Unlock()
	stores := make([]*tableStorage, 0, len(s.stores))
	for _, st := range s.stores {
		stores = append(stores, st)
	}
	return stores
}

// checkpointAll writes every partition's checkpoint now.
func (s *State[T]) checkpointAll() error {
	var errs []error
	for _, st := range s.openStores() {
		errs = append(errs, st.checkpoint())
	}
	return errors.Join(errs...)
}

// checkpointQuiet writes the checkpoints due by time of partitions whose
// writes stopped (a checkpoint is otherwise written by the write that
// finds it due). A failure fails the partition's next flush.
func (s *State[T]) checkpointQuiet() {
	for _, st := range s.openStores() {
		if st.due() {
			if err := st.checkpoint(); err != nil {
				s.logWrite(err)
			}
		}
	}
}

// errNoStorage means a flush found no open storage for its partition.
var errNoStorage = errors.New("state: no open storage for the partition")

// write is one flush's encoded values, waiting for the emits of the
// callbacks before it (epoch) to be acknowledged.
type write struct {
	partition int32
	release   func() // after the write: drops the values from partState.writing
	gen       *generation
	st        *tableStorage
	producer  goka.Producer
	epoch     uint64
	keys      []string
	encoded   [][]byte // nil: a tombstone
	size      int64    // Σ len(encoded), counted in State.queuedBytes
	// bufs are the pooled buffers behind encoded (nil for a tombstone, or
	// when the storage may keep the slice: not goleveldb), given back to
	// pool once their record is written and acknowledged.
	bufs []*[]byte
	pool *sync.Pool
}

// appendEncoder is a table codec that encodes into a given buffer
// (tables.Codec).
type appendEncoder interface {
	AppendEncode(dst []byte, value any) ([]byte, error)
}

// recycle gives record i's buffer back.
func (w *write) recycle(i int) {
	if i < len(w.bufs) && w.bufs[i] != nil {
		w.pool.Put(w.bufs[i])
		w.bufs[i] = nil
	}
}

// recycleAll gives every buffer back (a write that failed before any
// record was produced).
func (w *write) recycleAll() {
	for i := range w.bufs {
		w.recycle(i)
	}
}

// flush encodes the partition's dirty values and queues them for the
// writer, behind the emit barrier; the pending commits wait for those
// writes. ps.mu is held.
func (s *State[T]) flush(partition int32, ps *partState[T]) {
	ps.lastFlush, ps.flushNow = time.Now(), false
	if len(ps.dirty) == 0 && len(ps.pending) == 0 {
		return
	}
	gen := &generation{commits: ps.pending, outstanding: len(ps.dirty)}
	ps.pending = nil
	dirty := ps.dirty
	ps.dirty = make(map[string]*T, len(dirty))

	s.mu.Lock()
	st, producer := s.stores[partition], s.producer
	s.mu.Unlock()
	if len(dirty) > 0 && (st == nil || producer == nil) {
		gen.err, gen.outstanding = fmt.Errorf("flushing table %s partition %d: %w", s.table, partition, errNoStorage), 0
	}
	w := &write{partition: partition, gen: gen, st: st, producer: producer, pool: &s.bufs}
	if gen.err == nil && gen.outstanding > 0 {
		w.keys = make([]string, 0, len(dirty))
		w.encoded = make([][]byte, 0, len(dirty))
		// Pooled buffers only where the storage copies what it is given.
		ae, pooled := s.codec.(appendEncoder)
		pooled = pooled && st != nil
		for key, v := range dirty {
			var enc []byte
			var bp *[]byte
			if v != nil {
				var err error
				if pooled {
					bp = s.bufs.Get().(*[]byte)
					enc, err = ae.AppendEncode((*bp)[:0], v)
					*bp = enc
				} else {
					enc, err = s.codec.Encode(v)
				}
				if err != nil {
					gen.err, gen.outstanding = fmt.Errorf("encoding %s/%d key %q: %w", s.table, partition, key, err), 0
					break
				}
			}
			w.keys, w.encoded, w.bufs = append(w.keys, key), append(w.encoded, enc), append(w.bufs, bp)
			w.size += int64(len(enc))
		}
	}

	ps.genMu.Lock()
	ps.gens = append(ps.gens, gen)
	ps.genMu.Unlock()
	if gen.err != nil || gen.outstanding == 0 {
		s.release(ps)
		return
	}
	// Until the writer has stored them, reads of these keys must see these
	// values, not the stored ones. The cache measures them again: they
	// changed since it did.
	for key, v := range dirty {
		if v != nil {
			ps.cache.resize(key, v)
		}
		in := ps.writing[key]
		if in == nil {
			in = &inflight[T]{}
			ps.writing[key] = in
		}
		in.v, in.n = v, in.n+1
	}
	w.release = func() {
		ps.mu.Lock()
		for key := range dirty {
			if in := ps.writing[key]; in != nil {
				if in.n--; in.n == 0 {
					delete(ps.writing, key)
				}
			}
		}
		ps.mu.Unlock()
	}
	s.cacheGauge.Set(float64(s.cached.Load()))
	w.epoch = s.emits.barrier()
	s.writesMu.Lock()
	s.writes = append(s.writes, w)
	s.queuedBytes += w.size
	q := s.queuedBytes
	s.writesMu.Unlock()
	s.opts.Metrics.StateQueued.WithLabelValues(string(s.table)).Set(float64(q))
	select {
	case s.queued <- struct{}{}:
	default:
	}
}

// writer writes the queued flushes in order, each once the emits before it
// are acknowledged, until stop; a flush still queued then fails (its
// messages are not committed and will be replayed).
func (s *State[T]) writer(stop <-chan struct{}) {
	for {
		s.writesMu.Lock()
		var w *write
		if len(s.writes) > 0 {
			w = s.writes[0]
			s.writes = s.writes[1:]
		}
		s.writesMu.Unlock()
		if w == nil {
			select {
			case <-stop:
				return
			case <-s.queued:
				continue
			}
		}
		ps := s.part(w.partition)
		if s.aborted.Load() { // stopping: nothing more goes to the producer
			w.release()
			s.drop(ps, w, ErrStateAborted)
			continue
		}
		if err := s.emits.wait(w.epoch, stop); err != nil {
			w.release()
			s.drop(ps, w, fmt.Errorf("flushing table %s partition %d: %w", s.table, w.partition, err))
			continue
		}
		s.write(ps, w)
	}
}

// write stores a flush's values locally in one batch and produces them to
// the changelog; the generation completes when every record is
// acknowledged.
func (s *State[T]) write(ps *partState[T], w *write) {
	err := w.st.stage(w.keys, w.encoded)
	w.release()
	if err != nil {
		s.drop(ps, w, fmt.Errorf("writing %s/%d: %w", s.table, w.partition, err))
		return
	}
	for i, key := range w.keys {
		n := int64(len(w.encoded[i]))
		w.producer.EmitWithHeaders(string(s.table), key, w.encoded[i], nil).ThenWithMessage(func(msg *sarama.ProducerMessage, err error) {
			// The producer is done with the value (acknowledged or failed).
			s.unqueue(n)
			w.recycle(i)
			s.acked(ps, w.gen, w.st, msg, err)
		})
	}
}

// drop fails a write none of whose records reached the producer: its
// bytes leave the queue, its buffers go back, its generation fails.
func (s *State[T]) drop(ps *partState[T], w *write, err error) {
	s.unqueue(w.size)
	w.recycleAll()
	s.failed(ps, w.gen, err)
}

// failed fails a generation that wrote nothing.
func (s *State[T]) failed(ps *partState[T], gen *generation, err error) {
	ps.genMu.Lock()
	gen.err, gen.outstanding = err, 0
	ps.genMu.Unlock()
	s.release(ps)
}

// acked records one acknowledged (or failed) record of a generation.
// The local storage's changelog offset (where recovery resumes) is stored
// once per generation, when its last record is acknowledged.
func (s *State[T]) acked(ps *partState[T], gen *generation, st *tableStorage, msg *sarama.ProducerMessage, err error) {
	ps.genMu.Lock()
	if err != nil && gen.err == nil {
		gen.err = err
	}
	if msg != nil && msg.Offset > gen.offset {
		gen.offset = msg.Offset
	}
	gen.outstanding--
	if gen.outstanding == 0 && gen.err == nil && gen.offset > ps.offset {
		ps.offset = gen.offset
		st.ackedOffset(gen.offset)
	}
	ps.genMu.Unlock()
	s.release(ps)
}

// release commits, in order, the messages of every leading generation whose
// records are all acknowledged. A failed write fails its messages' commits,
// which stops the processor (as a failed goka table write does).
func (s *State[T]) release(ps *partState[T]) {
	ps.genMu.Lock()
	var done []*generation
	for len(ps.gens) > 0 && ps.gens[0].outstanding <= 0 {
		done = append(done, ps.gens[0])
		ps.gens = ps.gens[1:]
	}
	ps.genMu.Unlock()
	for _, g := range done {
		s.logWrite(g.err)
		for _, commit := range g.commits {
			commit(g.err)
		}
	}
}

// logWrite logs a changed outcome of the table writes: the first failure
// after successes, and the first success after failures (a broker outage
// fails every write until it ends; one line says so).
func (s *State[T]) logWrite(err error) {
	switch {
	case err != nil && !s.aborted.Load() && !s.failing.Swap(true):
		s.log.Error("state: table writes failing; their messages are not committed, the processor stops and replays from its last commit",
			"table", s.table, "err", err)
	case err == nil && s.failing.Swap(false):
		s.log.Info("state: table writes succeed again", "table", s.table)
	}
}

// ErrStateAborted fails the commits Abort gave up on.
var ErrStateAborted = errors.New("state: stopped before the table write was acknowledged")

// Abort fails every flush not yet acknowledged by the changelog and every
// commit waiting for one, so that stopping partitions (which wait for their
// deferred commits) are not held by a changelog that cannot be reached: a
// processor shutting down while the brokers are gone. Their messages are
// not committed and will be replayed; a value already in local storage is
// not applied twice (Deduplicated). An acknowledgement that arrives later
// releases nothing. Call it once the processor's context is done.
func (s *State[T]) Abort() {
	s.aborted.Store(true)
	parts := s.partitions()
	var gens []*generation
	for _, ps := range parts {
		ps.genMu.Lock()
		for _, g := range ps.gens {
			if g.err == nil {
				g.err = ErrStateAborted // no SetOffset for a late acknowledgement
			}
		}
		gens = append(gens, ps.gens...)
		ps.gens = nil
		ps.genMu.Unlock()
	}
	// The callbacks' emits wait for acknowledgements too (goka's
	// partitions wait for them), and a callback emitting into a full
	// buffer holds its partition's lock: fail what the producer holds.
	s.mu.Lock()
	producer := s.producer
	s.mu.Unlock()
	if a, ok := producer.(interface{ AbortBuffered() }); ok {
		a.AbortBuffered()
	}
	n := 0
	for _, g := range gens {
		for _, commit := range g.commits {
			commit(ErrStateAborted)
		}
		n += len(g.commits)
	}
	for _, ps := range parts {
		ps.mu.Lock()
		pending := ps.pending
		ps.pending = nil
		ps.mu.Unlock()
		for _, commit := range pending {
			commit(ErrStateAborted)
		}
		n += len(pending)
	}
	if n > 0 {
		s.log.Warn("state: stopping without waiting for the changelog; uncommitted messages will be replayed",
			"table", s.table, "messages", n)
	}
}

// Sized is a table value that estimates the memory it holds decoded
// (tables.Livestream, User and Entity are): the State's cache counts it
// against CacheBytes. A value that is not Sized counts DefaultValueBytes.
type Sized interface{ SizeBytes() int }

// DefaultValueBytes is what a decoded value that is not Sized counts
// against StateOptions.CacheBytes.
const DefaultValueBytes = 1 << 10

// cachedSize is the estimated memory of k's cache entry holding v: the
// value, the key and the entry's own bookkeeping (list element, entry,
// map slot).
func cachedSize[T any](k string, v *T) int64 {
	const entryBytes = 144
	n := int64(DefaultValueBytes)
	if sz, ok := any(v).(Sized); ok {
		n = int64(sz.SizeBytes())
	}
	return n + entryBytes + int64(len(k))
}

// lru is a least-recently-used map of decoded values bounded by keys and
// by their estimated bytes; one per partition, used under the partition's
// lock. Its byte budget is shared with the State's other partitions
// (budget, updated as partitions come), and its bytes are added to the
// State's total (cached).
type lru[T any] struct {
	cap    int
	budget *atomic.Int64
	cached *atomic.Int64
	bytes  int64
	order  *list.List
	items  map[string]*list.Element
}

type entry[T any] struct {
	key  string
	val  *T
	size int64 // estimated bytes of val when last measured
}

func newLRU[T any](capacity int, budget, cached *atomic.Int64) *lru[T] {
	return &lru[T]{cap: capacity, budget: budget, cached: cached, order: list.New(), items: map[string]*list.Element{}}
}

func (l *lru[T]) get(k string) (*T, bool) {
	e, ok := l.items[k]
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*entry[T]).val, true
}

// put caches v as k's value, measuring it if it is not the value cached
// already (a value changed in place is measured again by resize, once per
// flush), and evicts the least recently used values over the bounds.
func (l *lru[T]) put(k string, v *T) {
	if l.cap <= 0 {
		return
	}
	if e, ok := l.items[k]; ok {
		en := e.Value.(*entry[T])
		if en.val != v {
			en.val = v
			l.grow(en, cachedSize(k, v))
		}
		l.order.MoveToFront(e)
		l.evict()
		return
	}
	en := &entry[T]{key: k, val: v}
	l.items[k] = l.order.PushFront(en)
	l.grow(en, cachedSize(k, v))
	l.evict()
}

// resize measures k's value again if it is v (a flush wrote it: it may
// have grown since it was cached) and evicts over the bounds.
func (l *lru[T]) resize(k string, v *T) {
	if e, ok := l.items[k]; ok {
		if en := e.Value.(*entry[T]); en.val == v {
			l.grow(en, cachedSize(k, v))
			l.evict()
		}
	}
}

func (l *lru[T]) grow(en *entry[T], size int64) {
	d := size - en.size
	en.size = size
	l.bytes += d
	l.cached.Add(d)
}

// evict drops the least recently used values while the cache is over
// either bound; the most recent value stays, whatever its size.
func (l *lru[T]) evict() {
	budget := l.budget.Load()
	for l.order.Len() > 1 && (l.order.Len() > l.cap || l.bytes > budget) {
		l.drop(l.order.Back())
	}
}

func (l *lru[T]) drop(e *list.Element) {
	en := e.Value.(*entry[T])
	l.order.Remove(e)
	delete(l.items, en.key)
	l.bytes -= en.size
	l.cached.Add(-en.size)
}

func (l *lru[T]) remove(k string) {
	if e, ok := l.items[k]; ok {
		l.drop(e)
	}
}

// clear drops every value (a new assignment).
func (l *lru[T]) clear() {
	l.cached.Add(-l.bytes)
	l.bytes = 0
	l.order.Init()
	clear(l.items)
}

func (l *lru[T]) len() int { return l.order.Len() }
