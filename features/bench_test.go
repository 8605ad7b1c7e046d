package features

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// legacyState is the JSON state before the binary encoding (count and sum
// tiles of the seven original livestream features): the baseline.
type legacyState struct {
	Watermark time.Time            `json:"watermark"`
	Sources   map[string]time.Time `json:"sources,omitempty"`
	Series    map[string]*struct {
		B []legacyBucket `json:"b,omitempty"`
	} `json:"series,omitempty"`
}

type legacyBucket struct {
	S int64   `json:"s"`
	C int64   `json:"c"`
	V float64 `json:"v,omitempty"`
}

var legacyNames = []string{"joins_5m", "chat_1m", "chat_5m", "bids_5m", "sold_1h", "gmv_1h", "avg_sale_1h"}

func toLegacy(st *State) *legacyState {
	l := &legacyState{Watermark: st.Watermark, Sources: st.Sources, Series: map[string]*struct {
		B []legacyBucket `json:"b,omitempty"`
	}{}}
	for _, n := range legacyNames {
		s := st.Series[n]
		if s == nil {
			continue
		}
		x := &struct {
			B []legacyBucket `json:"b,omitempty"`
		}{}
		for _, b := range s.b {
			x.B = append(x.B, legacyBucket{S: b.start, C: b.n, V: b.x})
		}
		l.Series[n] = x
	}
	return l
}

func realisticStates(b *testing.B) (busy, quiet *State, set *Set) {
	set = mustSet(b, LivestreamDefaults()...)
	busy = &State{}
	busyStream(set, busy, t0, 90, rand.New(rand.NewPCG(1, 2)))
	// A quiet stream: a dozen viewers, a chat message a minute, a bid every 5.
	quiet = &State{}
	rng := rand.New(rand.NewPCG(3, 4))
	for m := range 90 {
		at := t0.Add(time.Duration(m) * time.Minute)
		for v := range 12 {
			set.ApplyEvent(quiet, ev("viewing", at.Sub(t0)+time.Duration(v)*time.Second, "type", "heartbeat", "user_id", fmt.Sprint("v", v)))
		}
		set.ApplyEvent(quiet, ev("chat", at.Sub(t0)+30*time.Second, "user_id", fmt.Sprint("v", rng.IntN(12))))
		if m%5 == 0 {
			set.ApplyEvent(quiet, ev("auctions", at.Sub(t0)+40*time.Second, "type", "bid", "user_id", "v1", "amount", 12.0))
		}
	}
	return busy, quiet, set
}

