package simulate

import (
	"fmt"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
)

var t0 = time.Date(2026, 3, 14, 18, 0, 0, 0, time.UTC)

// decoded is a record decoded and validated with the events package.
type decoded struct {
	hdr events.Header
	ls  *events.Livestream
	vw  *events.Viewing
	ch  *events.Chat
	au  *events.Auction
}

// decode parses a record as the consumers do: events.Decode for its topic,
// then events.CheckKey.
func decode(r Record) (decoded, error) {
	var d decoded
	var v events.Validator
	switch r.Topic {
	case events.TopicLivestreams:
		d.ls = new(events.Livestream)
		v = d.ls
	case events.TopicViewing:
		d.vw = new(events.Viewing)
		v = d.vw
	case events.TopicChat:
		d.ch = new(events.Chat)
		v = d.ch
	case events.TopicAuctions:
		d.au = new(events.Auction)
		v = d.au
	default:
		return d, fmt.Errorf("unknown topic %q", r.Topic)
	}
	if err := events.Decode(r.Value, v); err != nil {
		return d, err
	}
	switch {
	case d.ls != nil:
		d.hdr = d.ls.Header
	case d.vw != nil:
		d.hdr = d.vw.Header
	case d.ch != nil:
		d.hdr = d.ch.Header
	default:
		d.hdr = d.au.Header
	}
	return d, events.CheckKey(r.Key, &d.hdr)
}

func newGen(t testing.TB, cfg Config) *Generator {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// run generates n records with a constant step between calls.
func run(g *Generator, n int, step time.Duration, fn func(i int, r Record)) {
	now := t0
	for i := range n {
		r := g.Next(now)
		if fn != nil {
			fn(i, r)
		}
		now = now.Add(step)
	}
}
