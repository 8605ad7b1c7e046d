package events

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

var at = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func h() Header { return Header{EventID: "e1", EventTime: at, LivestreamID: "ls-1"} }

func TestValidEventsPass(t *testing.T) {
	for _, v := range []Validator{
		&Livestream{Header: h(), SellerID: "s", Title: "pokemon", Category: "trading-cards", Tags: []string{"a"}, Language: "en", Status: StatusLive},
		&Viewing{Header: h(), Type: ViewingHeartbeat, UserID: "u"},
		&Chat{Header: h(), UserID: "u", Text: "hi"},
		&Auction{Header: h(), AuctionID: "a", Type: AuctionStart},
		&Auction{Header: h(), AuctionID: "a", Type: AuctionSold, UserID: "u", Amount: 12.5, Currency: "USD"},
	} {
		if err := v.Validate(); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
}

func TestInvalidEventsNameTheField(t *testing.T) {
	cases := []struct {
		json  string
		into  Validator
		field string
	}{
		{`{"event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"live"}`, new(Livestream), "event_id"},
		{`{"event_id":"e","livestream_id":"ls","seller_id":"s","category":"c","status":"live"}`, new(Livestream), "event_time"},
		{`{"event_id":"e","event_time":"1970-01-01T00:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"live"}`, new(Livestream), "event_time"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","seller_id":"s","category":"c","status":"live"}`, new(Livestream), "livestream_id"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","category":"c","status":"live"}`, new(Livestream), "seller_id"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"paused"}`, new(Livestream), "status"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"live","tags":[""]}`, new(Livestream), "tags[0]"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","type":"wave","user_id":"u"}`, new(Viewing), "type"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","type":"join"}`, new(Viewing), "user_id"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","text":"x"}`, new(Chat), "user_id"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","auction_id":"a","type":"bid","user_id":"u","amount":-3,"currency":"USD"}`, new(Auction), "amount"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","auction_id":"a","type":"sold","user_id":"u","amount":3,"currency":"usd"}`, new(Auction), "currency"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","auction_id":"a","type":"bid","amount":3,"currency":"USD"}`, new(Auction), "user_id"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","type":"start"}`, new(Auction), "auction_id"},
	}
	for _, c := range cases {
		err := Decode([]byte(c.json), c.into)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("%s: error %v, want a ValidationError on %s", c.json, err, c.field)
		}
	}
}

func TestMalformedAndKeyMismatch(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"event_id":1}`, `{} {}`, `{"event_time":"yesterday"}`} {
		if err := Decode([]byte(in), new(Chat)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", in, err)
		}
	}
	hd := h()
	if err := CheckKey("ls-2", &hd); err == nil {
		t.Fatal("key mismatch accepted")
	}
	if err := CheckKey("ls-1", &hd); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecode: no input crashes a decoder, and what decodes and validates
// re-encodes to an event that decodes and validates again.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"live","tags":["x"]}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","auction_id":"a","type":"bid","user_id":"u","amount":3,"currency":"USD"}`,
		`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","type":"join","user_id":"u"}`,
		`not json`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range []func() Validator{
			func() Validator { return new(Livestream) }, func() Validator { return new(Viewing) },
			func() Validator { return new(Chat) }, func() Validator { return new(Auction) },
			func() Validator { return new(UserSignal) },
		} {
			v := mk()
			if Decode(data, v) != nil {
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("re-encoding %T: %v", v, err)
			}
			if err := Decode(b, mk()); err != nil {
				t.Fatalf("%T %s decoded, but its re-encoding %s fails: %v", v, data, b, err)
			}
		}
	})
}
