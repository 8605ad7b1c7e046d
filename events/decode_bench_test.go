package events

import (
	"bytes"
	"encoding/json"
	"testing"
)

var benchChat = []byte(`{"event_id":"e-000000123","event_time":"2026-11-25T12:00:00.123Z","livestream_id":"ls-00042","user_id":"u-01234","text":"is this the 1st edition charizard?"}`)

// Decode (segmentio's decoder + validation) against the standard library's
// Decoder it replaced, on the same chat event.
func BenchmarkDecodeChat(b *testing.B) {
	b.Run("decoder=segmentio", func(b *testing.B) {
		for b.Loop() {
			var c Chat
			if err := Decode(benchChat, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decoder=encoding-json", func(b *testing.B) {
		for b.Loop() {
			var c Chat
			if err := json.NewDecoder(bytes.NewReader(benchChat)).Decode(&c); err != nil {
				b.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A 384-d vector as it sits in table values and vector records.
func BenchmarkVectorUnmarshal(b *testing.B) {
	v := make(Vector, 384)
	for i := range v {
		v[i] = float32(i) / 384
	}
	data, err := v.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var w Vector
		if err := w.UnmarshalJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}
