package events

import (
	"encoding/json"
	"time"
)

// SignalKind is the kind of engagement a user showed with a livestream.
type SignalKind string

// Signal kinds, weighted by the user processor.
const (
	SignalWatch SignalKind = "watch" // a join or a heartbeat: the user is watching
	SignalChat  SignalKind = "chat"
	SignalBid   SignalKind = "bid"
	SignalBuy   SignalKind = "buy"
)

// SignalKinds lists every kind.
func SignalKinds() []SignalKind {
	return []SignalKind{SignalWatch, SignalChat, SignalBid, SignalBuy}
}

// UserSignal is the one user-keyed record (topic user-signals) the
// livestream processor emits per event of a user, enriched with what it
// knows of the stream. It carries up to two things for the user group: the
// engagement signal (Kind set: taste, category affinity, recent streams),
// and the original event for the user's windowed features (Source and
// Event set, when a user feature reads the event's source). One record for
// both halves the records the user group reads, compared with a signal
// topic beside a features-user topic of enriched events.
type UserSignal struct {
	EventID   string    `json:"event_id"`
	EventTime time.Time `json:"event_time"`
	UserID    string    `json:"user_id"`
	// Kind is the engagement signal; empty when the record only carries
	// the event for the user's features.
	Kind         SignalKind `json:"kind,omitempty"`
	LivestreamID string     `json:"livestream_id"`
	SellerID     string     `json:"seller_id,omitempty"`
	Category     string     `json:"category,omitempty"`
	Amount       float64    `json:"amount,omitempty"`
	// Embedding is the stream's content vector at the time of the signal
	// (empty while the stream has no metadata yet).
	Embedding Vector `json:"embedding,omitempty"`
	// Source (the input topic, without prefix) and Event (the original
	// event) are set when the user's features read the event.
	Source string          `json:"source,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"`
}

// Enriched is the event the record carries for the user's features, nil
// if it carries none.
func (s *UserSignal) Enriched() *Enriched {
	if len(s.Event) == 0 {
		return nil
	}
	return &Enriched{Source: s.Source, EventID: s.EventID, EventTime: s.EventTime, LivestreamID: s.LivestreamID,
		SellerID: s.SellerID, Category: s.Category, Event: s.Event}
}

// Validate checks a user signal.
func (s *UserSignal) Validate() error {
	if err := checkID("event_id", s.EventID); err != nil {
		return err
	}
	if s.EventTime.IsZero() {
		return invalid("event_time", "required")
	}
	if err := checkID("user_id", s.UserID); err != nil {
		return err
	}
	if err := checkID("livestream_id", s.LivestreamID); err != nil {
		return err
	}
	switch s.Kind {
	case SignalWatch, SignalChat, SignalBid, SignalBuy:
	case "":
		if len(s.Event) == 0 {
			return invalid("kind", "required when the record carries no event")
		}
	default:
		return invalid("kind", "%q is not one of watch, chat, bid, buy", s.Kind)
	}
	if e := s.Enriched(); e != nil {
		return e.Validate()
	}
	if s.Source != "" {
		return invalid("event", "required with source %q", s.Source)
	}
	return nil
}
