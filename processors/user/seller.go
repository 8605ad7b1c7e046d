package user

import (
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/tables"
)

// SellerSignal is what the user group sends to a seller when a user buys
// from them: the buyer's taste as it was before this purchase (so the
// seller's own stream does not count as its buyers' taste), for the seller's
// embedding. It is nil unless the signal is a buy naming a seller and the
// user has a taste.
func SellerSignal(st *tables.User, sig *events.UserSignal) *events.SellerSignal {
	if sig.Kind != events.SignalBuy || sig.SellerID == "" {
		return nil
	}
	taste := st.Taste.Unit()
	if len(taste) == 0 {
		return nil
	}
	return &events.SellerSignal{
		SellerID: sig.SellerID, Kind: events.SellerBuyer, LivestreamID: sig.LivestreamID,
		UserID: sig.UserID, EventTime: sig.EventTime, Vector: taste,
	}
}
