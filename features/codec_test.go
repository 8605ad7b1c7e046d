package features

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// busyStream applies minutes of a busy live stream's traffic to st with
// the livestream defaults: ~200 viewers heartbeating every 30s (a few
// joining and leaving), 60 chat messages, 20 bids and a sale every 2
// minutes, per minute. It returns the time of the last event.
func busyStream(set *Set, st *State, start time.Time, minutes int, rng *rand.Rand) time.Time {
	var last time.Time
	for m := range minutes {
		base := start.Add(time.Duration(m) * time.Minute)
		for i := range 480 { // 400 heartbeats + joins/leaves + chat + bids, spread over the minute
			at := base.Add(time.Duration(i) * time.Minute / 480)
			user := fmt.Sprintf("user-%d", rng.IntN(250))
			var e MapEvent
			switch {
			case i%8 < 6:
				typ := "heartbeat"
				if rng.IntN(40) == 0 {
					typ = []string{"join", "leave"}[rng.IntN(2)]
				}
				e = MapEvent{Src: "viewing", At: at, Fields: map[string]any{"type": typ, "user_id": user, "livestream_id": "ls-1"}}
			case i%8 == 6:
				e = MapEvent{Src: "chat", At: at, Fields: map[string]any{"user_id": user, "livestream_id": "ls-1", "text": "nice"}}
			case i%24 == 7:
				e = MapEvent{Src: "auctions", At: at, Fields: map[string]any{"type": "bid", "user_id": user, "amount": float64(10 + rng.IntN(90)), "currency": "USD", "livestream_id": "ls-1"}}
			default:
				continue
			}
			set.ApplyEvent(st, e)
			last = at
		}
		if m%2 == 0 {
			set.ApplyEvent(st, MapEvent{Src: "auctions", At: base.Add(59 * time.Second), Fields: map[string]any{"type": "sold", "user_id": "user-1", "amount": 42.5, "currency": "USD"}})
			set.ApplyEvent(st, MapEvent{Src: "auctions", At: base.Add(59 * time.Second), Fields: map[string]any{"type": "start", "auction_id": fmt.Sprint(m)}})
		}
	}
	return last
}

func TestCodecRoundTrip(t *testing.T) {
	set := mustSet(t, Defaults()...)
	var st State
	end := busyStream(set, &st, t0, 90, rand.New(rand.NewPCG(3, 4)))
	// Entity features of users and sellers too (all in one state here).
	bin, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := back.UnmarshalBinary(bin); err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{end, end.Add(30 * time.Second), end.Add(2 * time.Hour)} {
		if a, b := set.Results(&st, now), set.Results(&back, now); !reflect.DeepEqual(a, b) {
			t.Fatalf("results differ after a round trip:\n%v\n%v", a, b)
		}
	}
	if !back.Watermark.Equal(st.Watermark) || len(back.Sources) != len(st.Sources) {
		t.Fatalf("watermarks %v %v", back.Watermark, back.Sources)
	}
	// Deterministic: re-encoding gives the same bytes.
	again, _ := back.MarshalBinary()
	if !bytes.Equal(bin, again) {
		t.Fatal("re-encoding differs")
	}
	// Decoded state keeps working.
	set.ApplyEvent(&back, MapEvent{Src: "chat", At: end, Fields: map[string]any{"user_id": "x"}})
	set.ApplyEvent(&st, MapEvent{Src: "chat", At: end, Fields: map[string]any{"user_id": "x"}})
	if a, b := set.Results(&st, end), set.Results(&back, end); !reflect.DeepEqual(a, b) {
		t.Fatal("results differ after applying to a decoded state")
	}
	t.Logf("busy stream state: %d bytes binary", len(bin))
}

