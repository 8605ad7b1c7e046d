package events

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOversizedIsRejectedBeforeParsing(t *testing.T) {
	// Valid JSON padded with whitespace past the limit: only the size fails.
	ok := `{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","user_id":"u","text":"hi"}`
	if err := Decode([]byte(ok), new(Chat)); err != nil {
		t.Fatal(err)
	}
	big := ok + strings.Repeat(" ", MaxEventBytes)
	err := Decode([]byte(big), new(Chat))
	if !errors.Is(err, ErrOversized) || errors.Is(err, ErrMalformed) {
		t.Fatalf("%d bytes: %v, want ErrOversized only", len(big), err)
	}
	// Exactly at the limit is accepted.
	atLimit := ok + strings.Repeat(" ", MaxEventBytes-len(ok))
	if err := Decode([]byte(atLimit), new(Chat)); err != nil {
		t.Fatalf("%d bytes: %v", len(atLimit), err)
	}
	// Records livefeed writes itself may be larger (an Enriched wraps a
	// whole event).
	if MaxBytes(new(Enriched)) != MaxRecordBytes || MaxBytes(new(UserSignal)) != MaxRecordBytes ||
		MaxBytes(new(Auction)) != MaxEventBytes {
		t.Fatal("MaxBytes per kind")
	}
	if err := Decode(make([]byte, MaxRecordBytes+1), new(Enriched)); !errors.Is(err, ErrOversized) {
		t.Fatalf("oversized enriched: %v", err)
	}
}

func TestWrongTypedFieldsAreNamed(t *testing.T) {
	cases := []struct {
		json  string
		into  Validator
		field string
	}{
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","auction_id":"a","type":"bid","user_id":"u","amount":"abc","currency":"USD"}`, new(Auction), "amount"},
		{`{"event_id":"e","event_time":42,"livestream_id":"ls","user_id":"u","text":"x"}`, new(Chat), "event_time"},
		{`{"event_id":"e","event_time":"yesterday","livestream_id":"ls","user_id":"u","text":"x"}`, new(Chat), "event_time"},
		{`{"event_id":7,"event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","user_id":"u"}`, new(Chat), "event_id"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"live","tags":"a,b"}`, new(Livestream), "tags"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"live","tags":[1]}`, new(Livestream), "tags"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":{"x":1},"type":"join","user_id":"u"}`, new(Viewing), "livestream_id"},
		{`{"EVENT_TIME":true,"event_id":"e","livestream_id":"ls","type":"join","user_id":"u"}`, new(Viewing), "event_time"},
		{`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","user_id":"u","kind":"watch","livestream_id":"ls","embedding":"!!"}`, new(UserSignal), "embedding"},
	}
	for _, c := range cases {
		err := Decode([]byte(c.json), c.into)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed and a ValidationError on %s", c.json, err, c.field)
		}
	}
	// Syntax errors name no field.
	var ve *ValidationError
	if err := Decode([]byte(`{"amount":`), new(Auction)); !errors.Is(err, ErrMalformed) || errors.As(err, &ve) {
		t.Errorf("syntax error: %v", err)
	}
}

func TestFutureAndAncient(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	if err := CheckFuture(now.Add(time.Hour), now, time.Hour); err != nil {
		t.Errorf("exactly the skew ahead: %v", err)
	}
	if err := CheckFuture(now.Add(time.Hour+time.Millisecond), now, time.Hour); !errors.Is(err, ErrFuture) {
		t.Errorf("past the skew: %v", err)
	}
	if err := CheckFuture(now.Add(100*365*24*time.Hour), now, -1); err != nil {
		t.Errorf("check off: %v", err)
	}
	wm := now
	if err := CheckAncient(now.Add(-2*time.Hour), wm, 2*time.Hour); err != nil {
		t.Errorf("at the horizon: %v", err)
	}
	if err := CheckAncient(now.Add(-2*time.Hour-time.Millisecond), wm, 2*time.Hour); !errors.Is(err, ErrAncient) {
		t.Errorf("past the horizon: %v", err)
	}
	if err := CheckAncient(now.Add(-1000*time.Hour), time.Time{}, 2*time.Hour); err != nil {
		t.Errorf("no watermark yet: %v", err)
	}
	if err := CheckAncient(now.Add(-1000*time.Hour), wm, 0); err != nil {
		t.Errorf("no windowed feature: %v", err)
	}
	if Source(new(Chat)) != TopicChat || Source(new(Auction)) != TopicAuctions || Source(new(Livestream)) != TopicLivestreams ||
		Source(new(Viewing)) != TopicViewing || Source(new(UserSignal)) != "" {
		t.Error("Source")
	}
}
