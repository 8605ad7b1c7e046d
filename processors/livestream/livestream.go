// Package livestream is the goka group that joins the four livestream-keyed
// input streams (metadata, viewing, chat, auctions), co-partitioned, into one
// state value per livestream: metadata and status, concurrent viewers,
// windowed engagement metrics on event time and the content embedding. It
// emits user-keyed engagement signals, enriched with the stream's embedding
// and category, for the user group.
package livestream

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// DefaultGroup is the group name (and, with "-table", the table topic).
const DefaultGroup goka.Group = "livestream"

// Topics are the streams the group reads and writes.
type Topics struct {
	Livestreams goka.Stream
	Viewing     goka.Stream
	Chat        goka.Stream
	Auctions    goka.Stream
	UserSignals goka.Stream
}

// Inputs lists the input streams.
func (t Topics) Inputs() []goka.Stream {
	return []goka.Stream{t.Livestreams, t.Viewing, t.Chat, t.Auctions}
}

// Config configures the group.
type Config struct {
	Group  goka.Group
	Topics Topics
	// Features are the windowed metrics kept per stream.
	Features *features.Set
	// Embedder embeds a stream's title, category and tags when they change;
	// nil leaves streams without a content vector.
	Embedder models.Embedder
	// ViewerTimeout expires a viewer not seen (join or heartbeat) for this
	// long in event time. Default 2m.
	ViewerTimeout time.Duration
	// Routes re-key input events to other entities' groups.
	Routes []Route
	// FutureSkew is how far ahead of the wall clock an event time may be;
	// later events go to the dead-letter topic as "future". Default
	// events.DefaultFutureSkew (1h); negative turns the check off.
	FutureSkew time.Duration
	// Vectors, if set, is the topic of content vectors from the embedding
	// worker (processors/embedding): the callbacks then never embed, and
	// Embedder is ignored. Audience, if set (needs Vectors), is the topic of
	// viewers' tastes from the user group. Blend configures both
	// (vectors.go).
	Vectors  goka.Stream
	Audience goka.Stream
	Blend    Blend
	// Sellers, if set (needs Vectors), is the topic (keyed by seller_id) to
	// which a stream's content vector is sent when it is served, for the
	// seller's embedding (events.SellerSignal, kind content).
	Sellers goka.Stream
	// VectorMetrics count vector and audience outcomes (default:
	// unregistered).
	VectorMetrics *VectorMetrics
	// CacheSize is how many decoded stream states are cached per
	// partition. Default pipeline.DefaultCacheSize.
	CacheSize int
	// CacheBytes bounds the estimated memory of the decoded states
	// cached, all partitions of the process together. Default
	// pipeline.DefaultCacheBytes.
	CacheBytes int64
	// FlushInterval is how long a changed state may wait in the
	// write-behind cache before it is written to the table (see
	// pipeline.State); negative writes through. Default 100ms.
	FlushInterval time.Duration
	// Routing checks every record's partition against its key's and
	// re-routes or dead-letters a misrouted one (pipeline.Routing). Zero:
	// no check.
	Routing pipeline.Routing
	Metrics *pipeline.Metrics
	Logger  *slog.Logger
	// Backfill, if set, is the coordinator of the group's feature
	// backfills, and BackfillTopic (needed with it) the topic of their
	// results, an input of the group (backfill.go).
	Backfill      *backfill.Coordinator
	BackfillTopic goka.Stream
}

