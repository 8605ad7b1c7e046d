package livestream

import (
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
)

// typedEvent is a decoded input event as feature definitions read it,
// without decoding its JSON a second time into a map: each field of the
// source's schema (features/schema.go, from the events' JSON tags) is read
// from the struct. Fields the JSON omits when empty (omitempty) are missing
// when empty, and the stream's seller_id and category fill in for events
// that lack them — exactly what FeatureEvent gives for the same JSON (a test
// checks every schema field of simulated events).
type typedEvent struct {
	source   string
	header   *events.Header
	ev       any
	sellerID string
	category string
}

func (e *typedEvent) Source() string  { return e.source }
func (e *typedEvent) Time() time.Time { return e.header.EventTime }

func str(s string) (features.Value, bool) { return features.StringValue(s), true }

// omitted is a string field tagged omitempty.
func omitted(s string) (features.Value, bool) {
	if s == "" {
		return features.Value{}, false
	}
	return features.StringValue(s), true
}

// Field returns a field by JSON name.
func (e *typedEvent) Field(name string) (features.Value, bool) {
	switch name {
	case "event_id":
		return str(e.header.EventID)
	case "event_time":
		return str(e.header.EventTime.Format(time.RFC3339Nano))
	case "livestream_id":
		return str(e.header.LivestreamID)
	}
	switch ev := e.ev.(type) {
	case *events.Livestream:
		switch name {
		case "seller_id":
			return str(ev.SellerID)
		case "title":
			return str(ev.Title)
		case "category":
			return str(ev.Category)
		case "tags":
			if len(ev.Tags) == 0 {
				return features.Value{}, false
			}
			return features.ListValue(ev.Tags), true
		case "language":
			return str(ev.Language)
		case "status":
			return str(string(ev.Status))
		}
		return features.Value{}, false
	case *events.Viewing:
		switch name {
		case "type":
			return str(string(ev.Type))
		case "user_id":
			return str(ev.UserID)
		}
	case *events.Chat:
		switch name {
		case "user_id":
			return str(ev.UserID)
		case "text":
			return str(ev.Text)
		}
	case *events.Auction:
		switch name {
		case "auction_id":
			return str(ev.AuctionID)
		case "type":
			return str(string(ev.Type))
		case "user_id":
			return omitted(ev.UserID)
		case "amount":
			if ev.Amount == 0 {
				return features.Value{}, false
			}
			return features.NumberValue(ev.Amount), true
		case "currency":
			return omitted(ev.Currency)
		}
	}
	switch name {
	case "seller_id":
		return omitted(e.sellerID)
	case "category":
		return omitted(e.category)
	}
	return features.Value{}, false
}

// DecodeFeatureEvent decodes an input event's JSON into its typed struct
// and returns it as feature definitions read it, with the stream's seller_id
// and category filling in: the same fields FeatureEvent gives for the same
// JSON (TestTypedEventReadsAsItsJSON), without building a map per event.
// The user and entity groups read the events the livestream group re-keys
// with it.
func DecodeFeatureEvent(source string, raw []byte, sellerID, category string) (features.Event, error) {
	ev, h, err := events.DecodeInput(source, raw)
	if err != nil {
		return nil, err
	}
	return &typedEvent{source: source, header: h, ev: ev, sellerID: sellerID, category: category}, nil
}
