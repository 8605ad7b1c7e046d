package events

import (
	"testing"
	"time"

	fastjson "github.com/segmentio/encoding/json"
)

// A typical user-signals record: a heartbeat's signal with the stream's
// 64-d content vector and the event for the user's features.
func benchSignal() *UserSignal {
	vec := make(Vector, 64)
	for i := range vec {
		vec[i] = float32(i) / 64
	}
	return &UserSignal{EventID: "ev-123456", EventTime: time.Date(2026, 11, 25, 12, 0, 1, 123e6, time.UTC), UserID: "u-777",
		Kind: SignalWatch, LivestreamID: "ls-42", SellerID: "s-9", Category: "trading-cards", Embedding: vec,
		Source: TopicViewing, Event: []byte(`{"event_id":"ev-123456","event_time":"2026-11-25T12:00:01.123Z","livestream_id":"ls-42","user_id":"u-777","type":"heartbeat"}`)}
}

func BenchmarkUserSignal(b *testing.B) {
	sig := benchSignal()
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := fastjson.Marshal(sig)
			if err != nil {
				b.Fatal(err)
			}
			var got UserSignal
			if err := Decode(raw, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := sig.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			var got UserSignal
			if err := Decode(raw, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
