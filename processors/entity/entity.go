// Package entity is the generic goka group of an entity other than a
// livestream (e.g. seller): it consumes the enriched events the livestream
// group re-keys to the entity ("features-<entity>") and keeps the entity's
// windowed features.
package entity

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
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
	// CacheSize is how many decoded states are cached per partition.
	// Default 10000.
	CacheSize int
	Metrics   *pipeline.Metrics
	Logger    *slog.Logger
}

type processor struct {
	cfg   Config
	cache *pipeline.StateCache[tables.Entity]
}

// New builds the group.
func New(cfg Config) (*pipeline.Group, error) {
	if cfg.Group == "" || cfg.Input == "" || cfg.Features == nil {
		return nil, errors.New("entity: group, input and features are required")
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Metrics == nil {
		cfg.Metrics = pipeline.NewMetrics(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &processor{cfg: cfg, cache: pipeline.NewStateCache[tables.Entity](cfg.CacheSize)}
	return &pipeline.Group{
		Graph: goka.DefineGroup(cfg.Group,
			goka.Input(cfg.Input, new(codec.Bytes), p.onEvent),
			goka.Output(pipeline.DLQ(cfg.Input), new(codec.Bytes)),
			goka.Persist(tables.JSONCodec[tables.Entity]{}),
		),
		Options: []goka.ProcessorOption{goka.WithRebalanceCallback(p.cache.Reset)},
	}, nil
}

// Observe turns an enriched event into what the feature engine reads: its
// source, type and numeric fields.
func Observe(e *events.Enriched) (features.Observation, error) {
	var fields map[string]any
	if err := json.Unmarshal(e.Event, &fields); err != nil {
		return features.Observation{}, fmt.Errorf("%w: event: %v", events.ErrMalformed, err)
	}
	o := features.Observation{Source: e.Source, Time: e.EventTime, Fields: map[string]float64{}}
	switch e.Source {
	case events.TopicLivestreams:
		o.Type, _ = fields["status"].(string)
	case events.TopicChat:
		o.Type = "message"
	default:
		o.Type, _ = fields["type"].(string)
	}
	for k, v := range fields {
		if f, ok := v.(float64); ok {
			o.Fields[k] = f
		}
	}
	return o, nil
}

func (p *processor) onEvent(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	var ev events.Enriched
	err := events.Decode(raw, &ev)
	var o features.Observation
	if err == nil {
		o, err = Observe(&ev)
	}
	if err != nil {
		pipeline.DeadLetter(ctx, p.cfg.Metrics, raw, err)
		return
	}
	st := p.cache.Get(ctx)
	if st == nil {
		st = &tables.Entity{ID: ctx.Key()}
	}
	st.Events++
	outcome := "ok"
	if !p.cfg.Features.Apply(&st.Features, o) {
		st.LateDropped++
		outcome = "late"
		p.cfg.Metrics.LateDropped.WithLabelValues(string(ctx.Group()), string(ctx.Topic())).Inc()
	}
	p.cfg.Metrics.Events.WithLabelValues(string(ctx.Group()), string(ctx.Topic()), outcome).Inc()
	p.cache.Set(ctx, st)
}
