// Package user is the goka group that keeps, per user, a taste embedding (a
// decayed weighted mean of the content embeddings of the streams the user
// watched, chatted in, bid in and bought from), category affinities and the
// recently engaged streams, from the user-keyed signals the livestream group
// emits.
package user

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/entity"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultGroup is the group name.
const DefaultGroup goka.Group = "user"

// DefaultWriteBuffer is Config.WriteBuffer's default: half goleveldb's,
// as a user's value is a few hundred bytes (a stream's, tens of KiB).
const DefaultWriteBuffer = 2 << 20

// Weights says how much each kind of signal moves a user's taste.
type Weights map[events.SignalKind]float64

// DefaultWeights: buying says more than bidding, bidding more than chatting,
// chatting more than watching (one watch signal per join or heartbeat).
func DefaultWeights() Weights {
	return Weights{events.SignalWatch: 1, events.SignalChat: 2, events.SignalBid: 4, events.SignalBuy: 8}
}

// Config configures the group.
type Config struct {
	Group       goka.Group
	UserSignals goka.Stream
	Weights     Weights
	// HalfLife of taste and category affinity. Default 24h.
	HalfLife time.Duration
	// Features are the user entity's windowed features, fed by the events
	// the user-signals records carry (events.UserSignal.Event); nil: none.
	Features *features.Set
	// Audience, if set, is the topic (keyed by livestream_id) to which the
	// user's taste is sent when they start watching a stream, for the
	// stream's audience embedding (see audience.go).
	Audience goka.Stream
	// Sellers, if set, is the topic (keyed by seller_id) to which a buyer's
	// taste is sent when they buy, for the seller's embedding (seller.go).
	Sellers goka.Stream
	// CacheSize is how many decoded user states are cached per partition.
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
}

