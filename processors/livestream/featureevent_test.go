package livestream

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/simulate"
)

// The decoded event's fields (DecodeFeatureEvent, the typed struct the
// livestream group also reads) equal the fields of its JSON as a map, for every
// field of every source's schema, on simulated traffic including
// deliberately odd events.
func TestTypedEventReadsAsItsJSON(t *testing.T) {
	g, err := simulate.New(simulate.Config{Seed: 7, BadFraction: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	const sellerID, category = "seller-of-stream", "category-of-stream"
	checked := map[string]int{}
	for i := range 20000 {
		r := g.Next(now.Add(time.Duration(i) * 10 * time.Millisecond))
		if !slices.Contains(events.InputTopics(), r.Topic) {
			continue
		}
		got, err := DecodeFeatureEvent(r.Topic, r.Value, sellerID, category)
		if err != nil {
			continue // dead-lettered, never read by features
		}
		want, err := FeatureEvent(r.Topic, r.Value, sellerID, category)
		if err != nil {
			t.Fatalf("%s: %v", r.Value, err)
		}
		if !got.Time().Equal(want.Time()) || got.Source() != want.Source() {
			t.Fatalf("%s: time/source %v %s, JSON %v %s", r.Value, got.Time(), got.Source(), want.Time(), want.Source())
		}
		for field := range features.Schema(r.Topic) {
			gv, gok := got.Field(field)
			wv, wok := want.Field(field)
			if gok != wok || !reflect.DeepEqual(gv, wv) {
				t.Fatalf("%s field %s: typed %v (%v), JSON %v (%v)", r.Value, field, gv, gok, wv, wok)
			}
			checked[r.Topic]++
		}
	}
	for _, src := range events.InputTopics() {
		if checked[src] == 0 {
			t.Errorf("no %s event checked", src)
		}
	}
}

// How the user and entity groups read a re-keyed event: a map of its JSON
// fields (FeatureEvent) or its typed struct (DecodeFeatureEvent), then one
// field read as a filter would.
func BenchmarkFeatureEvent(b *testing.B) {
	raw := []byte(`{"event_id":"ev-123456","event_time":"2026-11-25T12:00:01.123Z","livestream_id":"ls-42","user_id":"u-777","type":"heartbeat"}`)
	for _, c := range []struct {
		name   string
		decode func() (features.Event, error)
	}{
		{"map", func() (features.Event, error) { return FeatureEvent(events.TopicViewing, raw, "s-1", "cards") }},
		{"typed", func() (features.Event, error) { return DecodeFeatureEvent(events.TopicViewing, raw, "s-1", "cards") }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ev, err := c.decode()
				if err != nil {
					b.Fatal(err)
				}
				if v, ok := ev.Field("type"); !ok || v.Str() != "heartbeat" {
					b.Fatalf("type = %v", v)
				}
			}
		})
	}
}
