package tables

import (
	"bytes"
	"maps"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
)

// realValues are encoded table values as the processors write them: a live
// stream with viewers, a vector and every default feature fed; a user with
// tastes; a seller entity.
func realValues(tb testing.TB) (set *features.Set, out [][]byte) {
	set, err := features.NewSet(features.Defaults()...)
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ls := &Livestream{LivestreamID: "ls-1", SellerID: "s-1", Title: "Vintage sneakers", Category: "sneakers",
		Tags: []string{"jordan", "retro"}, Language: "en", Status: events.StatusLive, LiveSince: t0,
		Embedding: events.Vector{0.5, -0.25, 0.125}, Viewers: ViewerSet{ViewerKey("u-1"): t0.UnixMilli()}, Events: 60}
	u := fullUser()
	se := &Entity{ID: "s-1"}
	for i := range 60 {
		at := t0.Add(time.Duration(i) * 7 * time.Second)
		for _, ev := range []features.MapEvent{
			{Src: "chat", At: at, Fields: map[string]any{"user_id": "u-1", "text": "nice", "seller_id": "s-1", "category": "sneakers"}},
			{Src: "viewing", At: at, Fields: map[string]any{"user_id": "u-1", "type": "join", "seller_id": "s-1", "category": "sneakers"}},
			{Src: "auctions", At: at, Fields: map[string]any{"user_id": "u-2", "type": "bid", "amount": float64(10 + i), "currency": "USD",
				"auction_id": "a-1", "seller_id": "s-1", "category": "sneakers"}},
		} {
			set.ForEntity("livestream").ApplyEvent(&ls.Features, ev)
			set.ForEntity("user").ApplyEvent(&u.Features, ev)
			set.ForEntity("seller").ApplyEvent(&se.Features, ev)
		}
	}
	for _, enc := range []func() ([]byte, error){
		func() ([]byte, error) { return LivestreamCodec{}.Encode(ls) },
		func() ([]byte, error) { return UserCodec{}.Encode(u) },
		func() ([]byte, error) { return EntityCodec{}.Encode(se) },
	} {
		b, err := enc()
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return set, out
}

// FuzzUnmarshal: a table value read from a changelog topic (anyone with
// write access can put bytes there) never crashes a codec or the feature
// reads the serving layer does on it; what decodes re-encodes to bytes
// that decode to the same encoding again.
func FuzzUnmarshal(f *testing.F) {
	set, vals := realValues(f)
	for _, b := range vals {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`{"livestream_id":"ls","status":"live","viewers":{"u":1}}`))
	f.Add([]byte{codecVersion, 2, '{', '}', 0})
	now := time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		type codec interface {
			Encode(any) ([]byte, error)
			Decode([]byte) (any, error)
		}
		for _, c := range []struct {
			entity string
			codec  codec
			fs     func(any) *features.State
		}{
			{"livestream", LivestreamCodec{}, func(v any) *features.State { return &v.(*Livestream).Features }},
			{"user", UserCodec{}, func(v any) *features.State { return &v.(*User).Features }},
			{"seller", EntityCodec{}, func(v any) *features.State { return &v.(*Entity).Features }},
		} {
			v, err := c.codec.Decode(data)
			if err != nil {
				continue
			}
			// What serving does with a value: read its features.
			fset := set.ForEntity(c.entity)
			fset.Values(c.fs(v), now)
			b, err := c.codec.Encode(v)
			if err != nil {
				t.Fatalf("%s: re-encoding a decoded value: %v", c.entity, err)
			}
			w, err := c.codec.Decode(b)
			if err != nil {
				t.Fatalf("%s: %x decoded, its re-encoding %x does not: %v", c.entity, data, b, err)
			}
			// A stream's viewers are encoded in map order: compare them as
			// maps, and the rest as bytes.
			vb, vw := takeViewers(v), takeViewers(w)
			if !maps.Equal(vb, vw) {
				t.Fatalf("%s: viewers %v, then %v", c.entity, vb, vw)
			}
			if b, err = c.codec.Encode(v); err != nil {
				t.Fatal(err)
			}
			b2, err := c.codec.Encode(w)
			if err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("%s: re-encoding is not stable: %x then %x (%v)", c.entity, b, b2, err)
			}
		}
	})
}

// takeViewers removes and returns a stream's viewers (nil for other values).
func takeViewers(v any) ViewerSet {
	l, ok := v.(*Livestream)
	if !ok {
		return nil
	}
	viewers := l.Viewers
	l.Viewers = nil
	return viewers
}