// The state inside a table value (tables.Livestream) is JSON: the binary
// encoding in base64 plus the watermarks. JSON written before the binary
// encoding still decodes; its count/sum tiles stay readable.
func TestStateJSON(t *testing.T) {
	set := mustSet(t, LivestreamDefaults()...)
	var st State
	end := busyStream(set, &st, t0, 10, rand.New(rand.NewPCG(5, 6)))
	type table struct {
		ID       string `json:"id"`
		Features State  `json:"features"`
	}
	b, err := json.Marshal(&table{ID: "x", Features: st})
	if err != nil {
		t.Fatal(err)
	}
	var back table
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if a, c := set.Results(&st, end), set.Results(&back.Features, end); !reflect.DeepEqual(a, c) {
		t.Fatal("JSON round trip changed results")
	}
	legacy := `{"watermark":"2026-11-25T12:09:59Z","sources":{"chat":"2026-11-25T12:09:59Z","auctions":"2026-11-25T12:09:59Z"},
		"series":{"chat_1m":{"b":[{"s":1795694940000,"c":3},{"s":1795694945000,"c":2}]},
		"gmv_1h":{"b":[{"s":1795694700000,"c":2,"v":30.5}]}}}`
	var old State
	if err := json.Unmarshal([]byte(legacy), &old); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1795694949000)
	v := set.Values(&old, now)
	if v["chat_1m"] != 5 || v["gmv_1h"] != 30.5 || v["avg_sale_1h"] != 0 {
		t.Fatalf("legacy values %v", map[string]float64{"chat_1m": v["chat_1m"], "gmv_1h": v["gmv_1h"], "avg_sale_1h": v["avg_sale_1h"]})
	}
	// Applying to it adopts the legacy tiles.
	set.ApplyEvent(&old, MapEvent{Src: "chat", At: now, Fields: map[string]any{"user_id": "u"}})
	if got := set.Values(&old, now)["chat_1m"]; got != 6 {
		t.Fatalf("chat_1m after an event on legacy state: %v", got)
	}
	if _, err := old.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptStateIsAnError(t *testing.T) {
	set := mustSet(t, Defaults()...)
	var st State
	busyStream(set, &st, t0, 5, rand.New(rand.NewPCG(7, 8)))
	bin, _ := st.MarshalBinary()
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 2000 {
		b := bytes.Clone(bin)
		switch i % 3 {
		case 0:
			b = b[:rng.IntN(len(b))]
		case 1:
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		case 2:
			b = append(b, byte(rng.IntN(256)))
		}
		var x State
		_ = x.UnmarshalBinary(b) // must not panic; an error or some state
	}
	var x State
	if err := x.UnmarshalBinary([]byte{1, 2, 3}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage: %v", err)
	}
	if err := x.UnmarshalBinary(nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty: %v", err)
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	set := mustSet(f, Defaults()...)
	// A small seed with one tile of every kind (big seeds make the
	// fuzzer's minimization slow).
	var st State
	for _, e := range []MapEvent{
		ev("chat", 0, "user_id", "u1"), ev("viewing", time.Second, "type", "join", "user_id", "u2"),
		ev("auctions", 2*time.Second, "type", "bid", "user_id", "u1", "amount", 12.5),
		ev("auctions", 3*time.Second, "type", "sold", "user_id", "u1", "amount", 20.0),
	} {
		set.ApplyEvent(&st, e)
	}
	st.Dropped = map[string]int64{"chat_1m": 1}
	bin, _ := st.MarshalBinary()
	f.Add(bin)
	f.Add([]byte{codecMagic, codecVersion, 0, 0, 0, 0, 0})
	// Percentile tiles in their sketch form, and as written before (kind 9).
	sk := newDD()
	for _, x := range []float64{-2, 0, 12.5, 99} {
		_ = sk.Add(x)
	}
	pst := State{Series: map[string]*Series{"bid_amount_p90_1h": {kind: pPct, width: 300000,
		b: []bucket{{start: 0, n: 4}}, refs: []tileRef{{ext: sk}}}}}
	bin, _ = pst.MarshalBinary()
	f.Add(bin)
	if old, err := os.ReadFile("testdata/codec/ddsketch_tiles_v1.hex"); err == nil {
		if b, err := hex.DecodeString(strings.TrimSpace(string(old))); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var x State
		if err := x.UnmarshalBinary(b); err != nil {
			return
		}
		// What decodes can be used and re-encoded.
		set.Results(&x, t0)
		set.ApplyEvent(&x, MapEvent{Src: "chat", At: t0, Fields: map[string]any{"user_id": "u"}})
		if _, err := x.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCachedEncodingEqualsFresh: a state encoded after every few events
// (each series keeps its encoding until a write or an eviction changes it,
// as the write-behind flush does) encodes to the same bytes as the same
// state built without intermediate encodings, through writes, evictions,
// late events and decodes in between.
func TestCachedEncodingEqualsFresh(t *testing.T) {
	set := mustSet(t, LivestreamDefaults()...)
	var cached, fresh State
	rng := rand.New(rand.NewPCG(7, 8))
	users := 40
	var buf []byte
	for i := range 6000 {
		// Mostly in order over 90 minutes (windows slide, tiles expire),
		// some late events, some far behind.
		at := time.Duration(i) * 900 * time.Millisecond
		if rng.IntN(10) == 0 {
			at -= time.Duration(rng.IntN(120)) * time.Second
		}
		user := fmt.Sprint("u-", rng.IntN(users))
		var e MapEvent
		switch rng.IntN(5) {
		case 0, 1:
			e = ev("viewing", at, "type", []string{"join", "heartbeat", "leave"}[rng.IntN(3)], "user_id", user)
		case 2:
			e = ev("chat", at, "user_id", user, "text", "hi")
		case 3:
			e = ev("auctions", at, "type", []string{"bid", "sold", "start"}[rng.IntN(3)], "user_id", user,
				"amount", float64(1+rng.IntN(500))/4, "currency", "USD", "auction_id", fmt.Sprint(i/50))
		default:
			e = ev("livestreams", at, "status", "live", "title", "t")
		}
		set.ApplyEvent(&cached, e)
		set.ApplyEvent(&fresh, e)
		if rng.IntN(4) == 0 {
			var err error
			if buf, err = cached.AppendBinary(buf[:0]); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(500) == 0 { // a restart: the cached state comes back from its encoding
			enc, _ := cached.MarshalBinary()
			cached = State{}
			if err := cached.UnmarshalBinary(enc); err != nil {
				t.Fatal(err)
			}
		}
		if i%97 == 0 {
			got, err := cached.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var copyOfFresh State
			want, _ := fresh.MarshalBinary()
			if err := copyOfFresh.UnmarshalBinary(want); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("event %d: cached encoding differs from a fresh one (%d vs %d bytes)", i, len(got), len(want))
			}
		}
	}
}
