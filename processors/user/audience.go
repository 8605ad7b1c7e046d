package user

import (
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/tables"
)

// AudienceSignal is what the user group sends to a stream when a user starts
// watching it: the user's taste as it was before this signal (so a stream
// does not count its own content as its audience). It is nil unless the
// signal is a watch of a stream the user has not engaged with recently
// (not among st.Recent: heartbeats of a stream being watched send nothing
// more) and the user has a taste.
func AudienceSignal(st *tables.User, sig *events.UserSignal) *events.AudienceSignal {
	if sig.Kind != events.SignalWatch {
		return nil
	}
	for _, r := range st.Recent {
		if r.LivestreamID == sig.LivestreamID {
			return nil
		}
	}
	taste := st.Taste.Unit()
	if len(taste) == 0 {
		return nil
	}
	return &events.AudienceSignal{
		EventID: sig.EventID, EventTime: sig.EventTime, LivestreamID: sig.LivestreamID,
		UserID: sig.UserID, Taste: taste,
	}
}
