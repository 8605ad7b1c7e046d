// Package serving answers the feed service: goka views over the livestream
// and user tables, an in-memory index of live streams kept current from the
// livestream view's update callback, filtered k-NN and feature lookups over
// HTTP.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/serving/drift"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/livefeed/livefeed/serving/usershard"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Config configures the serving side.
type Config struct {
	Broker          *broker.Config
	LivestreamTable goka.Table
	UserTable       goka.Table
	// Features are the livestream features.
	Features *features.Set
	// Entities are the other entities with features, by name ("user" uses
	// UserTable; others their own table).
	Entities map[string]Entity
	// Embedder answers text queries; nil disables them (400).
	Embedder models.Embedder
	// Registerer receives the serving metrics; nil registers nothing.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Clock is the time windows are evaluated at. Default time.Now.
	Clock func() time.Time
	// DefaultK and MaxK bound result sizes. Defaults 20 and 200.
	DefaultK, MaxK int
	// QueriesFile holds the named queries (YAML, see serving/queries.yaml);
	// empty: the built-in serving/queries.yaml, minus any query that needs
	// a feature the feature set lacks.
	QueriesFile string
	// APIToken, when set, is the bearer token every /v1 request must carry
	// (401 otherwise); /healthz, /readyz, /metrics and /openapi.json stay
	// open. Never logged.
	APIToken string
	// MaxBodyBytes bounds request bodies (413 above). Default 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds each /v1 request (503 after). Default 5s.
	RequestTimeout time.Duration
	// MaxFilterValues bounds the values in a filter's sets (status,
	// category, language, exclude_sellers, exclude); MaxFilterRanges its
	// ranges. Defaults 256 and 16.
	MaxFilterValues, MaxFilterRanges int
	// MaxCandidates bounds the candidates fetched for re-ranking (k ×
	// overfetch). Default 2000.
	MaxCandidates int
	// Snapshot: local view state and index snapshots for fast restarts
	// (serving/snapshot.go); zero: off.
	Snapshot SnapshotConfig
	// UserPartitions: Shared splits the user table's partitions among
	// the replicas (userparts.go). Zero: every replica holds every user
	// in memory.
	UserPartitions UserPartitions
	// StaleAfter: a view staler than this is reported "stale" in /readyz
	// (staleness.go). Default DefaultStaleAfter; negative: never.
	StaleAfter time.Duration
	// MaxStaleness: when > 0, /readyz answers 503 while a view is staler
	// than this. Zero (the default): stale views stay ready and serve
	// their last state.
	MaxStaleness time.Duration
	// StalenessPoll is how often the tables' end offsets are read for
	// staleness. Default DefaultStalenessPoll.
	StalenessPoll time.Duration
	// Drift: feature monitoring, the served values' distributions against
	// a reference (serving/drift, drift_source.go). Zero: the defaults.
	Drift drift.Options
}

// Entity is an entity's table and features, for feature lookups.
type Entity struct {
	Table    goka.Table
	Features *features.Set
}

// Service is the serving side: views, index, HTTP handlers.
type Service struct {
	cfg     Config
	index   *index.Index
	streams *goka.View
	users   *goka.View
	// shard: the replica's user partitions (UserPartitions.Shared),
	// else nil (users is the view).
	shard   *usershard.Store
	others  map[string]*goka.View // entity views, except user
	metrics *metrics
	log     *slog.Logger
	clients broker.Clients
	queries *Queries
	// tokenHash is the SHA-256 of Config.APIToken; nil: no auth.
	tokenHash []byte
	restored  RestoreStats // how the index started (snapshot.go)
	// tracked are the views with their staleness (staleness.go);
	// lsTracker is the livestream view's.
	tracked   []*trackedView
	lsTracker *viewTracker
	now       func() time.Time // wall clock of staleness (not Config.Clock)
	// recoveredOnce: every view has recovered its table once; from then
	// on a view reconnecting after a broker fault serves its last state.
	recoveredOnce atomic.Bool
	// drift samples the served feature values (drift_source.go).
	drift *drift.Monitor
}

