// Package livestream is the goka group that joins the four livestream-keyed
// input streams (metadata, viewing, chat, auctions), co-partitioned, into one
// state value per livestream: metadata and status, concurrent viewers,
// windowed engagement metrics on event time and the content embedding. It
// emits user-keyed engagement signals, enriched with the stream's embedding
// and category, for the user group.
package livestream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
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
	// CacheSize is how many decoded stream states are cached per
	// partition. Default 10000.
	CacheSize int
	Metrics   *pipeline.Metrics
	Logger    *slog.Logger
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
	if c.ViewerTimeout == 0 {
		c.ViewerTimeout = 2 * time.Minute
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
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
	cfg   Config
	cache *pipeline.StateCache[tables.Livestream]
}

// New builds the group.
func New(cfg Config) (*pipeline.Group, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	p := &processor{cfg: cfg, cache: pipeline.NewStateCache[tables.Livestream](cfg.CacheSize)}
	t := cfg.Topics
	edges := []goka.Edge{
		goka.Input(t.Livestreams, new(codec.Bytes), p.onLivestream),
		goka.Input(t.Viewing, new(codec.Bytes), p.onViewing),
		goka.Input(t.Chat, new(codec.Bytes), p.onChat),
		goka.Input(t.Auctions, new(codec.Bytes), p.onAuction),
		goka.Output(t.UserSignals, tables.JSONCodec[events.UserSignal]{}),
		goka.Persist(tables.JSONCodec[tables.Livestream]{}),
	}
	for _, in := range t.Inputs() {
		edges = append(edges, goka.Output(pipeline.DLQ(in), new(codec.Bytes)))
	}
	for _, r := range cfg.Routes {
		edges = append(edges, goka.Output(r.Topic, tables.JSONCodec[events.Enriched]{}))
	}
	return &pipeline.Group{
		Graph:   goka.DefineGroup(cfg.Group, edges...),
		Options: []goka.ProcessorOption{goka.WithRebalanceCallback(p.cache.Reset)},
	}, nil
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
	if err != nil {
		pipeline.DeadLetter(ctx, p.cfg.Metrics, raw, err)
		return false
	}
	return true
}

// done stores the stream's new state and routes the event to the other
// entities that aggregate it.
func (p *processor) done(ctx goka.Context, st *tables.Livestream, source string, msg any, h *events.Header, ev any) {
	p.cache.Set(ctx, st)
	for _, r := range p.cfg.Routes {
		if !r.accepts(source) {
			continue
		}
		key := keyOf(r.KeyField, ev, st)
		if key == "" {
			continue
		}
		raw, _ := msg.([]byte)
		ctx.Emit(r.Topic, key, &events.Enriched{
			Source: source, EventID: h.EventID, EventTime: h.EventTime, LivestreamID: st.LivestreamID,
			SellerID: st.SellerID, Category: st.Category, Event: raw,
		})
	}
}