// BenchmarkStateCodec measures encode+decode of one livestream's feature
// state (the livestream defaults, 19 features): the binary codec, the JSON
// form tables use (binary in base64), and the JSON state of before (7
// count/sum features only) as the baseline.
func BenchmarkStateCodec(b *testing.B) {
	busy, quiet, _ := realisticStates(b)
	for _, c := range []struct {
		name string
		st   *State
	}{{"busy", busy}, {"quiet", quiet}} {
		b.Run(c.name+"/binary", func(b *testing.B) {
			var buf []byte
			var size int
			for b.Loop() {
				var err error
				buf, err = c.st.AppendBinary(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				var back State
				if err := back.UnmarshalBinary(buf); err != nil {
					b.Fatal(err)
				}
				size = len(buf)
			}
			b.ReportMetric(float64(size), "bytes/key")
		})
		b.Run(c.name+"/binary-expand", func(b *testing.B) { // decode everything, as serving's Expand does
			var buf []byte
			for b.Loop() {
				buf, _ = c.st.AppendBinary(buf[:0])
				var back State
				if err := back.UnmarshalBinary(buf); err != nil {
					b.Fatal(err)
				}
				back.Expand()
			}
			b.ReportMetric(float64(len(buf)), "bytes/key")
		})
		b.Run(c.name+"/json", func(b *testing.B) {
			var size int
			for b.Loop() {
				out, err := json.Marshal(c.st)
				if err != nil {
					b.Fatal(err)
				}
				var back State
				if err := json.Unmarshal(out, &back); err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			b.ReportMetric(float64(size), "bytes/key")
		})
		b.Run(c.name+"/binary-7-legacy-features", func(b *testing.B) {
			st := &State{Watermark: c.st.Watermark, Sources: c.st.Sources, Series: map[string]*Series{}}
			for _, n := range legacyNames {
				st.Series[n] = c.st.Series[n]
			}
			var buf []byte
			for b.Loop() {
				buf, _ = st.AppendBinary(buf[:0])
				var back State
				if err := back.UnmarshalBinary(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf)), "bytes/key")
		})
		b.Run(c.name+"/old-json-7-features", func(b *testing.B) {
			l := toLegacy(c.st)
			var size int
			for b.Loop() {
				out, err := json.Marshal(l)
				if err != nil {
					b.Fatal(err)
				}
				var back legacyState
				if err := json.Unmarshal(out, &back); err != nil {
					b.Fatal(err)
				}
				size = len(out)
			}
			b.ReportMetric(float64(size), "bytes/key")
		})
	}
}

// BenchmarkProcessorCycle is what a processor does per event without a
// cache in front of its store: decode the key's state, apply the event,
// encode the state. Sketch tiles the event does not write pass through
// undecoded.
func BenchmarkProcessorCycle(b *testing.B) {
	busy, quiet, set := realisticStates(b)
	for _, c := range []struct {
		name string
		st   *State
	}{{"busy", busy}, {"quiet", quiet}} {
		for _, kind := range []string{"chat", "bid", "heartbeat"} {
			b.Run(c.name+"/"+kind, func(b *testing.B) {
				orig, _ := c.st.MarshalBinary()
				var buf []byte
				end := c.st.Watermark
				i := 0
				var e Event
				for b.Loop() {
					var st State
					if err := st.UnmarshalBinary(orig); err != nil {
						b.Fatal(err)
					}
					at := end.Add(time.Duration(i%100) * 100 * time.Millisecond)
					user := userNames[i%len(userNames)]
					switch kind {
					case "chat":
						e = &typedChat{at: at, userID: user}
					case "bid":
						e = &typedAuction{at: at, typ: "bid", user: user, amount: float64(10 + i%90), currenc: "USD"}
					default:
						e = MapEvent{Src: "viewing", At: at, Fields: map[string]any{"type": "heartbeat", "user_id": user}}
					}
					set.ApplyEvent(&st, e)
					var err error
					if buf, err = st.AppendBinary(buf[:0]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(len(buf)), "bytes/key")
			})
		}
	}
}

// typedChat is how a processor implements Event on its decoded structs:
// a switch on the field name, no map.
type typedChat struct {
	at                                       time.Time
	userID, livestreamID, sellerID, category string
}

func (e *typedChat) Source() string  { return "chat" }
func (e *typedChat) Time() time.Time { return e.at }
func (e *typedChat) Field(name string) (Value, bool) {
	switch name {
	case "user_id":
		return StringValue(e.userID), true
	case "livestream_id":
		return StringValue(e.livestreamID), true
	case "seller_id":
		return StringValue(e.sellerID), true
	case "category":
		return StringValue(e.category), true
	}
	return Value{}, false
}

type typedAuction struct {
	at                 time.Time
	typ, user, currenc string
	amount             float64
}

func (e *typedAuction) Source() string  { return "auctions" }
func (e *typedAuction) Time() time.Time { return e.at }
func (e *typedAuction) Field(name string) (Value, bool) {
	switch name {
	case "type":
		return StringValue(e.typ), true
	case "user_id":
		return StringValue(e.user), e.user != ""
	case "currency":
		return StringValue(e.currenc), e.currenc != ""
	case "amount":
		return NumberValue(e.amount), e.amount != 0
	}
	return Value{}, false
}

// BenchmarkApply applies one event to a busy stream's state with the
// livestream defaults (each event feeds 3-10 features).
func BenchmarkApply(b *testing.B) {
	busy, _, set := realisticStates(b)
	end := busy.Watermark
	b.Run("chat/typed", func(b *testing.B) {
		e := &typedChat{livestreamID: "ls-1", sellerID: "s", category: "c"}
		i := 0
		for b.Loop() {
			e.at = end.Add(time.Duration(i) * 100 * time.Millisecond)
			e.userID = userNames[i%len(userNames)]
			set.ApplyEvent(busy, e)
			i++
		}
	})
	b.Run("bid/typed", func(b *testing.B) {
		e := &typedAuction{typ: "bid", currenc: "USD"}
		i := 0
		for b.Loop() {
			e.at = end.Add(time.Duration(i) * 100 * time.Millisecond)
			e.user = userNames[i%len(userNames)]
			e.amount = float64(10 + i%90)
			set.ApplyEvent(busy, e)
			i++
		}
	})
	b.Run("bid/map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			e := MapEvent{Src: "auctions", At: end.Add(time.Duration(i) * 100 * time.Millisecond),
				Fields: map[string]any{"type": "bid", "user_id": userNames[i%len(userNames)], "amount": float64(10 + i%90), "currency": "USD"}}
			set.ApplyEvent(busy, e)
			i++
		}
	})
	b.Run("heartbeat/map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			e := MapEvent{Src: "viewing", At: end.Add(time.Duration(i) * 100 * time.Millisecond),
				Fields: map[string]any{"type": "heartbeat", "user_id": userNames[i%len(userNames)]}}
			set.ApplyEvent(busy, e)
			i++
		}
	})
}

var userNames = func() []string {
	out := make([]string, 500)
	for i := range out {
		out[i] = fmt.Sprintf("user-%d", i)
	}
	return out
}()