func (c *Config) defaults() error {
	if c.Group == "" || c.UserSignals == "" {
		return errors.New("user: group and user-signals topic required")
	}
	if c.Weights == nil {
		c.Weights = DefaultWeights()
	}
	for k, w := range c.Weights {
		if w < 0 {
			return fmt.Errorf("user: weight of %s is negative", k)
		}
	}
	if c.HalfLife == 0 {
		c.HalfLife = 24 * time.Hour
	}
	if c.WriteBuffer == 0 {
		c.WriteBuffer = DefaultWriteBuffer
	}
	if c.HalfLife < 0 {
		return errors.New("user: negative half-life")
	}
	if c.Metrics == nil {
		c.Metrics = pipeline.NewMetrics(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

type processor struct {
	cfg   Config
	cache *pipeline.State[tables.User]
	// signals recycles the decoded signal of a callback (*events.UserSignal):
	// none outlives its callback, as the state keeps copies of what it
	// needs (Apply) and emits are encoded before Emit returns.
	signals sync.Pool
	// The group's counters for its one input topic, looked up once
	// instead of by label values on every signal.
	okEvents, lateEvents, lateDropped prometheus.Counter
}

// New builds the group.
func New(cfg Config) (*pipeline.Group, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	p := &processor{cfg: cfg, cache: pipeline.NewState[tables.User](goka.GroupTable(cfg.Group), tables.UserCodec{},
		pipeline.StateOptions{CacheSize: cfg.CacheSize, CacheBytes: cfg.CacheBytes, WriteBuffer: cfg.WriteBuffer, FlushInterval: cfg.FlushInterval, Routing: cfg.Routing, Metrics: cfg.Metrics, Logger: cfg.Logger})}
	p.signals.New = func() any { return new(events.UserSignal) }
	group, topic := string(cfg.Group), string(cfg.UserSignals)
	p.okEvents = cfg.Metrics.Events.WithLabelValues(group, topic, "ok")
	p.lateEvents = cfg.Metrics.Events.WithLabelValues(group, topic, "late")
	p.lateDropped = cfg.Metrics.LateDropped.WithLabelValues(group, topic)
	edges := []goka.Edge{
		goka.Input(cfg.UserSignals, new(codec.Bytes), p.cache.Input(p.onSignal)),
		goka.Output(pipeline.DLQ(cfg.UserSignals), new(codec.Bytes)),
		goka.Persist(tables.UserCodec{}),
	}
	edges = append(edges, pipeline.RerouteOutputs(cfg.UserSignals)...)
	if cfg.Audience != "" {
		edges = append(edges, goka.Output(cfg.Audience, tables.JSONCodec[events.AudienceSignal]{}))
	}
	if cfg.Sellers != "" {
		edges = append(edges, goka.Output(cfg.Sellers, tables.JSONCodec[events.SellerSignal]{}))
	}
	return &pipeline.Group{
		Graph:   goka.DefineGroup(cfg.Group, edges...),
		Options: []goka.ProcessorOption{goka.WithRebalanceCallback(p.cache.Reset)},
		State:   p.cache,
	}, nil
}

// onSignal folds a user's record into the user's state: the event into
// the user's features, the signal into taste, category affinities and
// recent streams.
func (p *processor) onSignal(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	sig := p.signals.Get().(*events.UserSignal) // zero: see putSignal
	defer p.putSignal(sig)
	err := events.Decode(raw, sig)
	if err == nil && sig.UserID != ctx.Key() {
		err = &events.ValidationError{Field: "key", Reason: fmt.Sprintf("Kafka key %q differs from user_id %q", ctx.Key(), sig.UserID)}
	}
	var fev features.Event
	enriched := sig.Enriched()
	if err == nil && enriched != nil && p.cfg.Features != nil {
		fev, err = entity.Event(enriched)
	}
	if err != nil {
		pipeline.DeadLetter(ctx, p.cfg.Metrics, raw, err)
		return
	}
	st := p.cache.Get(ctx)
	if st == nil {
		st = &tables.User{UserID: ctx.Key()}
	}
	outcome := p.okEvents
	if enriched != nil && p.cfg.Features != nil && p.cfg.Features.ApplyEvent(&st.Features, fev).Dropped() {
		outcome = p.lateEvents
		p.lateDropped.Inc()
	}
	if sig.Kind != "" {
		audience := AudienceSignal(st, sig)
		seller := SellerSignal(st, sig)
		Apply(st, sig, p.cfg.Weights, p.cfg.HalfLife)
		if audience != nil && p.cfg.Audience != "" {
			p.cache.Emit(ctx, p.cfg.Audience, audience.LivestreamID, audience)
		}
		if seller != nil && p.cfg.Sellers != "" {
			p.cache.Emit(ctx, p.cfg.Sellers, seller.SellerID, seller)
		}
	}
	p.cache.Set(ctx, st)
	outcome.Inc()
}

// putSignal recycles a decoded signal, zeroed: JSON decodes into what it
// is given, and a pooled signal should not hold its record's strings.
func (p *processor) putSignal(sig *events.UserSignal) {
	*sig = events.UserSignal{}
	p.signals.Put(sig)
}

// Apply folds one signal into a user's state.
func Apply(st *tables.User, sig *events.UserSignal, w Weights, halfLife time.Duration) {
	weight := w[sig.Kind]
	if len(sig.Embedding) > 0 {
		st.Taste.Add(sig.Embedding, weight, sig.EventTime, halfLife)
	}
	if sig.Category != "" {
		if st.Categories == nil {
			st.Categories = map[string]models.DecayedValue{}
		}
		c, ok := st.Categories[sig.Category]
		c.Add(weight, sig.EventTime, halfLife)
		if ok {
			st.Categories[sig.Category] = c
		} else {
			// A new key is a copy: the decoded signal's strings share
			// one allocation with the whole record, which a kept
			// substring would hold for as long as the state lives.
			st.Categories[strings.Clone(sig.Category)] = c
		}
	}
	kind := tables.InternKind(sig.Kind)
	if st.Signals == nil {
		st.Signals = map[events.SignalKind]int64{}
	}
	st.Signals[kind]++
	if sig.EventTime.After(st.LastEvent) {
		st.LastEvent = sig.EventTime
	}
	st.Recent = addRecent(st.Recent, tables.RecentStream{LivestreamID: sig.LivestreamID, Kind: kind, Time: sig.EventTime})
}

// addRecent keeps the newest engagement per stream, newest first, bounded.
// A stream new to the list gets a copy of its id (see Apply).
func addRecent(recent []tables.RecentStream, r tables.RecentStream) []tables.RecentStream {
	known := false
	for i, x := range recent {
		if x.LivestreamID == r.LivestreamID {
			if !r.Time.After(x.Time) {
				return recent
			}
			r.LivestreamID, known = x.LivestreamID, true
			recent = append(recent[:i], recent[i+1:]...)
			break
		}
	}
	i := 0
	for i < len(recent) && recent[i].Time.After(r.Time) {
		i++
	}
	if i >= tables.MaxRecent {
		return recent
	}
	if !known {
		r.LivestreamID = strings.Clone(r.LivestreamID)
	}
	recent = append(recent, tables.RecentStream{})
	copy(recent[i+1:], recent[i:])
	recent[i] = r
	if len(recent) > tables.MaxRecent {
		recent = recent[:tables.MaxRecent]
	}
	return recent
}
