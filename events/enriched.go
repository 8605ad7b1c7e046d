package events

import (
	"encoding/json"
	"time"
)

// Enriched is an input event re-keyed to another entity than its livestream
// (topic "features-<entity>", key = the entity's id, e.g. user_id or
// seller_id), so that the entity's goka group — co-partitioned by that key —
// can aggregate features of it. The livestream group writes it, enriching
// the event with what it knows of the stream (seller and category), which
// lets features of sellers be computed from auction events that carry only a
// livestream_id.
type Enriched struct {
	Source       string          `json:"source"` // input topic, without prefix
	EventID      string          `json:"event_id"`
	EventTime    time.Time       `json:"event_time"`
	LivestreamID string          `json:"livestream_id"`
	SellerID     string          `json:"seller_id,omitempty"`
	Category     string          `json:"category,omitempty"`
	Event        json.RawMessage `json:"event"` // the original event
}

// Validate checks an enriched event.
func (e *Enriched) Validate() error {
	switch e.Source {
	case TopicLivestreams, TopicViewing, TopicChat, TopicAuctions:
	default:
		return invalid("source", "%q is not an input topic", e.Source)
	}
	if err := checkID("event_id", e.EventID); err != nil {
		return err
	}
	if e.EventTime.IsZero() {
		return invalid("event_time", "required")
	}
	if err := checkID("livestream_id", e.LivestreamID); err != nil {
		return err
	}
	if len(e.Event) == 0 || e.Event[0] != '{' {
		return invalid("event", "must be the original event's JSON object")
	}
	return nil
}
