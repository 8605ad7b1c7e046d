package livestream

import (
	"context"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Backfill (processors/backfill): the features a definitions file adds
// are computed live from the split on, replayed before it by a
// backfill.Coordinator through a Replay of the new features, and merged
// here, once per key, from the group's backfill topic.

// replay folds a partition's input history into stream states as the
// group does, for a subset of the features (NewReplay).
type replay struct {
	updater   *Updater
	retention time.Duration
	skew      time.Duration
	streams   map[string]*tables.Livestream
}

// NewReplay returns a backfill.Replay that applies input records as the
// group does (decoding, key, future and ancient checks, the Updater with
// its enrichment by the stream's metadata) to the features of set only.
// retention is the group's (its longest window plus lateness, which the
// ancient check uses); skew its FutureSkew (0: the default).
func NewReplay(set *features.Set, viewerTimeout, retention, skew time.Duration) backfill.Replay {
	if viewerTimeout == 0 {
		viewerTimeout = 2 * time.Minute
	}
	if skew == 0 {
		skew = events.DefaultFutureSkew
	}
	return &replay{updater: &Updater{Features: set, ViewerTimeout: viewerTimeout}, retention: retention, skew: skew,
		streams: map[string]*tables.Livestream{}}
}

// Retention is the group's retention for features (see NewReplay).
func Retention(set *features.Set) time.Duration {
	var r time.Duration
	for _, d := range set.All() {
		r = max(r, d.Window.Size+d.Lateness)
	}
	return r
}

func (r *replay) Apply(ctx context.Context, topic string, rec *kgo.Record) {
	ev, h, err := events.DecodeInput(topic, rec.Value)
	key := string(rec.Key)
	if err == nil {
		err = events.CheckKey(key, h)
	}
	if err == nil {
		// The group judged the future by its clock when the record came:
		// about the record's timestamp.
		err = events.CheckFuture(h.EventTime, rec.Timestamp, r.skew)
	}
	st := r.streams[key]
	if err == nil && st != nil {
		err = events.CheckAncient(h.EventTime, st.Features.SourceWatermark(events.Source(ev)), r.retention)
	}
	if err != nil {
		return // dead-lettered by the group
	}
	if st == nil {
		st = &tables.Livestream{LivestreamID: key}
		r.streams[key] = st
	}
	r.updater.Apply(ctx, st, ev)
}

func (r *replay) States(yield func(string, *features.State) bool) {
	for k, st := range r.streams {
		if !yield(k, &st.Features) {
			return
		}
	}
}

// warm marks the features of the partition's running backfills as warming
// up in a stream the live path wrote, and clears the marks of backfills
// finished since.
func (p *processor) warm(ctx goka.Context, st *tables.Livestream) {
	if p.cfg.Backfill != nil {
		p.cfg.Backfill.Warm(ctx.Partition(), &st.Features)
	}
}

// updaterFor is the Updater of the current record: the group's, or, for
// a record before a backfill's split (handled again after a restart), one
// without the run's features, which the backfill covers.
func (p *processor) updaterFor(ctx goka.Context) *Updater {
	if p.cfg.Backfill == nil {
		return p.updater
	}
	set := p.cfg.Backfill.Live(ctx.Partition(), string(ctx.Topic()), ctx.Offset())
	if set == nil {
		return p.updater
	}
	if u, ok := p.liveUpdaters.Load(set); ok {
		return u.(*Updater)
	}
	u := *p.updater
	u.Features = set
	p.liveUpdaters.Store(set, &u)
	return &u
}
