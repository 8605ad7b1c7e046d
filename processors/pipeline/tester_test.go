package pipeline_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/pipeline/pipelinetest"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type total struct {
	N       int64            `json:"n"`
	Applied map[uint64]int64 `json:"applied,omitempty"`
}

func (c *total) AppliedOffsets() *map[uint64]int64 { return &c.Applied }

type totalCodec struct{}

func (totalCodec) Encode(v any) ([]byte, error) { return json.Marshal(v.(*total)) }
func (totalCodec) Decode(b []byte) (any, error) {
	var c total
	err := json.Unmarshal(b, &c)
	return &c, err
}

// Under goka's tester a group's State runs its production write path:
// duplicate absorption (which only the write-behind path has) skips a
// re-emitted record of an origin already applied, the flush writes the
// table, and the tester's Consume returns once the record's deferred
// commit is released, i.e. after that flush.
func TestTesterRunsTheWriteBehindPath(t *testing.T) {
	group := goka.Group("count")
	m := pipeline.NewMetrics(nil)
	st := pipeline.NewState[total](goka.GroupTable(group), totalCodec{}, pipeline.StateOptions{FlushInterval: 5 * time.Millisecond, Metrics: m})
	g := &pipeline.Group{
		Graph: goka.DefineGroup(group,
			goka.Input("in", new(codec.Bytes), st.Input(func(ctx goka.Context, _ any) {
				v := st.Get(ctx)
				if v == nil {
					v = &total{}
				}
				v.N++
				st.Set(ctx, v)
			})),
			goka.Persist(totalCodec{})),
		State: st,
	}
	gkt := pipelinetest.Run(t, g)
	for _, origin := range []string{"up/0/5", "up/0/6", "up/0/6", "up/1/6"} {
		gkt.Consume("in", "k", []byte("x"), tester.WithHeaders(goka.Headers{pipeline.HeaderOrigin: []byte(origin)}))
	}
	pipelinetest.Sync(t, g)
	v, _ := gkt.TableValue(goka.GroupTable(group), "k").(*total)
	if v == nil || v.N != 3 {
		t.Fatalf("the table holds %+v, want n=3 (the repeated origin up/0/6 absorbed)", v)
	}
	if d := testutil.ToFloat64(m.Duplicates.WithLabelValues(string(group), "in")); d != 1 {
		t.Errorf("%v duplicates absorbed, want 1", d)
	}
}
