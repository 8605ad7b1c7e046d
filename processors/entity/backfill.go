package entity

import (
	"context"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Backfill (processors/backfill): an entity's new features are replayed
// from its enriched-event topic before the split and merged here, once per
// key, from the group's backfill topic.

// replay folds an entity partition's enriched events into per-key feature
// states as the group does: the same decoding, and the same absorption of
// duplicates (a record re-emitted by a replaying livestream group carries
// the origin of one already applied).
type replay struct {
	set    *features.Set
	states map[string]*replayed
}

type replayed struct {
	st      features.State
	applied map[uint64]int64 // pipeline.OriginKey → newest offset applied
}

// NewReplay returns a backfill.Replay of the entity's enriched events for
// the features of set.
func NewReplay(set *features.Set) backfill.Replay {
	return &replay{set: set, states: map[string]*replayed{}}
}

func (r *replay) Apply(_ context.Context, _ string, rec *kgo.Record) {
	var ev events.Enriched
	if events.Decode(rec.Value, &ev) != nil {
		return // dead-lettered by the group
	}
	fev, err := Event(&ev)
	if err != nil {
		return
	}
	key := string(rec.Key)
	st := r.states[key]
	if st == nil {
		st = &replayed{applied: map[uint64]int64{}}
		r.states[key] = st
	}
	for _, h := range rec.Headers {
		if h.Key != pipeline.HeaderOrigin {
			continue
		}
		if o, off, ok := pipeline.HeaderOriginKey(rec.Topic, h.Value); ok {
			if last, seen := st.applied[o]; seen && off <= last {
				return // a duplicate the group absorbs
			}
			st.applied[o] = off
		}
		break
	}
	r.set.ApplyEvent(&st.st, fev)
}

func (r *replay) States(yield func(string, *features.State) bool) {
	for k, st := range r.states {
		if !yield(k, &st.st) {
			return
		}
	}
}

// warm marks the features of the partition's running backfills as warming
// up in an entity the live path wrote.
func (p *processor) warm(ctx goka.Context, st *tables.Entity) {
	if p.cfg.Backfill != nil {
		p.cfg.Backfill.Warm(ctx.Partition(), &st.Features)
	}
}

// features are the features the live path applies to the current record:
// the group's, or, for a record before a backfill's split (handled again
// after a restart), all but the run's, which the backfill covers.
func (p *processor) features(ctx goka.Context) *features.Set {
	if set := p.cfg.Backfill.Live(ctx.Partition(), string(ctx.Topic()), ctx.Offset()); set != nil {
		return set
	}
	return p.cfg.Features
}
