package backfill

import (
	"log/slog"

	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
)

// Input is a group's edge for its backfill topic: each record, in its
// key's callback, goes to c.Take with the features of the key's value in
// state (fs picks them out of T); a value the merge changed is set back.
// The group's processor is its topic's only writer, so a merge never
// races the live path.
func Input[T any](topic goka.Stream, c *Coordinator, state *pipeline.State[T], fs func(*T) *features.State, log *slog.Logger) goka.Edge {
	return goka.Input(topic, new(codec.Bytes), state.EventInput(func(ctx goka.Context, msg any) {
		raw, _ := msg.([]byte)
		v := state.Get(ctx)
		var f *features.State
		if v != nil {
			f = fs(v)
		}
		changed, err := c.Take(ctx.Partition(), raw, f)
		if err != nil {
			log.Warn("backfill record skipped", "group", ctx.Group(), "partition", ctx.Partition(), "key", ctx.Key(), "err", err)
		}
		if changed {
			state.Set(ctx, v)
		}
	}))
}