// keyOf is the value of a key field for an event, falling back to the
// stream's state for the fields the stream carries.
func keyOf(field string, ev any, st *tables.Livestream) string {
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

// observe folds the event into the windowed features and counts late drops.
func (p *processor) observe(ctx goka.Context, st *tables.Livestream, o features.Observation) {
	st.Events++
	outcome := "ok"
	if !p.cfg.Features.Apply(&st.Features, o) {
		st.LateDropped++
		outcome = "late"
		p.cfg.Metrics.LateDropped.WithLabelValues(string(ctx.Group()), string(ctx.Topic())).Inc()
	}
	p.cfg.Metrics.Events.WithLabelValues(string(ctx.Group()), string(ctx.Topic()), outcome).Inc()
}

func (p *processor) expireViewers(st *tables.Livestream) {
	// Judged on the viewing topic's own watermark, so how goka interleaves
	// the input topics does not matter.
	horizon := st.Features.SourceWatermark(events.TopicViewing).Add(-p.cfg.ViewerTimeout).UnixMilli()
	for u, seen := range st.Viewers {
		if seen < horizon {
			delete(st.Viewers, u)
		}
	}
}

func (p *processor) onLivestream(ctx goka.Context, msg any) {
	var ev events.Livestream
	if !p.decode(ctx, msg, &ev, &ev.Header) {
		return
	}
	st := p.state(ctx)
	if !ev.EventTime.Before(st.MetadataTime) {
		st.MetadataTime = ev.EventTime
		st.SellerID, st.Title, st.Category = ev.SellerID, ev.Title, ev.Category
		st.Tags, st.Language = ev.Tags, ev.Language
		if ev.Status == events.StatusLive && st.Status != events.StatusLive {
			st.LiveSince = ev.EventTime
		}
		if ev.Status == events.StatusEnded {
			st.EndedAt = ev.EventTime
			st.Viewers = nil
		}
		st.Status = ev.Status
		p.embed(ctx.Context(), st)
	}
	p.observe(ctx, st, features.Observation{Source: events.TopicLivestreams, Type: string(ev.Status), Time: ev.EventTime})
	p.done(ctx, st, events.TopicLivestreams, msg, &ev.Header, &ev)
}

// ContentText is the text of a stream that its content embedding encodes.
func ContentText(st *tables.Livestream) string {
	var b strings.Builder
	b.WriteString(st.Title)
	b.WriteString(". ")
	b.WriteString(strings.ReplaceAll(st.Category, "-", " "))
	if len(st.Tags) > 0 {
		b.WriteString(". ")
		b.WriteString(strings.Join(st.Tags, " "))
	}
	return b.String()
}

func (p *processor) embed(ctx context.Context, st *tables.Livestream) {
	if p.cfg.Embedder == nil {
		return
	}
	text := ContentText(st)
	version := p.cfg.Embedder.Version()
	if text == st.EmbeddedText && version == st.EmbeddingModel && len(st.Embedding) > 0 {
		return
	}
	start := time.Now()
	vecs, err := p.cfg.Embedder.Embed(ctx, []string{text})
	if err != nil || len(vecs) != 1 {
		p.cfg.Metrics.EmbedErrors.Inc()
		p.cfg.Logger.Warn("embedding livestream text failed; keeping the previous vector",
			"livestream_id", st.LivestreamID, "err", err)
		return
	}
	p.cfg.Metrics.Embeddings.Inc()
	p.cfg.Metrics.EmbedTime.Observe(time.Since(start).Seconds())
	st.Embedding, st.EmbeddingModel, st.EmbeddedText = vecs[0], version, text
}

func (p *processor) onViewing(ctx goka.Context, msg any) {
	var ev events.Viewing
	if !p.decode(ctx, msg, &ev, &ev.Header) {
		return
	}
	st := p.state(ctx)
	switch ev.Type {
	case events.ViewingJoin, events.ViewingHeartbeat:
		if st.Status != events.StatusEnded {
			if st.Viewers == nil {
				st.Viewers = map[string]int64{}
			}
			if seen := ev.EventTime.UnixMilli(); seen > st.Viewers[ev.UserID] {
				st.Viewers[ev.UserID] = seen
			}
		}
		p.signal(ctx, st, &ev.Header, ev.UserID, events.SignalWatch, 0)
	case events.ViewingLeave:
		if seen, ok := st.Viewers[ev.UserID]; ok && seen <= ev.EventTime.UnixMilli() {
			delete(st.Viewers, ev.UserID)
		}
	}
	p.observe(ctx, st, features.Observation{Source: events.TopicViewing, Type: string(ev.Type), Time: ev.EventTime})
	p.expireViewers(st)
	p.done(ctx, st, events.TopicViewing, msg, &ev.Header, &ev)
}

func (p *processor) onChat(ctx goka.Context, msg any) {
	var ev events.Chat
	if !p.decode(ctx, msg, &ev, &ev.Header) {
		return
	}
	st := p.state(ctx)
	p.signal(ctx, st, &ev.Header, ev.UserID, events.SignalChat, 0)
	p.observe(ctx, st, features.Observation{Source: events.TopicChat, Type: "message", Time: ev.EventTime})
	p.done(ctx, st, events.TopicChat, msg, &ev.Header, &ev)
}

func (p *processor) onAuction(ctx goka.Context, msg any) {
	var ev events.Auction
	if !p.decode(ctx, msg, &ev, &ev.Header) {
		return
	}
	st := p.state(ctx)
	switch ev.Type {
	case events.AuctionBid:
		p.signal(ctx, st, &ev.Header, ev.UserID, events.SignalBid, ev.Amount)
	case events.AuctionSold:
		p.signal(ctx, st, &ev.Header, ev.UserID, events.SignalBuy, ev.Amount)
	}
	p.observe(ctx, st, features.Observation{
		Source: events.TopicAuctions, Type: string(ev.Type), Time: ev.EventTime,
		Fields: map[string]float64{"amount": ev.Amount},
	})
	p.done(ctx, st, events.TopicAuctions, msg, &ev.Header, &ev)
}

// signal emits a user-keyed engagement signal enriched with the stream.
func (p *processor) signal(ctx goka.Context, st *tables.Livestream, h *events.Header, userID string, kind events.SignalKind, amount float64) {
	ctx.Emit(p.cfg.Topics.UserSignals, userID, &events.UserSignal{
		EventID:      h.EventID,
		EventTime:    h.EventTime,
		UserID:       userID,
		Kind:         kind,
		LivestreamID: st.LivestreamID,
		SellerID:     st.SellerID,
		Category:     st.Category,
		Amount:       amount,
		Embedding:    st.Embedding,
	})
}