// New creates the views (the table topics must exist) and the index.
func New(cfg Config) (*Service, error) {
	if cfg.Broker == nil || cfg.Features == nil || cfg.LivestreamTable == "" || cfg.UserTable == "" {
		return nil, errors.New("serving: broker, features and both tables are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.DefaultK == 0 {
		cfg.DefaultK = 20
	}
	if cfg.MaxK == 0 {
		cfg.MaxK = 200
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.StalenessPoll <= 0 {
		cfg.StalenessPoll = DefaultStalenessPoll
	}
	cfg.limitDefaults()
	queries, err := loadQueries(cfg.QueriesFile, cfg.Features, cfg.MaxK, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:       cfg,
		metrics:   newMetrics(cfg.Registerer),
		log:       cfg.Logger.With("component", "serving"),
		queries:   queries,
		tokenHash: hashToken(cfg.APIToken),
		now:       time.Now,
	}
	if s.index, err = s.newIndex(); err != nil {
		return nil, err
	}
	start, parts := s.now(), int(cfg.Broker.Partitions)
	s.lsTracker = newViewTracker(string(cfg.LivestreamTable), parts, start)
	s.streams, err = goka.NewView(cfg.Broker.Brokers, cfg.LivestreamTable, tables.LivestreamCodec{},
		cfg.Broker.ViewOptions(&s.clients, append(s.livestreamViewOptions(), viewBackoff(), goka.WithViewCallback(s.onLivestream))...)...)
	if err != nil {
		_ = s.clients.Close()
		return nil, fmt.Errorf("creating livestream view: %w", err)
	}
	s.tracked = append(s.tracked, &trackedView{view: s.streams, tracker: s.lsTracker})
	// newView creates a view of table whose updates are tracked for
	// staleness.
	newView := func(table goka.Table, codec goka.Codec) (*goka.View, error) {
		tr := newViewTracker(string(table), parts, start)
		v, err := goka.NewView(cfg.Broker.Brokers, table, codec,
			cfg.Broker.ViewOptions(&s.clients, viewBackoff(), goka.WithViewCallback(trackingCallback(tr)))...)
		if err == nil {
			s.tracked = append(s.tracked, &trackedView{view: v, tracker: tr})
		}
		return v, err
	}
	if cfg.UserPartitions.Shared {
		s.shard, err = s.newUserShard()
	} else {
		s.users, err = newView(cfg.UserTable, tables.UserCodec{})
	}
	if err != nil {
		_ = s.clients.Close()
		return nil, fmt.Errorf("creating user view: %w", err)
	}
	s.others = map[string]*goka.View{}
	for name, e := range cfg.Entities {
		if name == "user" {
			continue
		}
		v, err := newView(e.Table, tables.EntityCodec{})
		if err != nil {
			_ = s.clients.Close()
			return nil, fmt.Errorf("creating %s view: %w", name, err)
		}
		s.others[name] = v
	}
	if err := s.newDrift(); err != nil {
		_ = s.clients.Close()
		return nil, err
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(newStalenessCollector(s), s.drift)
	}
	return s, nil
}

// viewBackoff makes a view that lost its partition's leader (a broker
// fault) reconnect at once, then after 1 s, 2 s, … at most 5 s, instead of
// goka's 10 s steps up to 2 minutes: the view serves its last state
// meanwhile, and every second of backoff is a second of staleness.
func viewBackoff() goka.ViewOption {
	return goka.WithViewBackoffBuilder(func() (goka.Backoff, error) {
		return goka.NewSimpleBackoff(time.Second, 5*time.Second), nil
	})
}

// onLivestream keeps the index current: every table update (during recovery
// and live) re-indexes the stream; a deleted or ended stream leaves it. A
// key in a partition it does not map to stays out (misplaced).
func (s *Service) onLivestream(ctx goka.UpdateContext, st storage.Storage, key string, value []byte) error {
	if err := goka.DefaultUpdate(ctx, st, key, value); err != nil {
		return err
	}
	defer s.lsTracker.applied(ctx.Partition(), ctx.Offset(), ctx.Timestamp())
	defer s.index.MarkOffset(ctx.Partition(), ctx.Offset()) // for snapshots
	if s.misplaced(ctx.Partition(), key) {
		s.index.Delete(ctx.Partition(), key)
		s.metrics.indexUpdates.WithLabelValues("misplaced").Inc()
		return nil
	}
	if value == nil {
		s.index.Delete(ctx.Partition(), key)
		s.metrics.indexUpdates.WithLabelValues("delete").Inc()
		return nil
	}
	ls, err := tables.DecodeLivestream(value)
	if err != nil {
		// A value we cannot read must not stop the view; the stream stays out.
		s.log.Warn("skipping undecodable livestream state", "key", key, "partition", ctx.Partition(), "err", err)
		s.metrics.indexUpdates.WithLabelValues("undecodable").Inc()
		s.index.Delete(ctx.Partition(), key)
		return nil
	}
	s.index.Upsert(ctx.Partition(), index.ItemFrom(ls))
	s.metrics.indexUpdates.WithLabelValues("upsert").Inc()
	return nil
}

// misplaced reports whether key is stored in a partition of a table other
// than the one it maps to under Kafka's default partitioner (murmur2): an
// orphan a record produced with another partitioner made there before the
// processors checked partitions (processors/pipeline route.go), or a table
// written by a foreign tool. Lookups never see such a copy — a view's Get
// hashes the key like the processors (broker.NewHasher) and reads only the
// partition it maps to — and the index must not either, or the copy would
// stand beside or for the real stream.
func (s *Service) misplaced(partition int32, key string) bool {
	n := s.cfg.Broker.Partitions
	return n > 1 && broker.PartitionOf(key, n) != partition
}

// dropMisplaced removes misplaced streams from an index restored from a
// snapshot or a view's local storage.
func (s *Service) dropMisplaced(ix *index.Index) {
	for p := range s.cfg.Broker.Partitions {
		for _, id := range ix.IDs(p) {
			if s.misplaced(p, id) {
				ix.Delete(p, id)
			}
		}
	}
}

// Run runs both views until ctx is done, then closes their Kafka clients.
// A Service runs once.
func (s *Service) Run(ctx context.Context) error {
	defer s.clients.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.streams.Run(ctx) })
	g.Go(func() error { return s.snapshotLoop(ctx) })
	g.Go(func() error { return s.pollStaleness(ctx) })
	g.Go(func() error { return s.drift.Run(ctx) })
	g.Go(func() error { return s.runUsers(ctx) })
	for _, v := range s.others {
		g.Go(func() error { return v.Run(ctx) })
	}
	g.Go(func() error {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				s.metrics.indexed.Set(float64(s.index.Len()))
			}
		}
	})
	// The views have stopped: the index reflects exactly its marked
	// offsets. Snapshot it for the next start (snapshot.go).
	return errors.Join(g.Wait(), s.SaveSnapshot())
}

