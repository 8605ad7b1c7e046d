package livestream

import (
	"fmt"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
)

// Blend configures asynchronous embedding: content vectors arrive from the
// embedding worker (processors/embedding) instead of being computed in the
// callback, and the served vector blends them with the stream's audience.
//
// The served vector (tables.Livestream.Embedding) is
//
//	normalize((1−w)·content + w·audience)
//
// where content is the newest vector from the worker whose text hash equals
// the hash of the stream's current text, audience the unit direction of the
// decayed sum of its viewers' tastes, and w = AudienceWeight. Cold start:
// no audience → content only; no (matching) content → audience only;
// neither → the previous served vector stays (a title change keeps the old
// vector until the new one arrives, typically within the worker's batch
// delay) or, for a new stream, none.
type Blend struct {
	// AudienceWeight is w, in [0, 1]. Default 0.3; negative: 0 (content only).
	AudienceWeight float64
	// AudienceHalfLife is the half-life of a viewer's weight in the audience
	// embedding, in event time. Default 30m.
	AudienceHalfLife time.Duration
	// Model, if set, is the only model version whose vectors are accepted:
	// during a model change the previous worker's vectors are ignored.
	Model string
}

func (b *Blend) defaults() error {
	if b.AudienceWeight == 0 {
		b.AudienceWeight = 0.3
	}
	if b.AudienceWeight < 0 {
		b.AudienceWeight = 0
	}
	if b.AudienceWeight > 1 {
		return fmt.Errorf("livestream: audience weight %v above 1", b.AudienceWeight)
	}
	if b.AudienceHalfLife == 0 {
		b.AudienceHalfLife = 30 * time.Minute
	}
	if b.AudienceHalfLife < 0 {
		return fmt.Errorf("livestream: negative audience half-life")
	}
	return nil
}

// VectorMetrics count what the group does with vectors and audience
// signals (apart from livefeed_processor_events_total, which counts input
// events; bad records are dead-lettered and counted there as usual).
type VectorMetrics struct {
	Vectors  *prometheus.CounterVec // outcome (served, pending, stale, …)
	Audience *prometheus.CounterVec // outcome (ok, expired)
}

// NewVectorMetrics creates the metrics and registers them with reg (if not
// nil).
func NewVectorMetrics(reg prometheus.Registerer) *VectorMetrics {
	m := &VectorMetrics{
		Vectors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_livestream_vectors_total",
			Help: "Content vectors from the embedding worker handled by the livestream group, by outcome.",
		}, []string{"outcome"}),
		Audience: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "livefeed_livestream_audience_signals_total",
			Help: "Viewers' tastes folded into streams' audience embeddings, by outcome.",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.Vectors, m.Audience)
	}
	return m
}

// Vector outcomes (ApplyVector), also the metric label.
const (
	VectorServed     = "served"      // matches the current text: served now
	VectorPending    = "pending"     // newer than what the stream has, text not (yet) current
	VectorStale      = "stale"       // older than the vector the stream has: ignored
	VectorOtherModel = "other_model" // not Blend.Model: ignored
	VectorEnded      = "ended"       // the stream ended: ignored (it may be swept already)
	VectorExpired    = "expired"     // an unknown stream older than the retention: ignored
)

// ApplyVector folds a content vector from the embedding worker into the
// stream's state and returns what became of it. A vector older (by the
// event time of the metadata it embedded) than the stream's is ignored, so a
// vector of an old title never replaces a newer one; a newer vector whose
// text is not the stream's current text is kept but not served (the
// metadata it belongs to may not be processed yet: goka reads topics
// independently).
func (u *Updater) ApplyVector(st *tables.Livestream, v *events.LivestreamVector) string {
	b := u.Blend
	if b == nil {
		return VectorOtherModel
	}
	if b.Model != "" && v.Model != b.Model {
		return VectorOtherModel
	}
	if st.Status == events.StatusEnded {
		return VectorEnded
	}
	sameModel := v.Model == st.ContentModel
	if sameModel && v.EventTime.Before(st.ContentTime) {
		return VectorStale
	}
	st.Content, st.ContentHash, st.ContentModel, st.ContentTime = v.Vector, v.TextHash, v.Model, v.EventTime
	u.refresh(st)
	if st.ContentHash == events.TextHash(ContentText(st)) {
		return VectorServed
	}
	return VectorPending
}

// ApplyAudience folds a viewer's taste into the stream's audience embedding.
func (u *Updater) ApplyAudience(st *tables.Livestream, s *events.AudienceSignal) {
	if u.Blend == nil {
		return
	}
	st.Audience.Add(models.Normalized(s.Taste), 1, s.EventTime, u.Blend.AudienceHalfLife)
	u.refresh(st)
}

// matchedContent is the stream's content vector if it embeds the current
// text. In synchronous mode (no worker) it is the embedded vector.
func (u *Updater) matchedContent(st *tables.Livestream) events.Vector {
	if u.Blend == nil {
		return st.Embedding
	}
	if len(st.Content) == 0 || st.ContentHash != events.TextHash(ContentText(st)) {
		return nil
	}
	return st.Content
}

