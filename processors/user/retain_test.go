package user

import (
	"testing"
	"unsafe"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/tables"
)

// A user's state keeps its own copies of what it takes from a signal: the
// decoded signal's strings share one allocation with the whole record,
// which a kept substring would hold for as long as the state is cached.
func TestApplyKeepsNoSubstringOfTheSignal(t *testing.T) {
	raw, err := (&events.UserSignal{EventID: "e1", EventTime: t0, UserID: "u", Kind: events.SignalWatch,
		LivestreamID: "ls-1", Category: "cards"}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var s events.UserSignal
	if err := events.Decode(raw, &s); err != nil {
		t.Fatal(err)
	}
	var st tables.User
	Apply(&st, &s, DefaultWeights(), 0)
	r := st.Recent[0]
	if r.LivestreamID != "ls-1" || unsafe.StringData(r.LivestreamID) == unsafe.StringData(s.LivestreamID) {
		t.Fatalf("recent stream id %q shares the signal's memory", r.LivestreamID)
	}
	if unsafe.StringData(string(r.Kind)) != unsafe.StringData(string(events.SignalWatch)) {
		t.Fatal("the recent kind is not the constant")
	}
	for k := range st.Signals {
		if unsafe.StringData(string(k)) != unsafe.StringData(string(events.SignalWatch)) {
			t.Fatalf("signal count key %q is not the constant", k)
		}
	}
	for c := range st.Categories {
		if unsafe.StringData(c) == unsafe.StringData(s.Category) {
			t.Fatalf("category %q shares the signal's memory", c)
		}
	}
	// The same stream again reuses the state's copy.
	s.EventTime = s.EventTime.Add(1)
	Apply(&st, &s, DefaultWeights(), 0)
	if len(st.Recent) != 1 || unsafe.StringData(st.Recent[0].LivestreamID) != unsafe.StringData(r.LivestreamID) {
		t.Fatalf("recent %+v: the known stream was copied again", st.Recent)
	}
}
