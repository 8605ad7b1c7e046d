package events

import "time"

// TopicSellerSignals carries the inputs of sellers' embeddings (before any
// deployment prefix), keyed by seller_id: the content vectors of their
// streams (from the livestream group) and the tastes of their buyers (from
// the user group).
const TopicSellerSignals = "seller-signals"

// SellerSignalKind says what a seller signal carries.
type SellerSignalKind string

// Seller signal kinds.
const (
	// SellerContent is the content vector of one of the seller's streams,
	// sent when the livestream group accepts a vector for the stream's
	// current text.
	SellerContent SellerSignalKind = "content"
	// SellerBuyer is the taste of a user who bought from the seller, sent
	// by the user group on a buy signal (the taste before the purchase).
	SellerBuyer SellerSignalKind = "buyer"
)

// SellerSignal is one input of a seller's embedding (topic seller-signals,
// keyed by seller_id); the seller entity's group folds it into the seller's
// state (processors/entity).
type SellerSignal struct {
	SellerID     string           `json:"seller_id"`
	Kind         SellerSignalKind `json:"kind"`
	LivestreamID string           `json:"livestream_id"`
	// UserID is the buyer (kind buyer).
	UserID    string    `json:"user_id,omitempty"`
	EventTime time.Time `json:"event_time"`
	// Vector is the stream's content vector (kind content) or the buyer's
	// unit taste vector (kind buyer).
	Vector Vector `json:"vector"`
	// Model is the version of the model that made a content vector; a
	// buyer's taste has none (it mixes the content vectors of many streams).
	Model string `json:"model,omitempty"`
}

// Validate checks a seller signal.
func (s *SellerSignal) Validate() error {
	if err := checkID("seller_id", s.SellerID); err != nil {
		return err
	}
	if err := checkID("livestream_id", s.LivestreamID); err != nil {
		return err
	}
	switch s.Kind {
	case SellerContent:
		if s.Model == "" {
			return invalid("model", "required for kind content")
		}
	case SellerBuyer:
		if err := checkID("user_id", s.UserID); err != nil {
			return err
		}
	default:
		return invalid("kind", "%q is not one of content, buyer", s.Kind)
	}
	if s.EventTime.IsZero() {
		return invalid("event_time", "required")
	}
	return checkVector("vector", s.Vector)
}

func (*SellerSignal) internalRecord() {}