// refresh recomputes the served vector (see Blend).
func (u *Updater) refresh(st *tables.Livestream) {
	content := u.matchedContent(st)
	v := models.Blend(content, st.Audience.Unit(), float32(u.Blend.AudienceWeight))
	if len(v) == 0 {
		return
	}
	st.Embedding = v
	if len(content) > 0 {
		st.EmbeddingModel, st.EmbeddedText = st.ContentModel, ContentText(st)
	}
}

// onVector handles a record of the vectors topic.
func (p *processor) onVector(ctx goka.Context, msg any) {
	var v events.LivestreamVector
	if !p.decodeOther(ctx, msg, &v, &v.LivestreamID) {
		return
	}
	if p.unknownAndExpired(ctx, v.EventTime) {
		p.cfg.VectorMetrics.Vectors.WithLabelValues(VectorExpired).Inc()
		return
	}
	st := p.state(ctx)
	outcome := p.updater.ApplyVector(st, &v)
	p.cfg.VectorMetrics.Vectors.WithLabelValues(outcome).Inc()
	if outcome == VectorServed || outcome == VectorPending {
		p.cache.Set(ctx, st)
	}
	if outcome == VectorServed {
		p.sendSellerContent(ctx, st)
	}
	if outcome == VectorServed {
		// What makes a stream searchable: write it without waiting for the
		// write-behind flush interval (vectors are as rare as metadata).
		p.cache.FlushNow(ctx)
	}
}

// sendSellerContent sends the stream's served content vector to its
// seller's embedding (Config.Sellers), if it has a seller.
func (p *processor) sendSellerContent(ctx goka.Context, st *tables.Livestream) {
	if p.cfg.Sellers == "" || st.SellerID == "" || len(p.updater.matchedContent(st)) == 0 {
		return
	}
	p.cache.Emit(ctx, p.cfg.Sellers, st.SellerID, &events.SellerSignal{
		SellerID: st.SellerID, Kind: events.SellerContent, LivestreamID: st.LivestreamID,
		EventTime: st.ContentTime, Vector: st.Content, Model: st.ContentModel,
	})
}

// servedContent identifies the content vector the stream serves now ("" if
// none), for sellerContentOnMetadata.
func (p *processor) servedContent(ctx goka.Context) string {
	if p.cfg.Sellers == "" {
		return ""
	}
	st := p.cache.Get(ctx)
	if st == nil || len(p.updater.matchedContent(st)) == 0 {
		return ""
	}
	return st.ContentModel + "/" + st.ContentHash
}

// sellerContentOnMetadata sends the stream's content to its seller when a
// metadata event made a vector that arrived before it (kept pending: goka
// reads the topics independently) the served one; before is servedContent
// before the event.
func (p *processor) sellerContentOnMetadata(ctx goka.Context, before string) {
	if p.cfg.Sellers == "" || p.servedContent(ctx) == before {
		return
	}
	if st := p.cache.Get(ctx); st != nil {
		p.sendSellerContent(ctx, st)
	}
}

// onAudience handles a record of the audience-signals topic.
func (p *processor) onAudience(ctx goka.Context, msg any) {
	var s events.AudienceSignal
	if !p.decodeOther(ctx, msg, &s, &s.LivestreamID) {
		return
	}
	if p.unknownAndExpired(ctx, s.EventTime) {
		p.cfg.VectorMetrics.Audience.WithLabelValues(VectorExpired).Inc()
		return
	}
	st := p.state(ctx)
	p.updater.ApplyAudience(st, &s)
	p.cfg.VectorMetrics.Audience.WithLabelValues("ok").Inc()
	p.cache.Set(ctx, st)
}

// unknownAndExpired reports that the key has no state and t is older than
// the partition's watermark minus the retention: a vector or audience
// signal for a stream that was swept (or would be) must not bring it back as
// a stub. A vector that merely arrives before its stream's metadata (goka
// reads topics independently) is recent and is kept.
func (p *processor) unknownAndExpired(ctx goka.Context, t time.Time) bool {
	if p.cache.Get(ctx) != nil {
		return false
	}
	marks := p.marks.Of(ctx.Partition())
	var latest time.Time
	for _, src := range events.InputTopics() {
		if m := marks.Of(src); m.After(latest) {
			latest = m
		}
	}
	return latest.Sub(t) > p.retention
}

// decodeOther decodes a record of a topic the group itself (or the user
// group) derives, checking that its key is the stream it names; a bad
// record is dead-lettered.
func (p *processor) decodeOther(ctx goka.Context, msg any, v events.Validator, id *string) bool {
	raw, _ := msg.([]byte)
	var err error
	if len(raw) == 0 {
		err = fmt.Errorf("%w: empty value", events.ErrMalformed)
	} else if err = events.Decode(raw, v); err == nil && *id != ctx.Key() {
		err = &events.ValidationError{Field: "key", Reason: fmt.Sprintf("Kafka key %q differs from livestream_id %q", ctx.Key(), *id)}
	}
	if err != nil {
		pipeline.DeadLetter(ctx, p.cfg.Metrics, raw, err)
		return false
	}
	return true
}
