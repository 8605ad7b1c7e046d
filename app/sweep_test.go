package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
)

// An ended stream whose features have all expired at its partition's
// watermark is deleted from the table (and so from serving); a live one,
// however quiet, stays.
func TestIdleStreamsAreSwept(t *testing.T) {
	r, _ := startStack(t, Config{Brokers: testBrokers(), DataDir: t.TempDir(), SweepEvery: 200 * time.Millisecond,
		TopicPrefix: fmt.Sprintf("sw%d-", time.Now().UnixNano())})
	cl := r.newProducer(t)
	defer cl.Close()
	r.client = cl
	// Three streams on one partition: one ends, one stays live, one moves
	// the partition's watermark two hours on.
	var ids []string
	for i := 0; len(ids) < 3; i++ {
		id := fmt.Sprintf("ls-sweep-%d", i)
		if broker.Partition([]byte(id), 4) == 0 {
			ids = append(ids, id)
		}
	}
	ended, quiet, busy := ids[0], ids[1], ids[2]
	old := time.Now().Add(-3 * time.Hour).UTC()
	n := 0
	meta := func(id string, at time.Time, status events.Status) {
		n++
		r.produce(t, events.TopicLivestreams, id, events.Livestream{
			Header:   events.Header{EventID: fmt.Sprint("s", n), EventTime: at, LivestreamID: id},
			SellerID: "s-1", Title: "sweep test", Category: "comics", Language: "en", Status: status})
	}
	chat := func(id string, at time.Time) {
		n++
		r.produce(t, events.TopicChat, id, events.Chat{
			Header: events.Header{EventID: fmt.Sprint("s", n), EventTime: at, LivestreamID: id}, UserID: "u", Text: "hi"})
	}
	meta(ended, old, events.StatusLive)
	chat(ended, old.Add(time.Minute))
	meta(ended, old.Add(2*time.Minute), events.StatusEnded)
	meta(quiet, old, events.StatusLive)
	chat(quiet, old.Add(time.Minute))
	meta(busy, old, events.StatusLive)
	chat(busy, old.Add(2*time.Hour+30*time.Minute))
	meta(busy, old.Add(2*time.Hour+31*time.Minute), events.StatusLive)
	// The viewing and auctions sources move on too.
	n++
	r.produce(t, events.TopicViewing, busy, events.Viewing{Header: events.Header{EventID: fmt.Sprint("s", n), EventTime: old.Add(150 * time.Minute), LivestreamID: busy}, Type: events.ViewingJoin, UserID: "u"})
	n++
	r.produce(t, events.TopicAuctions, busy, events.Auction{Header: events.Header{EventID: fmt.Sprint("s", n), EventTime: old.Add(150 * time.Minute), LivestreamID: busy}, AuctionID: "a", Type: events.AuctionStart})

	// (The ended stream may already be swept by then.)
	r.waitFor(t, "every stream processed", func() bool {
		var q, b serving.LivestreamFeatures
		return r.get(t, "/v1/features/livestream/"+quiet, &q) == 200 && q.Status == events.StatusLive &&
			r.get(t, "/v1/features/livestream/"+busy, &b) == 200 && b.Events == 5
	})
	r.waitFor(t, "the ended, expired stream to be swept", func() bool {
		return r.get(t, "/v1/features/livestream/"+ended, nil) == 404
	})
	var lf serving.LivestreamFeatures
	if code := r.get(t, "/v1/features/livestream/"+quiet, &lf); code != 200 || lf.Status != events.StatusLive {
		t.Fatalf("the quiet live stream was swept: %d %+v", code, lf)
	}
}
