// Package entity is the generic goka group of an entity other than a
// livestream (e.g. seller): it consumes the enriched events the livestream
// group re-keys to the entity ("features-<entity>") and keeps the entity's
// windowed features.
package entity

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/processors/livestream"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// Config configures one entity's group.
type Config struct {
	Group goka.Group
	// Input is the entity's enriched-event topic.
	Input    goka.Stream
	Features *features.Set
	// Seller, if set, keeps the seller embedding (entity "seller" only; see
	// seller.go).
	Seller *Seller
	// CacheSize is how many decoded states are cached per partition.
	// Default pipeline.DefaultCacheSize.
	CacheSize int
	// CacheBytes bounds the estimated memory of the decoded states
	// cached, all partitions of the process together. Default
	// pipeline.DefaultCacheBytes.
	CacheBytes int64
	// WriteBuffer is the goleveldb memtable of each table partition
	// (pipeline.StateOptions.WriteBuffer). Default DefaultWriteBuffer.
	WriteBuffer int
	// FlushInterval bounds how long a changed state waits in the
	// write-behind cache (pipeline.State); negative writes through.
	FlushInterval time.Duration
	// Routing checks every record's partition against its key's
	// (pipeline.Routing). Zero: no check.
	Routing pipeline.Routing
	Metrics *pipeline.Metrics
	Logger  *slog.Logger
	// Backfill, if set, is the coordinator of the group's feature
	// backfills, and BackfillTopic (needed with it) the topic of their
	// results, an input of the group (backfill.go).
	Backfill      *backfill.Coordinator
	BackfillTopic goka.Stream
}

// DefaultWriteBuffer is Config.WriteBuffer's default: a quarter of
// goleveldb's, as an entity (a seller) is written far less often than a
// stream or a user.
const DefaultWriteBuffer = 1 << 20

type processor struct {
	cfg   Config
	cache *pipeline.State[tables.Entity]
	marks pipeline.PartitionMarks
}

// New builds the group.
func New(cfg Config) (*pipeline.Group, error) {
	if cfg.Group == "" || cfg.Input == "" || cfg.Features == nil {
		return nil, errors.New("entity: group, input and features are required")
	}
	if (cfg.Backfill == nil) != (cfg.BackfillTopic == "") {
		return nil, errors.New("entity: a backfill needs both its coordinator and its topic")
	}
	if cfg.WriteBuffer == 0 {
		cfg.WriteBuffer = DefaultWriteBuffer
	}
	if cfg.Seller != nil {
		s := *cfg.Seller
		if err := s.defaults(); err != nil {
			return nil, err
		}
		cfg.Seller = &s
	}
	if cfg.Metrics == nil {
		cfg.Metrics = pipeline.NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &processor{cfg: cfg, cache: pipeline.NewState[tables.Entity](goka.GroupTable(cfg.Group), tables.EntityCodec{},
		pipeline.StateOptions{CacheSize: cfg.CacheSize, CacheBytes: cfg.CacheBytes, WriteBuffer: cfg.WriteBuffer, FlushInterval: cfg.FlushInterval, Routing: cfg.Routing, Metrics: cfg.Metrics, Logger: cfg.Logger})}
	edges := []goka.Edge{
		goka.Input(cfg.Input, new(codec.Bytes), p.cache.Input(p.onEvent)),
		goka.Output(pipeline.DLQ(cfg.Input), new(codec.Bytes)),
		goka.Persist(tables.EntityCodec{}),
		goka.Visitor(pipeline.SweepVisitor, p.cache.Visitor(p.sweep)),
	}
	edges = append(edges, pipeline.RerouteOutputs(cfg.Input)...)
	if cfg.BackfillTopic != "" {
		edges = append(edges, backfill.Input(cfg.BackfillTopic, cfg.Backfill, p.cache,
			func(st *tables.Entity) *features.State { return &st.Features }, p.cfg.Logger))
	}
	if cfg.Seller != nil {
		edges = append(edges,
			goka.Input(cfg.Seller.Signals, new(codec.Bytes), p.cache.Input(p.onSellerSignal)),
			goka.Output(pipeline.DLQ(cfg.Seller.Signals), new(codec.Bytes)))
		edges = append(edges, pipeline.RerouteOutputs(cfg.Seller.Signals)...)
	}
	return &pipeline.Group{
		Graph:   goka.DefineGroup(cfg.Group, edges...),
		Options: []goka.ProcessorOption{goka.WithRebalanceCallback(p.cache.Reset)},
		Sweep:   pipeline.SweepVisitor,
		State:   p.cache,
	}, nil
}

// sweep deletes an entity whose every feature has expired at its
// partition's watermarks.
func (p *processor) sweep(ctx goka.Context, _ any) {
	st := p.cache.Get(ctx)
	if st != nil && p.cfg.Features.Idle(&st.Features, p.marks.Of(ctx.Partition())) &&
		!p.cfg.Seller.keeps(st, p.marks.Of(ctx.Partition())) {
		p.cache.Delete(ctx)
		p.cfg.Metrics.IdleDeleted.WithLabelValues(string(ctx.Group())).Inc()
	}
}

// Event is an enriched event as the entity's feature definitions read it:
// the original event's fields plus the stream's seller_id and category.
func Event(e *events.Enriched) (features.Event, error) {
	ev, err := livestream.DecodeFeatureEvent(e.Source, e.Event, e.SellerID, e.Category)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", events.ErrMalformed, err)
	}
	return ev, nil
}

func (p *processor) onEvent(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	var ev events.Enriched
	err := events.Decode(raw, &ev)
	var fev features.Event
	if err == nil {
		fev, err = Event(&ev)
	}
	if err != nil {
		pipeline.DeadLetter(ctx, p.cfg.Metrics, raw, err)
		return
	}
	p.marks.Of(ctx.Partition()).Observe(ev.Source, ev.EventTime)
	st := p.cache.Get(ctx)
	if st == nil {
		st = &tables.Entity{ID: ctx.Key()}
	}
	st.Events++
	outcome := "ok"
	if p.features(ctx).ApplyEvent(&st.Features, fev).Dropped() {
		st.LateDropped++
		outcome = "late"
		p.cfg.Metrics.LateDropped.WithLabelValues(string(ctx.Group()), string(ctx.Topic())).Inc()
	}
	p.warm(ctx, st)
	p.cfg.Metrics.Events.WithLabelValues(string(ctx.Group()), string(ctx.Topic()), outcome).Inc()
	p.cache.Set(ctx, st)
}