func (c *Config) defaults() error {
	if c.Group == "" {
		return errors.New("livestream: group required")
	}
	for _, s := range append(c.Topics.Inputs(), c.Topics.UserSignals) {
		if s == "" {
			return errors.New("livestream: every topic must be named")
		}
	}
	if c.Features == nil {
		return errors.New("livestream: features required")
	}
	if c.Sellers != "" && c.Vectors == "" {
		return errors.New("livestream: the sellers topic needs the vectors topic (asynchronous embedding)")
	}
	if c.Audience != "" && c.Vectors == "" {
		return errors.New("livestream: the audience topic needs the vectors topic (asynchronous embedding)")
	}
	if (c.Backfill == nil) != (c.BackfillTopic == "") {
		return errors.New("livestream: a backfill needs both its coordinator and its topic")
	}
	if err := c.Blend.defaults(); err != nil {
		return err
	}
	if c.VectorMetrics == nil {
		c.VectorMetrics = NewVectorMetrics(nil)
	}
	if c.ViewerTimeout == 0 {
		c.ViewerTimeout = 2 * time.Minute
	}
	if c.Metrics == nil {
		c.Metrics = pipeline.NewMetrics(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Route sends the input events of some sources, enriched with the stream's
// seller and category, to the topic of another entity, keyed by KeyField
// (user_id, seller_id, category, auction_id or livestream_id). An event
// without that key is not routed.
type Route struct {
	Entity   string
	KeyField string
	Topic    goka.Stream
	Sources  []string
}

func (r Route) accepts(source string) bool {
	for _, s := range r.Sources {
		if s == source {
			return true
		}
	}
	return false
}

// Table is the group table of a group.
func Table(g goka.Group) goka.Table { return goka.GroupTable(g) }

type processor struct {
	cfg     Config
	cache   *pipeline.State[tables.Livestream]
	updater *Updater
	marks   pipeline.PartitionMarks
	// retention is the longest window plus its lateness: how long after
	// its end a stream's state can still change a value.
	retention time.Duration
	// userRoute is the route to the user-signals topic (the user entity's
	// features), if any: its events ride on the user's signal record
	// (emitUser). routes are the others, to enriched-event topics.
	userRoute *Route
	routes    []Route
	// nextMetadataLog is when (Unix nanoseconds) an event before its
	// stream's metadata may be logged again (beforeMetadata).
	nextMetadataLog atomic.Int64
	// liveUpdaters are p.updater with fewer features, for records before
	// a backfill's split (backfill.go), by *features.Set.
	liveUpdaters sync.Map
}

// metadataLogEvery is how often, at most, the group logs an event applied
// before its stream's metadata.
const metadataLogEvery = time.Minute

// beforeMetadata counts, and logs at most once per metadataLogEvery, an
// event applied to a stream whose livestream record has not been
// processed: routes keyed by seller_id or category cannot reach it. goka
// reads a partition's topics independently, so a backlog (a restart after
// downtime, a burst) can deliver a stream's first auctions before its
// metadata although the metadata is older.
func (p *processor) beforeMetadata(ctx goka.Context, st *tables.Livestream) {
	p.cfg.Metrics.BeforeMetadata.WithLabelValues(string(ctx.Group()), string(ctx.Topic())).Inc()
	now := time.Now().UnixNano()
	next := p.nextMetadataLog.Load()
	if now < next || !p.nextMetadataLog.CompareAndSwap(next, now+int64(metadataLogEvery)) {
		return
	}
	p.cfg.Logger.Warn("event before its stream's metadata: routes keyed by seller_id or category skip it; "+
		"expected only while a backlog is read out of order across topics (livefeed_events_before_stream_metadata_total)",
		"group", ctx.Group(), "topic", ctx.Topic(), "livestream_id", st.LivestreamID)
}

// New builds the group.
func New(cfg Config) (*pipeline.Group, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	p := &processor{cfg: cfg, cache: pipeline.NewState[tables.Livestream](Table(cfg.Group), tables.LivestreamCodec{},
		pipeline.StateOptions{CacheSize: cfg.CacheSize, CacheBytes: cfg.CacheBytes, FlushInterval: cfg.FlushInterval, Routing: cfg.Routing, Metrics: cfg.Metrics, Logger: cfg.Logger})}
	for _, d := range cfg.Features.All() {
		p.retention = max(p.retention, d.Window.Size+d.Lateness)
	}
	for _, r := range cfg.Routes {
		if r.Topic == cfg.Topics.UserSignals {
			p.userRoute = &r
		} else {
			p.routes = append(p.routes, r)
		}
	}
	p.updater = &Updater{Features: cfg.Features, ViewerTimeout: cfg.ViewerTimeout, Embedder: cfg.Embedder,
		Metrics: cfg.Metrics, Logger: cfg.Logger}
	if cfg.Vectors != "" {
		p.updater.Embedder, p.updater.Blend = nil, &p.cfg.Blend
	}
	t := cfg.Topics
	edges := []goka.Edge{
		goka.Input(t.Livestreams, new(codec.Bytes), p.cache.EventInput(p.onLivestream)),
		goka.Input(t.Viewing, new(codec.Bytes), p.cache.EventInput(p.onViewing)),
		goka.Input(t.Chat, new(codec.Bytes), p.cache.EventInput(p.onChat)),
		goka.Input(t.Auctions, new(codec.Bytes), p.cache.EventInput(p.onAuction)),
		goka.Output(t.UserSignals, tables.UserSignalCodec{}),
		goka.Persist(tables.LivestreamCodec{}),
	}
	for _, in := range t.Inputs() {
		edges = append(edges, goka.Output(pipeline.DLQ(in), new(codec.Bytes)))
	}
	edges = append(edges, pipeline.RerouteOutputs(t.Inputs()...)...)
	for _, r := range p.routes {
		edges = append(edges, goka.Output(r.Topic, tables.JSONCodec[events.Enriched]{}))
	}
	if cfg.Vectors != "" {
		edges = append(edges, goka.Input(cfg.Vectors, new(codec.Bytes), p.cache.EventInput(p.onVectorNow)),
			goka.Output(pipeline.DLQ(cfg.Vectors), new(codec.Bytes)))
		edges = append(edges, pipeline.RerouteOutputs(cfg.Vectors)...)
	}
	if cfg.Audience != "" {
		edges = append(edges, goka.Input(cfg.Audience, new(codec.Bytes), p.cache.Input(p.onAudience)),
			goka.Output(pipeline.DLQ(cfg.Audience), new(codec.Bytes)))
		edges = append(edges, pipeline.RerouteOutputs(cfg.Audience)...)
	}
	if cfg.Sellers != "" {
		edges = append(edges, goka.Output(cfg.Sellers, tables.JSONCodec[events.SellerSignal]{}))
	}
	if cfg.BackfillTopic != "" {
		edges = append(edges, backfill.Input(cfg.BackfillTopic, cfg.Backfill, p.cache,
			func(st *tables.Livestream) *features.State { return &st.Features }, p.cfg.Logger))
	}
	edges = append(edges, goka.Visitor(pipeline.SweepVisitor, p.cache.Visitor(p.sweep)))
	return &pipeline.Group{
		Graph:   goka.DefineGroup(cfg.Group, edges...),
		Options: []goka.ProcessorOption{goka.WithRebalanceCallback(p.cache.Reset)},
		Sweep:   pipeline.SweepVisitor,
		State:   p.cache,
	}, nil
}

// sweep deletes a stream that ended longer ago than its longest window plus
// lateness, at its partition's watermark: no event can change a value it
// serves any more, and ended streams are not served. (All-time features of
// an ended stream go with it.) Live or scheduled streams stay, however quiet.
func (p *processor) sweep(ctx goka.Context, _ any) {
	st := p.cache.Get(ctx)
	if st == nil || st.Status != events.StatusEnded {
		return
	}
	marks := p.marks.Of(ctx.Partition())
	var latest time.Time
	for _, src := range events.InputTopics() {
		if t := marks.Of(src); t.After(latest) {
			latest = t
		}
	}
	if latest.Sub(st.EndedAt) > p.retention {
		p.cache.Delete(ctx)
		p.cfg.Metrics.IdleDeleted.WithLabelValues(string(ctx.Group())).Inc()
	}
}

// decode parses msg into ev and checks its key; on failure the message goes
// to the dead-letter topic and false is returned.
func (p *processor) decode(ctx goka.Context, msg any, ev events.Validator, h *events.Header) bool {
	raw, _ := msg.([]byte)
	var err error
	if len(raw) == 0 {
		err = fmt.Errorf("%w: empty value", events.ErrMalformed)
	} else if err = events.Decode(raw, ev); err == nil {
		err = events.CheckKey(ctx.Key(), h)
	}
	if err == nil {
		// A far-future event would advance the stream's watermark and make
		// every real event late: judged by the wall clock. An ancient one
		// can feed no window: judged by the stream's watermark for the
		// event's source only, so a replay decides the same
		// (offline.Engine applies the same check).
		skew := p.cfg.FutureSkew
		if skew == 0 {
			skew = events.DefaultFutureSkew
		}
		if err = events.CheckFuture(h.EventTime, time.Now(), skew); err == nil {
			if st := p.cache.Get(ctx); st != nil {
				err = events.CheckAncient(h.EventTime, st.Features.SourceWatermark(events.Source(ev)), p.retention)
			}
		}
	}
	if err != nil {
		pipeline.DeadLetter(ctx, p.cfg.Metrics, raw, err)
		return false
	}
	return true
}

// done stores the stream's new state and routes the event to the other
// entities that aggregate it (the user's route is emitUser's).
func (p *processor) done(ctx goka.Context, st *tables.Livestream, source string, msg any, h *events.Header, ev any) {
	p.cache.Set(ctx, st)
	for _, r := range p.routes {
		if !r.accepts(source) {
			continue
		}
		key := KeyOf(r.KeyField, ev, st)
		if key == "" {
			continue
		}
		raw, _ := msg.([]byte)
		p.cache.Emit(ctx, r.Topic, key, &events.Enriched{
			Source: source, EventID: h.EventID, EventTime: h.EventTime, LivestreamID: st.LivestreamID,
			SellerID: st.SellerID, Category: st.Category, Event: raw,
		})
	}
}

// emitUser sends the event's user its one record: the engagement signal,
// with the event itself when a user feature reads its source (a route to
// the user-signals topic), or the event alone when it makes no signal.
func (p *processor) emitUser(ctx goka.Context, signal *events.UserSignal, st *tables.Livestream, source string, msg any, h *events.Header, ev any) {
	if r := p.userRoute; r != nil && r.accepts(source) {
		if userID := KeyOf(r.KeyField, ev, st); userID != "" {
			rec := signal
			if signal == nil || signal.UserID != userID {
				rec = &events.UserSignal{EventID: h.EventID, EventTime: h.EventTime, UserID: userID,
					LivestreamID: st.LivestreamID, SellerID: st.SellerID, Category: st.Category}
			}
			raw, _ := msg.([]byte)
			rec.Source, rec.Event = source, raw
			p.cache.Emit(ctx, p.cfg.Topics.UserSignals, userID, rec)
			if rec == signal {
				return
			}
		}
	}
	if signal != nil {
		p.cache.Emit(ctx, p.cfg.Topics.UserSignals, signal.UserID, signal)
	}
}

// KeyOf is the value of a key field for an event, falling back to the
// stream's state for the fields the stream carries.
func KeyOf(field string, ev any, st *tables.Livestream) string {
	switch field {
	case "livestream_id":
		return st.LivestreamID
	case "seller_id":
		return st.SellerID
	case "category":
		return st.Category
	case "user_id":
		switch e := ev.(type) {
		case *events.Viewing:
			return e.UserID
		case *events.Chat:
			return e.UserID
		case *events.Auction:
			return e.UserID
		}
	case "auction_id":
		if e, ok := ev.(*events.Auction); ok {
			return e.AuctionID
		}
	}
	return ""
}

func (p *processor) state(ctx goka.Context) *tables.Livestream {
	if v := p.cache.Get(ctx); v != nil {
		return v
	}
	return &tables.Livestream{LivestreamID: ctx.Key()}
}

// onVectorNow applies a content vector and writes the stream without
// waiting for the flush interval: a new vector is what makes a stream
// searchable.
func (p *processor) onVectorNow(ctx goka.Context, msg any) {
	p.onVector(ctx, msg)
	p.cache.FlushNow(ctx)
}

func (p *processor) onLivestream(ctx goka.Context, msg any) {
	var ev events.Livestream
	if p.decode(ctx, msg, &ev, &ev.Header) {
		served := p.servedContent(ctx)
		p.handle(ctx, msg, &ev, &ev.Header)
		p.sellerContentOnMetadata(ctx, served)
		// Metadata is rare and what makes a stream servable (live, its
		// category): write it without waiting for the flush interval.
		p.cache.FlushNow(ctx)
	}
}

func (p *processor) onViewing(ctx goka.Context, msg any) {
	var ev events.Viewing
	if p.decode(ctx, msg, &ev, &ev.Header) {
		p.handle(ctx, msg, &ev, &ev.Header)
	}
}

func (p *processor) onChat(ctx goka.Context, msg any) {
	var ev events.Chat
	if p.decode(ctx, msg, &ev, &ev.Header) {
		p.handle(ctx, msg, &ev, &ev.Header)
	}
}

func (p *processor) onAuction(ctx goka.Context, msg any) {
	var ev events.Auction
	if p.decode(ctx, msg, &ev, &ev.Header) {
		p.handle(ctx, msg, &ev, &ev.Header)
	}
}

// handle applies a decoded event to its stream, emits the user signal, stores
// the state and routes the event to the other entities.
func (p *processor) handle(ctx goka.Context, msg any, ev any, h *events.Header) {
	st := p.state(ctx)
	res := p.updaterFor(ctx).Apply(ctx.Context(), st, ev)
	p.warm(ctx, st)
	p.marks.Of(ctx.Partition()).Observe(res.Source, h.EventTime)
	outcome := "ok"
	if res.Late {
		outcome = "late"
		p.cfg.Metrics.LateDropped.WithLabelValues(string(ctx.Group()), string(ctx.Topic())).Inc()
	}
	p.cfg.Metrics.Events.WithLabelValues(string(ctx.Group()), string(ctx.Topic()), outcome).Inc()
	if st.MetadataTime.IsZero() {
		p.beforeMetadata(ctx, st)
	}
	p.emitUser(ctx, res.Signal, st, res.Source, msg, h, ev)
	p.done(ctx, st, res.Source, msg, h, ev)
}
