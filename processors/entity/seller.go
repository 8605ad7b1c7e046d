package entity

import (
	"fmt"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
)

// Seller configures the seller embedding, kept by the seller entity's group
// from the seller-signals topic (events.SellerSignal): the content vectors
// of the seller's streams (from the livestream group, when a stream's vector
// is served) and the tastes of the users who buy from them (from the user
// group, on a buy). The seller's embedding (tables.Entity.Embedding) is
//
//	normalize((1−w)·content + w·buyers)
//
// where content and buyers are the unit directions of the two decayed sums
// and w = BuyerWeight. Cold start: no buyers → content only; no content →
// buyers only; neither → no embedding. A content vector of another model
// than the one the seller's content sum holds starts that sum over (a model
// change), and buyers' tastes of another dimension than the content are
// left out of the blend.
type Seller struct {
	// Signals is the seller-signals topic (keyed by seller_id).
	Signals goka.Stream
	// ContentHalfLife is the half-life of a stream's content in the
	// seller's content sum, in event time. Default 7 days.
	ContentHalfLife time.Duration
	// BuyerHalfLife is the half-life of a buyer's taste. Default 30 days.
	BuyerHalfLife time.Duration
	// BuyerWeight is w, in [0, 1]. Default 0.3; negative: 0 (content only).
	BuyerWeight float64
	// Model, if set, is the only model version whose content vectors are
	// accepted.
	Model string
}

func (s *Seller) defaults() error {
	if s.Signals == "" {
		return fmt.Errorf("entity: the seller embedding needs the seller-signals topic")
	}
	if s.ContentHalfLife == 0 {
		s.ContentHalfLife = 7 * 24 * time.Hour
	}
	if s.BuyerHalfLife == 0 {
		s.BuyerHalfLife = 30 * 24 * time.Hour
	}
	if s.ContentHalfLife < 0 || s.BuyerHalfLife < 0 {
		return fmt.Errorf("entity: negative seller half-life")
	}
	if s.BuyerWeight == 0 {
		s.BuyerWeight = 0.3
	}
	if s.BuyerWeight < 0 {
		s.BuyerWeight = 0
	}
	if s.BuyerWeight > 1 {
		return fmt.Errorf("entity: seller buyer weight %v above 1", s.BuyerWeight)
	}
	return nil
}

// Seller signal outcomes (Apply), also the events metric's outcome label.
const (
	SellerOK         = "ok"
	SellerOtherModel = "other_model" // a content vector not of Seller.Model: ignored
)

// Apply folds a seller signal into the seller's state and recomputes the
// embedding; it returns SellerOK or why the signal was ignored.
func (s *Seller) Apply(st *tables.Entity, sig *events.SellerSignal) string {
	unit := models.Normalized(sig.Vector)
	switch sig.Kind {
	case events.SellerContent:
		if s.Model != "" && sig.Model != s.Model {
			return SellerOtherModel
		}
		if sig.Model != st.ContentModel {
			st.Content, st.ContentModel = models.DecayedSum{}, sig.Model
		}
		st.Content.Add(unit, 1, sig.EventTime, s.ContentHalfLife)
	case events.SellerBuyer:
		st.Buyers.Add(unit, 1, sig.EventTime, s.BuyerHalfLife)
	}
	s.refresh(st)
	return SellerOK
}

// refresh recomputes the seller's embedding (see Seller).
func (s *Seller) refresh(st *tables.Entity) {
	content := st.Content.Unit()
	st.Embedding = models.Blend(content, st.Buyers.Unit(), float32(s.BuyerWeight))
	st.EmbeddingModel = ""
	if len(content) > 0 {
		st.EmbeddingModel = st.ContentModel
	}
}

// keeps reports that the sweep must keep an entity for its seller
// embedding: it had a seller signal within four of the longer half-life of
// the newest event its partition has seen (any source). An embedding's
// direction does not fade with age, only its weight against new signals, so
// a quiet seller keeps theirs until then.
func (s *Seller) keeps(st *tables.Entity, marks *features.Watermarks) bool {
	if s == nil {
		return false
	}
	last := st.Content.Time
	if st.Buyers.Time.After(last) {
		last = st.Buyers.Time
	}
	if len(st.Embedding) == 0 || last.IsZero() {
		return false
	}
	var latest time.Time
	for _, src := range events.InputTopics() {
		if m := marks.Of(src); m.After(latest) {
			latest = m
		}
	}
	return latest.Sub(last) <= 4*max(s.ContentHalfLife, s.BuyerHalfLife)
}

// onSellerSignal handles a record of the seller-signals topic.
func (p *processor) onSellerSignal(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	var sig events.SellerSignal
	var err error
	if len(raw) == 0 {
		err = fmt.Errorf("%w: empty value", events.ErrMalformed)
	} else if err = events.Decode(raw, &sig); err == nil && sig.SellerID != ctx.Key() {
		err = &events.ValidationError{Field: "key", Reason: fmt.Sprintf("Kafka key %q differs from seller_id %q", ctx.Key(), sig.SellerID)}
	}
	if err != nil {
		pipeline.DeadLetter(ctx, p.cfg.Metrics, raw, err)
		return
	}
	st := p.cache.Get(ctx)
	if st == nil {
		st = &tables.Entity{ID: ctx.Key()}
	}
	outcome := p.cfg.Seller.Apply(st, &sig)
	p.cfg.Metrics.Events.WithLabelValues(string(ctx.Group()), string(ctx.Topic()), outcome).Inc()
	if outcome == SellerOK {
		p.cache.Set(ctx, st)
	}
}