// Ready reports whether every view has recovered its table and still runs.
// A view that recovered once stays ready while it reconnects after a broker
// fault: it serves its last state, and /readyz reports how stale that is
// (staleness.go).
func (s *Service) Ready() bool {
	if s.recoveredOnce.Load() {
		for _, tv := range s.tracked {
			if tv.view.CurrentState() == goka.ViewStateIdle {
				return false
			}
		}
		return true
	}
	for _, tv := range s.tracked {
		if !tv.view.Recovered() {
			return false
		}
	}
	if s.shard != nil && !s.shard.Ready() {
		return false
	}
	s.recoveredOnce.Store(true)
	return true
}

// EntityState returns an entity's state, nil if unknown; ok is false for an
// entity without features.
func (s *Service) EntityState(entity, id string) (st *tables.Entity, ok bool, err error) {
	v, ok := s.others[entity]
	if !ok {
		return nil, false, nil
	}
	val, err := v.Get(id)
	if err != nil {
		return nil, true, fmt.Errorf("reading %s %s: %w", entity, id, err)
	}
	st, _ = val.(*tables.Entity)
	return st, true, nil
}

// Index exposes the index (benchmarks, tests).
func (s *Service) Index() *index.Index { return s.index }

// User returns a user's state, nil if unknown.
func (s *Service) User(id string) (*tables.User, error) {
	if s.shard != nil {
		return s.shardUser(id)
	}
	v, err := s.users.Get(id)
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", id, err)
	}
	u, _ := v.(*tables.User)
	return u, nil
}

// Livestream returns a stream's state, nil if unknown: the value in the
// partition id maps to (a misplaced copy elsewhere is never read).
func (s *Service) Livestream(id string) (*tables.Livestream, error) {
	v, err := s.streams.Get(id)
	if err != nil {
		return nil, fmt.Errorf("reading livestream %s: %w", id, err)
	}
	l, _ := v.(*tables.Livestream)
	return l, nil
}
