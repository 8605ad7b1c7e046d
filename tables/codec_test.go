package tables

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
)

func TestCodecRoundTripAndLegacyJSON(t *testing.T) {
	set, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	ls := set.ForEntity("livestream")
	st := &Livestream{LivestreamID: "ls-1", SellerID: "s", Title: "t", Category: "c", Status: events.StatusLive,
		Embedding: events.Vector{0.5, -0.25}, Viewers: map[string]int64{"u": 1}, Events: 3}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range 50 {
		ev := features.MapEvent{Src: "chat", At: t0.Add(time.Duration(i) * time.Second), Fields: map[string]any{"user_id": "u", "text": "x"}}
		ls.ApplyEvent(&st.Features, ev)
	}
	b, err := LivestreamCodec{}.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LivestreamCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*Livestream)
	now := t0.Add(time.Minute)
	if !reflect.DeepEqual(ls.Values(&got.Features, now), ls.Values(&st.Features, now)) || got.Title != "t" || got.Embedding[1] != -0.25 || got.Viewers["u"] != 1 {
		t.Fatalf("round trip changed the value: %+v", got)
	}
	if st.Features.Series == nil || len(st.Features.Series) == 0 {
		t.Fatal("encoding cleared the caller's features")
	}
	// Values written as plain JSON (before the binary codec) still decode,
	// without their feature state.
	legacy, _ := json.Marshal(st)
	old, err := DecodeLivestream(legacy)
	if err != nil || old.Title != "t" {
		t.Fatalf("legacy JSON: %v", err)
	}
	for _, bad := range [][]byte{nil, {7}, {codecVersion, 200}, {codecVersion, 2, '{', '}'}} {
		if _, err := DecodeLivestream(bad); err == nil {
			t.Errorf("%v decoded", bad)
		}
	}
}
