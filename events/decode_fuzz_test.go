package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// schemaFields are the JSON names of every field of the records, the only
// names a ValidationError from Decode may carry (besides indexes like
// tags[3]): a field name is a metric label, never a piece of the input.
func schemaFields() map[string]bool {
	names := map[string]bool{"key": true}
	for _, v := range []any{Livestream{}, Viewing{}, Chat{}, Auction{}, UserSignal{}, Enriched{},
		LivestreamVector{}, AudienceSignal{}} {
		walkFields(reflect.TypeOf(v), func(name string, _ reflect.Type) bool {
			names[name] = true
			return true
		})
	}
	return names
}

func checkDecodeError(t *testing.T, data []byte, v Validator, err error, fields map[string]bool) {
	t.Helper()
	if len(data) > MaxBytes(v) && !errors.Is(err, ErrOversized) {
		t.Fatalf("%T: %d bytes not rejected as oversized: %v", v, len(data), err)
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		field, _, _ := strings.Cut(ve.Field, "[")
		if !fields[field] {
			t.Fatalf("%T: error names field %q, not in the schema: %v", v, ve.Field, err)
		}
	} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrOversized) {
		t.Fatalf("%T: error %v is neither malformed, oversized nor a ValidationError", v, err)
	}
}

// FuzzDecodeRecords: the records livefeed writes and reads back from Kafka
// (enriched events, user and audience signals, content vectors) never crash
// a decoder; every error is classified (oversized, malformed, or invalid
// with a schema field); what decodes re-encodes to a record that decodes
// again to the same value.
func FuzzDecodeRecords(f *testing.F) {
	for _, s := range []string{
		`{"source":"chat","event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"sneakers","event":{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","user_id":"u","text":"hi"}}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","user_id":"u","kind":"bid","livestream_id":"ls","seller_id":"s","category":"c","amount":12.5,"embedding":"AACAPwAAAMA="}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","user_id":"u","kind":"watch","livestream_id":"ls","embedding":[1,-2,0.5]}`,
		`{"livestream_id":"ls","text_hash":"0123456789abcdef0123456789abcdef","model":"m@1","vector":"AACAPwAAAMA=","event_time":"2026-11-25T12:00:00Z"}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","user_id":"u","taste":[0.6,0.8]}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","user_id":"u","taste":"AAD=="}`,
		`{"vector":[1e39]}`, `{"event":"x"}`, `null`, `{}`,
	} {
		f.Add([]byte(s))
	}
	fields := schemaFields()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range []func() Validator{
			func() Validator { return new(Enriched) }, func() Validator { return new(UserSignal) },
			func() Validator { return new(LivestreamVector) }, func() Validator { return new(AudienceSignal) },
		} {
			v := mk()
			err := Decode(data, v)
			if err != nil {
				checkDecodeError(t, data, v, err, fields)
				continue
			}
			if len(data) > 0 && data[0] == UserSignalBinary {
				continue // a binary user signal: FuzzUserSignalBinary
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("re-encoding %T: %v", v, err)
			}
			w := mk()
			if err := Decode(b, w); err != nil {
				t.Fatalf("%T %q decoded, but its re-encoding %s fails: %v", v, data, b, err)
			}
			b2, _ := json.Marshal(w)
			if string(b) != string(b2) {
				t.Fatalf("%T round trip changed the record: %s then %s", v, b, b2)
			}
		}
	})
}

// FuzzDecodeErrors: every error of the input-event decoders is classified
// (the dead-letter reason of the livestream group depends on it), and a
// wrong-typed field is named from the schema.
func FuzzDecodeErrors(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","auction_id":"a","type":"bid","user_id":"u","amount":"abc","currency":"USD"}`,
		`{"event_id":"e","event_time":42,"livestream_id":"ls","user_id":"u","text":"x"}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"live","tags":[1]}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","type":"join","user_id":"u"}`,
		`{"Event_ID":"e","EVENT_TIME":"2026-11-25T12:00:00Z","livestream_id":"ls","type":"join","user_id":"u"}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","user_id":"u","text":"\ud800"}`,
		`{"event_id":"e","event_time":"9999-12-31T23:59:59Z","livestream_id":"ls","user_id":"u","text":"x"}`,
		`[1,2,3]`, `"str"`, `{"a":{"b":{"c":[[[[[]]]]]}}}`,
	} {
		f.Add([]byte(s))
	}
	fields := schemaFields()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []Validator{new(Livestream), new(Viewing), new(Chat), new(Auction)} {
			if err := Decode(data, v); err != nil {
				checkDecodeError(t, data, v, err, fields)
			}
		}
	})
}

// FuzzVector: a vector from the wire never crashes its decoder, and what
// decodes re-encodes (base64) to the same bits.
func FuzzVector(f *testing.F) {
	for _, s := range []string{`"AACAPwAAAMA="`, `[1,2.5,-3e-7]`, `"AAA="`, `[1e39]`, `""`, `[]`, `null`, `"!!"`, `[null]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v Vector
		if v.UnmarshalJSON(data) != nil {
			return
		}
		b, err := v.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var w Vector
		if err := w.UnmarshalJSON(b); err != nil {
			t.Fatalf("%q decoded, its encoding %s does not: %v", data, b, err)
		}
		if len(v) != len(w) {
			t.Fatalf("%q: length %d, then %d", data, len(v), len(w))
		}
		for i := range v {
			if a, b := v[i], w[i]; a != b && !(a != a && b != b) {
				t.Fatalf("%q: [%d] %v, then %v", data, i, a, b)
			}
		}
	})
}
