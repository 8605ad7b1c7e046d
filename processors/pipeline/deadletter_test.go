package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
)

func TestReasonOfHostileInput(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := map[string]error{
		"oversized":          events.Decode(make([]byte, events.MaxEventBytes+1), new(events.Chat)),
		"future":             events.CheckFuture(now.Add(2*time.Hour), now, time.Hour),
		"ancient":            events.CheckAncient(now.Add(-3*time.Hour), now, time.Hour),
		"invalid:amount":     events.Decode([]byte(`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","auction_id":"a","type":"bid","user_id":"u","amount":"abc","currency":"USD"}`), new(events.Auction)),
		"invalid:event_time": events.Decode([]byte(`{"event_id":"e","event_time":42,"livestream_id":"ls","user_id":"u"}`), new(events.Chat)),
		"invalid:tags":       events.Decode([]byte(`{"event_id":"e","event_time":"2026-11-25T12:00:00Z","livestream_id":"ls","seller_id":"s","category":"c","status":"live","tags":["a",""]}`), new(events.Livestream)),
		"malformed":          events.Decode([]byte(`{"event_id":`), new(events.Chat)),
		"other":              errors.New("boom"),
	}
	for want, err := range cases {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestDeadLetterValueTruncatesOnlyPastTheLimit(t *testing.T) {
	small := bytes.Repeat([]byte("x"), MaxDeadLetterBytes)
	if v, size := DeadLetterValue(small); len(v) != len(small) || size != nil {
		t.Fatalf("a value at the limit was changed: %d bytes, size header %q", len(v), size)
	}
	big := bytes.Repeat([]byte("y"), 3<<20)
	v, size := DeadLetterValue(big)
	if len(v) != MaxDeadLetterBytes || string(size) != strconv.Itoa(len(big)) {
		t.Fatalf("3 MiB value: kept %d bytes, size header %q", len(v), size)
	}
	if long := errorText(fmt.Errorf("status: %q", bytes.Repeat([]byte("é"), 5000))); len(long) > maxErrorHeader+len("…") {
		t.Fatalf("error header %d bytes", len(long))
	}
}
