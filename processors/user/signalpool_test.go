package user

import (
	"reflect"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
)

// A recycled signal goes back zeroed: JSON decodes into what it is given,
// so a field the next record leaves out (an event-only record's kind)
// must not keep the previous record's value.
func TestRecycledSignalIsZero(t *testing.T) {
	p := &processor{}
	p.signals.New = func() any { return new(events.UserSignal) }
	sig := p.signals.Get().(*events.UserSignal)
	*sig = events.UserSignal{EventID: "e", EventTime: time.Now(), UserID: "u", Kind: events.SignalWatch, LivestreamID: "ls",
		Category: "c", Amount: 1, Embedding: []float32{1}, Source: events.TopicViewing, Event: []byte(`{}`)}
	p.putSignal(sig)
	if !reflect.ValueOf(*sig).IsZero() {
		t.Fatalf("recycled signal not zeroed: %+v", *sig)
	}
}
