package user

import (
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/tables"
)

func TestAudienceSignalOnFirstWatchWithTaste(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := &tables.User{UserID: "u"}
	w := DefaultWeights()
	sig := func(kind events.SignalKind, ls string, at time.Duration, vec []float32) *events.UserSignal {
		return &events.UserSignal{EventID: "e", EventTime: t0.Add(at), UserID: "u", Kind: kind, LivestreamID: ls, Embedding: vec}
	}
	// No taste yet: nothing to tell the stream.
	s1 := sig(events.SignalWatch, "ls-1", 0, []float32{1, 0})
	if a := AudienceSignal(st, s1); a != nil {
		t.Fatalf("audience signal without a taste: %+v", a)
	}
	Apply(st, s1, w, time.Hour)
	// A heartbeat of a stream being watched: nothing more.
	if a := AudienceSignal(st, sig(events.SignalWatch, "ls-1", time.Minute, []float32{1, 0})); a != nil {
		t.Fatalf("heartbeat sent an audience signal: %+v", a)
	}
	// A chat elsewhere is not a join.
	if a := AudienceSignal(st, sig(events.SignalChat, "ls-2", time.Minute, []float32{0, 1})); a != nil {
		t.Fatal("chat sent an audience signal")
	}
	// Joining another stream sends the taste as it was before this stream.
	a := AudienceSignal(st, sig(events.SignalWatch, "ls-2", 2*time.Minute, []float32{0, 1}))
	if a == nil || a.LivestreamID != "ls-2" || a.UserID != "u" || models.Dot(a.Taste, []float32{1, 0}) < 0.999 {
		t.Fatalf("audience signal %+v", a)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
}
