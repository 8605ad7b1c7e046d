package events

import "time"

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

// UserSignal is a user-keyed engagement signal (topic user-signals), emitted by
// the livestream processor and enriched with what it knows of the stream.
type UserSignal struct {
	EventID      string     `json:"event_id"`
	EventTime    time.Time  `json:"event_time"`
	UserID       string     `json:"user_id"`
	Kind         SignalKind `json:"kind"`
	LivestreamID string     `json:"livestream_id"`
	SellerID     string     `json:"seller_id,omitempty"`
	Category     string     `json:"category,omitempty"`
	Amount       float64    `json:"amount,omitempty"`
	// Embedding is the stream's content vector at the time of the signal
	// (empty while the stream has no metadata yet).
	Embedding Vector `json:"embedding,omitempty"`
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
	default:
		return invalid("kind", "%q is not one of watch, chat, bid, buy", s.Kind)
	}
	return nil
}
