package entity

import (
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
)

// FuzzEnrichedEvent: the bytes of a features-<entity> record (an enriched
// event wrapping the original) never crash the entity groups' decode path
// (events.Decode, then Event) nor the features they feed and read.
func FuzzEnrichedEvent(f *testing.F) {
	for _, s := range []string{
		`{"source":"chat","event_id":"e1","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls-1","seller_id":"s-1","category":"sneakers","event":{"event_id":"e1","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls-1","user_id":"u-1","text":"nice kicks"}}`,
		`{"source":"auctions","event_id":"e2","event_time":"2026-11-25T12:00:01Z","livestream_id":"ls-1","seller_id":"s-1","category":"sneakers","event":{"event_id":"e2","event_time":"2026-11-25T12:00:01Z","livestream_id":"ls-1","auction_id":"a-1","type":"sold","user_id":"u-2","amount":120.5,"currency":"USD"}}`,
		`{"source":"viewing","event_id":"e3","event_time":"2026-11-25T12:00:02Z","livestream_id":"ls-1","event":{"event_id":"e3","event_time":"2026-11-25T12:00:02+01:00","livestream_id":"ls-1","type":"join","user_id":"u-1"}}`,
		`{"source":"livestreams","event_id":"e4","event_time":"2026-11-25T12:00:03Z","livestream_id":"ls-1","event":{"event_id":"e4","event_time":"2026-11-25T12:00:03Z","livestream_id":"ls-1","seller_id":"s-1","title":"Retro","category":"sneakers","tags":["a"],"status":"live"}}`,
		`{"source":"auctions","event_id":"e5","event_time":"2026-11-25T12:00:01Z","livestream_id":"ls-1","event":{"event_time":"2026-11-25T12:00:01Z","amount":"abc","type":["bid"]}}`,
	} {
		f.Add([]byte(s))
	}
	set, err := features.NewSet(features.Defaults()...)
	if err != nil {
		f.Fatal(err)
	}
	entities := []string{"user", "seller", "category"}
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev events.Enriched
		if events.Decode(data, &ev) != nil {
			return
		}
		fev, err := Event(&ev)
		if err != nil {
			return
		}
		for _, e := range entities {
			fs := set.ForEntity(e)
			var st features.State
			fs.ApplyEvent(&st, fev)
			fs.ApplyEvent(&st, fev) // a duplicate too
			fs.Values(&st, now)
			b, err := st.MarshalBinary()
			if err != nil {
				t.Fatalf("%s: encoding the state an event made: %v", e, err)
			}
			var back features.State
			if err := back.UnmarshalBinary(b); err != nil {
				t.Fatalf("%s: the state an event made does not decode: %v", e, err)
			}
		}
	})
}
