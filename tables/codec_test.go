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

// Applied offsets survive the codec, in the binary part; a version-1 value
// (before they existed) still decodes, with none.
func TestCodecAppliedOffsets(t *testing.T) {
	u := &User{UserID: "u1", Applied: map[uint64]int64{1<<40 | 3: 41, 7<<33 | 0: 7}}
	b, err := UserCodec{}.Encode(u)
	if err != nil {
		t.Fatal(err)
	}
	v, err := UserCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(*User).Applied; len(got) != 2 || got[1<<40|3] != 41 || got[7<<33|0] != 7 {
		t.Fatalf("applied offsets after a round trip: %v", got)
	}
	// Version 1: the same value without the applied section.
	js, _ := json.Marshal(u)
	v1 := append([]byte{codecVersion1}, byte(len(js)))
	v1 = append(v1, js...)
	v1, err = u.Features.AppendBinary(v1)
	if err != nil {
		t.Fatal(err)
	}
	old, err := UserCodec{}.Decode(v1)
	if err != nil {
		t.Fatalf("a version-1 value: %v", err)
	}
	if o := old.(*User); o.UserID != "u1" || o.Applied != nil {
		t.Fatalf("version-1 value decoded as %+v", o)
	}
}