// longRun applies n events over days simulated days to keys streams with
// the livestream defaults, and returns the mean encoded bytes per key at
// the end of each simulated 6 hours.
func longRun(tb testing.TB, n, keys, days int) []float64 {
	set := mustSet(tb, LivestreamDefaults()...)
	states := make([]State, keys)
	rng := rand.New(rand.NewPCG(21, 22))
	span := time.Duration(days) * 24 * time.Hour
	step := span / time.Duration(n)
	var perKey []float64
	next := 6 * time.Hour
	var buf []byte
	for i := range n {
		off := time.Duration(i) * step
		k := rng.IntN(keys)
		user := userNames[rng.IntN(len(userNames))]
		var e MapEvent
		switch r := rng.IntN(100); {
		case r < 60:
			e = ev("viewing", off, "type", []string{"join", "heartbeat", "heartbeat", "leave"}[rng.IntN(4)], "user_id", user)
		case r < 85:
			e = ev("chat", off, "user_id", user)
		case r < 97:
			e = ev("auctions", off, "type", "bid", "user_id", user, "amount", float64(1+rng.IntN(300)))
		default:
			e = ev("auctions", off, "type", []string{"sold", "start", "unsold"}[rng.IntN(3)], "user_id", user, "amount", float64(1+rng.IntN(300)))
		}
		set.ApplyEvent(&states[k], e)
		if off >= next {
			next += 6 * time.Hour
			total := 0
			for j := range states {
				buf, _ = states[j].AppendBinary(buf[:0])
				total += len(buf)
			}
			perKey = append(perKey, float64(total)/float64(keys))
		}
	}
	return perKey
}

// BenchmarkLongRun applies 2M events over 4 simulated days to 100 streams
// (~5 events/s per stream) and reports the state bytes per key after the
// first 6 hours and at the end: flat, as windows are bounded.
func BenchmarkLongRun(b *testing.B) {
	for b.Loop() {
		perKey := longRun(b, 2_000_000, 100, 4)
		b.ReportMetric(perKey[0], "bytes/key@6h")
		b.ReportMetric(perKey[len(perKey)-1], "bytes/key@4d")
		mx := 0.0
		for _, x := range perKey {
			mx = max(mx, x)
		}
		b.ReportMetric(mx, "max-bytes/key")
		b.ReportMetric(2_000_000, "events")
	}
}

// TestStateBytesFlat is the short form of BenchmarkLongRun: the state per
// key does not grow with time.
func TestStateBytesFlat(t *testing.T) {
	n := 300_000
	if testing.Short() || raceEnabled {
		n = 60_000
	}
	perKey := longRun(t, n, 20, 3)
	first := perKey[1] // after 12h, windows full
	for i, x := range perKey[2:] {
		if x > 1.25*first {
			t.Fatalf("bytes per key grew: %.0f after 12h, %.0f after %dh", first, x, 6*(i+3))
		}
	}
	t.Logf("bytes/key every 6h: %.0f", perKey)
}

// BenchmarkFlushCycle is what the write-behind state does for a busy
// stream under live traffic: the state stays decoded in the cache, a few
// events of one source change it between two flushes, and each flush
// encodes the whole value. Only the series the events wrote are encoded
// again; the others reuse their encoding from the previous flush.
func BenchmarkFlushCycle(b *testing.B) {
	busy, _, set := realisticStates(b)
	for _, kind := range []string{"chat", "bid", "heartbeat"} {
		b.Run(kind, func(b *testing.B) {
			orig, _ := busy.MarshalBinary()
			var st State
			if err := st.UnmarshalBinary(orig); err != nil {
				b.Fatal(err)
			}
			st.Expand()
			end := st.Watermark
			buf, _ := st.AppendBinary(nil)
			i := 0
			chat := &typedChat{}
			bid := &typedAuction{typ: "bid", currenc: "USD"}
			hb := MapEvent{Src: "viewing", Fields: map[string]any{"type": "heartbeat", "user_id": ""}}
			for b.Loop() {
				at := end.Add(time.Duration(i) * 10 * time.Millisecond)
				user := userNames[i%len(userNames)]
				var e Event
				switch kind {
				case "chat":
					chat.at, chat.userID = at, user
					e = chat
				case "bid":
					bid.at, bid.user, bid.amount = at, user, float64(10+i%90)
					e = bid
				default:
					hb.At = at
					hb.Fields["user_id"] = user
					e = hb
				}
				set.ApplyEvent(&st, e)
				var err error
				if buf, err = st.AppendBinary(buf[:0]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(len(buf)), "bytes/key")
		})
	}
}

// BenchmarkPercentileRead reads a 1h p90 over 12 tiles of ~100 bids (a
// busy stream's bid_amount_p90_1h: every tile exact), as serving does per
// hit.
func BenchmarkPercentileRead(b *testing.B) {
	set := mustSet(b, Definition{Name: "p90", Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: "amount",
		Aggregation: ApproxPercentile, P: 0.9, Window: SlidingWindow(time.Hour, 5*time.Minute), Lateness: 2 * time.Minute})
	rng := rand.New(rand.NewPCG(1, 2))
	var st State
	for i := range 1200 {
		set.ApplyEvent(&st, ev("auctions", time.Duration(i)*3*time.Second, "type", "bid", "amount", float64(10+rng.IntN(90))))
	}
	st.Expand()
	now := st.Watermark
	for b.Loop() {
		set.Result(&st, "p90", now)
	}
}
