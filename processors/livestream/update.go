package livestream

import (
	"context"
	"log/slog"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/tables"
)

// Updater applies input events to a stream's state: the pure core of the
// livestream group, shared with offline recomputation (no Kafka, no goka).
type Updater struct {
	Features      *features.Set
	ViewerTimeout time.Duration
	// Embedder embeds the stream's text when it changes; nil: no vectors.
	// Ignored when Blend is set.
	Embedder models.Embedder
	// Blend, if set, turns on asynchronous embedding: vectors come from the
	// embedding worker (ApplyVector) and viewers (ApplyAudience), never
	// from the callback (see vectors.go).
	Blend *Blend
	// Metrics and Logger are optional.
	Metrics *pipeline.Metrics
	Logger  *slog.Logger
}

// Result is what applying one event produced.
type Result struct {
	Source string // the event's input topic
	// Late reports that the event was later than every feature's allowed
	// lateness: dropped from the windows (and counted).
	Late bool
	// Signal is the user-keyed engagement signal to emit, if any.
	Signal *events.UserSignal
}

// Apply folds one decoded, valid input event (*events.Livestream, *Viewing,
// *Chat or *Auction) into the stream's state. Feature definitions read the
// decoded event's fields (typedEvent), with the stream's seller_id and
// category added.
func (u *Updater) Apply(ctx context.Context, st *tables.Livestream, ev any) Result {
	var res Result
	var h *events.Header
	switch e := ev.(type) {
	case *events.Livestream:
		res.Source, h = events.TopicLivestreams, &e.Header
		u.applyMetadata(ctx, st, e)
	case *events.Viewing:
		res.Source, h = events.TopicViewing, &e.Header
		switch e.Type {
		case events.ViewingJoin, events.ViewingHeartbeat:
			if st.Status != events.StatusEnded {
				st.SeeViewer(tables.ViewerKey(e.UserID), e.EventTime.UnixMilli())
			}
			res.Signal = u.signal(st, &e.Header, e.UserID, events.SignalWatch, 0)
		case events.ViewingLeave:
			k := tables.ViewerKey(e.UserID)
			if seen, ok := st.Viewers[k]; ok && seen <= e.EventTime.UnixMilli() {
				delete(st.Viewers, k)
			}
		}
	case *events.Chat:
		res.Source, h = events.TopicChat, &e.Header
		res.Signal = u.signal(st, &e.Header, e.UserID, events.SignalChat, 0)
	case *events.Auction:
		res.Source, h = events.TopicAuctions, &e.Header
		switch e.Type {
		case events.AuctionBid:
			res.Signal = u.signal(st, &e.Header, e.UserID, events.SignalBid, e.Amount)
		case events.AuctionSold:
			res.Signal = u.signal(st, &e.Header, e.UserID, events.SignalBuy, e.Amount)
		}
	default:
		return res
	}
	st.Events++
	fev := &typedEvent{source: res.Source, header: h, ev: ev, sellerID: st.SellerID, category: st.Category}
	if u.Features.ApplyEvent(&st.Features, fev).Dropped() {
		st.LateDropped++
		res.Late = true
	}
	if res.Source == events.TopicViewing {
		u.expireViewers(st)
	}
	return res
}

func (u *Updater) applyMetadata(ctx context.Context, st *tables.Livestream, ev *events.Livestream) {
	if ev.EventTime.Before(st.MetadataTime) {
		return // last write wins by event time
	}
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
	if u.Blend != nil {
		u.refresh(st)
		return
	}
	u.embed(ctx, st)
}

func (u *Updater) expireViewers(st *tables.Livestream) {
	// Judged on the viewing topic's own watermark, so how goka interleaves
	// the input topics does not matter.
	st.ExpireViewers(st.Features.SourceWatermark(events.TopicViewing).Add(-u.ViewerTimeout).UnixMilli())
}

// ContentText is the text of a stream that its content embedding encodes.
func ContentText(st *tables.Livestream) string {
	return events.ContentText(st.Title, st.Category, st.Tags)
}

func (u *Updater) embed(ctx context.Context, st *tables.Livestream) {
	if u.Embedder == nil {
		return
	}
	text := ContentText(st)
	version := u.Embedder.Version()
	if text == st.EmbeddedText && version == st.EmbeddingModel && len(st.Embedding) > 0 {
		return
	}
	start := time.Now()
	vecs, err := u.Embedder.Embed(ctx, []string{text})
	if err != nil || len(vecs) != 1 {
		if u.Metrics != nil {
			u.Metrics.EmbedErrors.Inc()
		}
		if u.Logger != nil {
			u.Logger.Warn("embedding livestream text failed; keeping the previous vector",
				"livestream_id", st.LivestreamID, "err", err)
		}
		return
	}
	if u.Metrics != nil {
		u.Metrics.Embeddings.Inc()
		u.Metrics.EmbedTime.Observe(time.Since(start).Seconds())
	}
	st.Embedding, st.EmbeddingModel, st.EmbeddedText = vecs[0], version, text
}

// FeatureEvent is an input event as feature definitions read it: its JSON
// fields, plus the stream's seller_id and category where the event lacks
// them (the enrichment every re-keyed entity sees too).
func FeatureEvent(source string, raw []byte, sellerID, category string) (features.MapEvent, error) {
	ev, err := features.ParseJSONEvent(source, raw)
	if err != nil {
		return ev, err
	}
	if _, ok := ev.Fields["seller_id"]; !ok && sellerID != "" {
		ev.Fields["seller_id"] = sellerID
	}
	if _, ok := ev.Fields["category"]; !ok && category != "" {
		ev.Fields["category"] = category
	}
	return ev, nil
}

// signal is the user-keyed engagement signal of an event, enriched with the
// stream.
// It carries the stream's content vector (not the served blend, so tastes
// and audiences do not feed each other).
func (u *Updater) signal(st *tables.Livestream, h *events.Header, userID string, kind events.SignalKind, amount float64) *events.UserSignal {
	return &events.UserSignal{
		EventID:      h.EventID,
		EventTime:    h.EventTime,
		UserID:       userID,
		Kind:         kind,
		LivestreamID: st.LivestreamID,
		SellerID:     st.SellerID,
		Category:     st.Category,
		Amount:       amount,
		Embedding:    u.matchedContent(st),
	}
}
