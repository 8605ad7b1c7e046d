package tables

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/internal/wire"
	"github.com/livefeed/livefeed/models"
	fastjson "github.com/segmentio/encoding/json"
)

func TestCodecRoundTripAndLegacyJSON(t *testing.T) {
	set, err := features.NewSet(features.Defaults()...)
	if err != nil {
		t.Fatal(err)
	}
	ls := set.ForEntity("livestream")
	st := &Livestream{LivestreamID: "ls-1", SellerID: "s", Title: "t", Category: "c", Status: events.StatusLive,
		Embedding: events.Vector{0.5, -0.25}, Viewers: ViewerSet{ViewerKey("u"): 1}, Events: 3}
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
	if !reflect.DeepEqual(ls.Values(&got.Features, now), ls.Values(&st.Features, now)) || got.Title != "t" || got.Embedding[1] != -0.25 || got.Viewers[ViewerKey("u")] != 1 {
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

// fullUser has every small field set, with times in a zone other than UTC
// and a zero time.
func fullUser() *User {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	u := &User{UserID: "u-1", Taste: models.DecayedSum{Vector: events.Vector{0.5, -0.25, 1e-9}, Weight: 3.5, Time: t0},
		Categories: map[string]models.DecayedValue{"sneakers": {Value: 2, Time: t0}, "cards": {Value: 0.5}},
		Signals:    map[events.SignalKind]int64{events.SignalWatch: 40, events.SignalBuy: 1}, LastEvent: t0.Add(time.Hour),
		Applied: map[uint64]int64{1<<40 | 3: 41}}
	for i := range MaxRecent {
		u.Recent = append(u.Recent, RecentStream{LivestreamID: fmt.Sprintf("ls-%d", i), Kind: events.SignalWatch, Time: t0.Add(-time.Duration(i) * time.Minute)})
	}
	return u
}

// A user's small fields are binary (version 3) and decode to what the JSON
// of version 2 decodes to; a version-2 value still decodes.
func TestUserFieldsBinary(t *testing.T) {
	u := fullUser()
	b, err := UserCodec{}.Encode(u)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != codecVersion3 {
		t.Fatalf("user encoded as version %d, want 3", b[0])
	}
	js, _ := json.Marshal(u)
	v2 := append([]byte{codecVersion}, binary.AppendUvarint(nil, uint64(len(js)))...)
	v2 = append(v2, js...)
	v2 = appendApplied(v2, u.Applied)
	if v2, err = u.Features.AppendBinary(v2); err != nil {
		t.Fatal(err)
	}
	fromV3, err := UserCodec{}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	fromV2, err := UserCodec{}.Decode(v2)
	if err != nil {
		t.Fatal(err)
	}
	// Times come back in UTC from version 3: compare them as instants.
	got, want := utcTimes(fromV3.(*User)), utcTimes(fromV2.(*User))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("version 3 decodes to %+v\nversion 2 to %+v", got, want)
	}
	if !got.Categories["cards"].Time.IsZero() || len(got.Recent) != MaxRecent {
		t.Fatalf("zero time or recent streams lost: %+v", got)
	}
	for n := 1; n < len(b); n++ {
		if _, err := (UserCodec{}).Decode(b[:n]); err == nil {
			t.Fatalf("%d of %d bytes decoded", n, len(b))
		}
	}
	// Entity values keep their JSON fields (version 2).
	if b, _ := (EntityCodec{}).Encode(&Entity{ID: "s"}); b[0] != codecVersion {
		t.Fatalf("entity encoded as version %d", b[0])
	}
}

func utcTimes(u *User) *User {
	u.Taste.Time, u.LastEvent = u.Taste.Time.UTC(), u.LastEvent.UTC()
	for c, v := range u.Categories {
		v.Time = v.Time.UTC()
		u.Categories[c] = v
	}
	for i := range u.Recent {
		u.Recent[i].Time = u.Recent[i].Time.UTC()
	}
	return u
}

// The user table's encoding, as every flush does it for each changed user:
// version 2 (JSON fields) against version 3 (binary fields).
func BenchmarkUserCodec(b *testing.B) {
	u := fullUser()
	b.Run("json-fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			js, err := fastjson.Marshal(u)
			if err != nil {
				b.Fatal(err)
			}
			var back User
			if err := fastjson.Unmarshal(js, &back); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary-fields", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			bin := u.appendFields(buf[:0])
			var back User
			if err := back.readFields(wire.NewReader(bin), codecVersion3); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fullLivestream has every small field set, viewers on a busy stream, and
// times in a zone other than UTC.
func fullLivestream(viewers int) *Livestream {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 5, time.FixedZone("CET", 3600))
	l := &Livestream{LivestreamID: "ls-1", SellerID: "s-1", Title: "Vintage sneakers", Category: "sneakers",
		Tags: []string{"jordan", "retro"}, Language: "en", Status: events.StatusLive, MetadataTime: t0, LiveSince: t0,
		Embedding: events.Vector{0.5, -0.25}, EmbeddingModel: "m@1", EmbeddedText: "Vintage sneakers sneakers",
		Content: events.Vector{0.25, 0.5}, ContentHash: "abc", ContentModel: "m@1", ContentTime: t0,
		Audience: models.DecayedSum{Vector: events.Vector{1, 0}, Weight: 2, Time: t0}, Viewers: ViewerSet{},
		Events: 1234, LateDropped: 5, Applied: map[uint64]int64{7: 9}}
	for i := range viewers {
		l.Viewers[ViewerKey(fmt.Sprintf("u-%d", i))] = t0.UnixMilli() + int64(i)
	}
	return l
}

// A stream's small fields are binary (version 4) and decode to what the
// JSON of version 2 decodes to; a version-2 value still decodes.
func TestLivestreamFieldsBinary(t *testing.T) {
	for _, l := range []*Livestream{fullLivestream(300), {LivestreamID: "bare"}} {
		b, err := LivestreamCodec{}.Encode(l)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != codecVersion4 {
			t.Fatalf("livestream encoded as version %d, want 4", b[0])
		}
		js, _ := json.Marshal(l)
		v2 := append([]byte{codecVersion}, binary.AppendUvarint(nil, uint64(len(js)))...)
		v2 = append(v2, js...)
		v2 = appendApplied(v2, l.Applied)
		if v2, err = l.Features.AppendBinary(v2); err != nil {
			t.Fatal(err)
		}
		fromV3, err := DecodeLivestream(b)
		if err != nil {
			t.Fatal(err)
		}
		fromV2, err := DecodeLivestream(v2)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []*Livestream{fromV3, fromV2} {
			for _, tp := range []*time.Time{&x.MetadataTime, &x.LiveSince, &x.EndedAt, &x.ContentTime, &x.Audience.Time} {
				*tp = tp.UTC()
			}
		}
		if !reflect.DeepEqual(fromV3, fromV2) {
			t.Fatalf("version 3 decodes to %+v\nversion 2 to %+v", fromV3, fromV2)
		}
		for n := 1; n < len(b); n++ {
			if _, err := DecodeLivestream(b[:n]); err == nil {
				t.Fatalf("%d of %d bytes decoded", n, len(b))
			}
		}
	}
}

// A busy stream's table value as every flush encodes it: version 2 (JSON
// fields) against version 3 (binary fields), 2,000 viewers.
func BenchmarkLivestreamCodec(b *testing.B) {
	l := fullLivestream(2000)
	b.Run("json-fields", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fastjson.Marshal(l); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary-fields", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64<<10)
		for b.Loop() {
			buf = l.appendFields(buf[:0])
		}
	})
}

// appendFieldsV3 is the stream's small fields as codec version 3 wrote
// them: the viewers as user ids.
func appendFieldsV3(l *Livestream, viewers map[string]int64) []byte {
	// Everything before the viewers is the same in both versions.
	c := *l
	c.Viewers, c.Events, c.LateDropped = nil, 0, 0
	head := c.appendFields(nil)
	b := head[:len(head)-3] // the empty viewer set and the two zero counters, 1 byte each
	b = binary.AppendUvarint(b, uint64(len(viewers)))
	for id, seen := range viewers {
		b = wire.AppendString(b, id)
		b = binary.AppendVarint(b, seen)
	}
	b = binary.AppendVarint(b, l.Events)
	return binary.AppendVarint(b, l.LateDropped)
}

// A version-3 value (viewers by user id) and a version-2 value (JSON,
// viewers by user id) decode to the viewer keys of those ids.
func TestLivestreamDecodesViewerIDs(t *testing.T) {
	l := fullLivestream(0)
	l.Viewers, l.Events = nil, 7
	ids := map[string]int64{"u-1": 1764064800000, "u-2": 1764064801000, "u-3": 1764064700000}
	fields := appendFieldsV3(l, ids)
	v3 := append([]byte{codecVersion3}, binary.AppendUvarint(nil, uint64(len(fields)))...)
	v3 = append(v3, fields...)
	v3 = appendApplied(v3, nil)
	v3, _ = l.Features.AppendBinary(v3)

	js, _ := json.Marshal(map[string]any{"livestream_id": l.LivestreamID, "viewers": ids, "events": 7})
	v2 := append([]byte{codecVersion}, binary.AppendUvarint(nil, uint64(len(js)))...)
	v2 = append(v2, js...)
	v2 = appendApplied(v2, nil)
	v2, _ = l.Features.AppendBinary(v2)

	want := ViewerSet{}
	for id, seen := range ids {
		want[ViewerKey(id)] = seen
	}
	for name, b := range map[string][]byte{"v3": v3, "v2": v2} {
		got, err := DecodeLivestream(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got.Viewers, want) || got.Events != 7 || got.LivestreamID != l.LivestreamID {
			t.Errorf("%s: viewers %v events %d, want %v", name, got.Viewers, got.Events, want)
		}
		// And it re-encodes as version 4 to the same set.
		re, err := LivestreamCodec{}.Encode(got)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeLivestream(re)
		if err != nil || re[0] != codecVersion4 || !reflect.DeepEqual(back.Viewers, want) {
			t.Errorf("%s re-encoded: version %d, viewers %v, err %v", name, re[0], back.Viewers, err)
		}
	}
}

// ExpireViewers skips its scan only when no viewer can have expired: on a
// random mix of heartbeats (in and out of order), leaves, expiries and a
// decode, the set always equals a naive scan's.
func TestExpireViewersEqualsAScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	var l Livestream
	want := ViewerSet{}
	now := int64(1_764_064_800_000)
	for i := range 20000 {
		now += int64(rng.IntN(400))
		k := uint64(rng.IntN(300))
		switch r := rng.IntN(100); {
		case r < 70: // a heartbeat, sometimes late
			seen := now - int64(rng.IntN(3))*int64(rng.IntN(60_000))
			l.SeeViewer(k, seen)
			if seen > want[k] {
				want[k] = seen
			}
		case r < 75: // a leave
			delete(l.Viewers, k)
			delete(want, k)
		case r < 76: // the value comes back from its encoding
			b, err := LivestreamCodec{}.Encode(&l)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeLivestream(b)
			if err != nil {
				t.Fatal(err)
			}
			l = *back
		default:
			horizon := now - 120_000
			l.ExpireViewers(horizon)
			for k, seen := range want {
				if seen < horizon {
					delete(want, k)
				}
			}
			if len(l.Viewers) != len(want) {
				t.Fatalf("step %d: %d viewers, a scan keeps %d", i, len(l.Viewers), len(want))
			}
			for k, seen := range want {
				if l.Viewers[k] != seen {
					t.Fatalf("step %d: viewer %d seen %d, want %d", i, k, l.Viewers[k], seen)
				}
			}
		}
	}
}
