package simulate

import (
	"strconv"
	"time"

	"github.com/livefeed/livefeed/events"
)

// The kinds of deliberately bad records (Config.BadFraction), in equal shares.
const (
	badNotJSON  = iota // undecodable bytes: events.Decode fails with ErrMalformed
	badMissing         // a required field is empty: validation fails
	badUnknown         // unknown status (or viewing/auction type): validation fails
	badNegative        // a bid with a negative amount: validation fails
	badKey             // a valid event whose Kafka key is another stream: events.CheckKey fails
	badKinds
)

// bad returns a deliberately malformed or invalid record about a random
// active stream. It does not change the state of the simulation.
func (g *Generator) bad() (Record, bool) {
	if len(g.active) == 0 {
		return Record{}, false
	}
	s := g.active[g.rng.IntN(len(g.active))]
	u := int32(g.rng.IntN(len(g.users)))
	uid := g.users[u].id
	auctionID := s.id + "-a" + strconv.Itoa(s.auctions+1)

	switch g.rng.IntN(badKinds) {
	case badNotJSON:
		topic := events.InputTopics()[g.rng.IntN(4)]
		var v []byte
		switch g.rng.IntN(5) {
		case 0: // truncated JSON
			good := g.viewing(s, u, events.ViewingJoin).Value
			v = good[:len(good)/2]
		case 1: // binary garbage
			v = []byte{0x00, 0xff, 0xfe, 'g', 'a', 'r', 'b', 'a', 'g', 'e', 0x01}
		case 2: // a log line instead of JSON
			v = []byte("join " + uid + " " + s.id + " at " + g.now.Format(time.RFC3339))
		case 3: // two objects in one record
			good := g.viewing(s, u, events.ViewingHeartbeat).Value
			v = append(append([]byte{}, good...), good...)
		default: // JSON, but not an object
			v = []byte(`["` + s.id + `", 42]`)
		}
		return Record{Topic: topic, Key: s.id, Value: v, Time: g.now}, true

	case badMissing:
		switch g.rng.IntN(4) {
		case 0:
			e := g.livestream(s)
			switch g.rng.IntN(4) {
			case 0:
				e.SellerID = ""
			case 1:
				e.Category = ""
			case 2:
				e.EventTime = time.Time{}
			default:
				e.LivestreamID = ""
			}
			return g.record(events.TopicLivestreams, s.id, &e), true
		case 1:
			e := events.Viewing{Header: g.header(s), Type: events.ViewingHeartbeat, UserID: uid}
			if g.rng.IntN(2) == 0 {
				e.UserID = ""
			} else {
				e.EventID = ""
			}
			return g.record(events.TopicViewing, s.id, &e), true
		case 2:
			e := events.Chat{Header: g.header(s), Text: g.chatText(&g.users[u], s)}
			return g.record(events.TopicChat, s.id, &e), true
		default:
			e := events.Auction{Header: g.header(s), AuctionID: auctionID, Type: events.AuctionBid,
				UserID: uid, Amount: 10, Currency: currency}
			switch g.rng.IntN(3) {
			case 0:
				e.AuctionID = ""
			case 1:
				e.UserID = ""
			default:
				e.Currency = ""
			}
			return g.record(events.TopicAuctions, s.id, &e), true
		}

	case badUnknown:
		switch g.rng.IntN(4) {
		case 0:
			e := events.Viewing{Header: g.header(s), Type: events.ViewingType(pick(g.rng, []string{"pause", "rejoin"})), UserID: uid}
			return g.record(events.TopicViewing, s.id, &e), true
		case 1:
			e := events.Auction{Header: g.header(s), AuctionID: auctionID, Type: events.AuctionType(pick(g.rng, []string{"cancel", "retract"}))}
			return g.record(events.TopicAuctions, s.id, &e), true
		default:
			e := g.livestream(s)
			e.Status = events.Status(pick(g.rng, []string{"paused", "LIVE", "archived", "deleted"}))
			return g.record(events.TopicLivestreams, s.id, &e), true
		}

	case badNegative:
		e := events.Auction{Header: g.header(s), AuctionID: auctionID, Type: events.AuctionBid,
			UserID: uid, Amount: -float64(1 + g.rng.IntN(500)), Currency: currency}
		return g.record(events.TopicAuctions, s.id, &e), true

	default: // badKey
		key := s.id + "-x"
		if len(g.active) > 1 {
			o := g.active[g.rng.IntN(len(g.active)-1)]
			if o == s {
				o = g.active[len(g.active)-1]
			}
			key = o.id
		}
		if g.rng.IntN(2) == 0 {
			e := events.Chat{Header: g.header(s), UserID: uid, Text: g.chatText(&g.users[u], s)}
			return Record{Topic: events.TopicChat, Key: key, Value: g.record("", "", &e).Value, Time: g.now}, true
		}
		r := g.viewing(s, u, events.ViewingHeartbeat)
		r.Key = key
		return r, true
	}
}
