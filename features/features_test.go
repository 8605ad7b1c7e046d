package features

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func mustSet(t testing.TB, defs ...Definition) *Set {
	t.Helper()
	s, err := NewSet(defs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ev(src string, at time.Duration, kv ...any) MapEvent {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return MapEvent{Src: src, At: t0.Add(at), Fields: m}
}

func TestWindowCountsSlideWithTime(t *testing.T) {
	d := Definition{Name: "chat_1m", Sources: []string{"chat"}, Aggregation: Count, Window: SlidingWindow(time.Minute, 10*time.Second), Lateness: time.Minute}
	set := mustSet(t, d)
	var st State
	for i := range 12 { // one message every 10s for 2 minutes
		set.ApplyEvent(&st, ev("chat", time.Duration(i)*10*time.Second))
	}
	// At t0+115s the window (55s, 115s] overlaps buckets 50,60,...,110 → 7 events.
	if got := set.Values(&st, t0.Add(115*time.Second))["chat_1m"]; got != 7 {
		t.Fatalf("chat_1m = %v, want 7", got)
	}
	if got := set.Values(&st, t0.Add(time.Hour))["chat_1m"]; got != 0 {
		t.Fatalf("chat_1m an hour later = %v, want 0", got)
	}
}

// The deprecated Observation path (Source, Types, numeric Fields) keeps
// working for the processors until they implement Event.
func TestDeprecatedObservationAPI(t *testing.T) {
	set := mustSet(t,
		Definition{Name: "gmv", Source: "auctions", Types: []string{"sold"}, Field: "amount", Aggregation: Sum, Window: Window{Size: time.Hour, Bucket: time.Minute}},
		Definition{Name: "avg", Source: "auctions", Types: []string{"sold"}, Field: "amount", Aggregation: Mean, Window: Window{Size: time.Hour, Bucket: time.Minute}},
		Definition{Name: "bids", Source: "auctions", Types: []string{"bid"}, Aggregation: Count, Window: Window{Size: time.Hour, Bucket: time.Minute}},
		Definition{Name: "chats", Source: "chat", Types: []string{"message"}, Aggregation: Count, Window: Window{Size: time.Hour, Bucket: time.Minute}},
		Definition{Name: "live", Source: "livestreams", Types: []string{"live"}, Aggregation: Count, Window: Window{Size: time.Hour, Bucket: time.Minute}},
	)
	var st State
	obs := func(typ string, amount float64, at time.Duration) {
		set.Apply(&st, Observation{Source: "auctions", Type: typ, Time: t0.Add(at), Fields: map[string]float64{"amount": amount}})
	}
	obs("bid", 10, 0)
	obs("bid", 20, time.Second)
	obs("sold", 20, 2*time.Second)
	obs("sold", 40, 3*time.Minute)
	set.Apply(&st, Observation{Source: "chat", Type: "message", Time: t0})
	set.Apply(&st, Observation{Source: "livestreams", Type: "live", Time: t0})
	v := set.Values(&st, t0.Add(5*time.Minute))
	if v["gmv"] != 60 || v["avg"] != 30 || v["bids"] != 2 || v["chats"] != 1 || v["live"] != 1 {
		t.Fatalf("values %v", v)
	}
	if d, _ := set.Get("gmv"); d.Source != "auctions" || !slices.Equal(d.Sources, []string{"auctions"}) {
		t.Fatalf("normalized sources %q %q", d.Source, d.Sources)
	}
	// The same through typed events.
	var st2 State
	for _, e := range []MapEvent{
		ev("auctions", 0, "type", "bid", "amount", 10.0), ev("auctions", time.Second, "type", "bid", "amount", 20.0),
		ev("auctions", 2*time.Second, "type", "sold", "amount", 20.0), ev("auctions", 3*time.Minute, "type", "sold", "amount", 40.0),
		ev("chat", 0), ev("livestreams", 0, "status", "live"),
	} {
		set.ApplyEvent(&st2, e)
	}
	if v2 := set.Values(&st2, t0.Add(5*time.Minute)); !mapsEqual(v, v2) {
		t.Fatalf("events %v, observations %v", v2, v)
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestLateEventsAreDroppedNotMerged(t *testing.T) {
	set := mustSet(t,
		Definition{Name: "c", Sources: []string{"chat"}, Aggregation: Count, Window: SlidingWindow(time.Hour, time.Minute), Lateness: 30 * time.Second},
		Definition{Name: "c2", Sources: []string{"chat"}, Aggregation: Count, Window: SlidingWindow(time.Hour, time.Minute), Lateness: 5 * time.Minute},
	)
	var st State
	if o := set.ApplyEvent(&st, ev("chat", 10*time.Minute)); o.Fed != 2 || o.Late != 0 {
		t.Fatalf("first event %+v", o)
	}
	if o := set.ApplyEvent(&st, ev("chat", 10*time.Minute-20*time.Second)); o.Late != 0 {
		t.Fatalf("event within lateness dropped: %+v", o)
	}
	o := set.ApplyEvent(&st, ev("chat", 10*time.Minute-31*time.Second))
	if o.Fed != 2 || o.Late != 1 || o.Dropped() {
		t.Fatalf("late for one feature: %+v", o)
	}
	if o := set.ApplyEvent(&st, ev("chat", 0)); !o.Dropped() {
		t.Fatalf("late for both: %+v", o)
	}
	v := set.Values(&st, t0.Add(10*time.Minute))
	if v["c"] != 2 || v["c2"] != 3 {
		t.Fatalf("values %v", v)
	}
	if st.Dropped["c"] != 2 || st.Dropped["c2"] != 1 {
		t.Fatalf("dropped %v", st.Dropped)
	}
}

// A consumer may read one topic minutes ahead of another (catching up on a
// backlog): lateness is judged per source, so nothing is dropped for it.
func TestLatenessIsPerSource(t *testing.T) {
	set := mustSet(t,
		Definition{Name: "chats", Sources: []string{"chat"}, Aggregation: Count, Window: SlidingWindow(time.Hour, time.Minute), Lateness: 30 * time.Second},
		Definition{Name: "joins", Sources: []string{"viewing"}, Aggregation: Count, Window: SlidingWindow(time.Hour, time.Minute), Lateness: 30 * time.Second},
	)
	var st State
	for i := range 10 {
		set.ApplyEvent(&st, ev("chat", time.Duration(i)*time.Minute))
	}
	for i := range 10 {
		if o := set.ApplyEvent(&st, ev("viewing", time.Duration(i)*time.Minute)); o.Late > 0 {
			t.Fatalf("viewing event %d dropped as late because chat ran ahead", i)
		}
	}
	v := set.Values(&st, t0.Add(10*time.Minute))
	if v["chats"] != 10 || v["joins"] != 10 {
		t.Fatalf("values %v", v)
	}
	if !st.Watermark.Equal(t0.Add(9*time.Minute)) || !st.SourceWatermark("viewing").Equal(t0.Add(9*time.Minute)) {
		t.Fatalf("watermarks %v %v", st.Watermark, st.Sources)
	}
}

func TestBoundedTiles(t *testing.T) {
	set := mustSet(t, Definition{Name: "c", Sources: []string{"auctions"}, Field: "amount", Aggregation: Sum, Window: SlidingWindow(5*time.Minute, 30*time.Second), Lateness: time.Minute})
	var st State
	for i := range 5000 {
		set.ApplyEvent(&st, ev("auctions", time.Duration(i)*time.Second, "amount", float64(i%7)))
	}
	d, _ := set.Get("c")
	if n := st.Series["c"].Len(); n > d.Tiles() || n > 13 {
		t.Fatalf("%d tiles kept for a 5m/30s window with 1m lateness (bound %d)", n, d.Tiles())
	}
}

func TestTumblingAndAllTime(t *testing.T) {
	set := mustSet(t,
		Definition{Name: "done", Sources: []string{"chat"}, Aggregation: Count, Window: TumblingWindow(time.Hour, Complete), Lateness: 5 * time.Minute},
		Definition{Name: "cur", Sources: []string{"chat"}, Aggregation: Count, Window: TumblingWindow(time.Hour, Current), Lateness: 5 * time.Minute},
		Definition{Name: "all", Sources: []string{"chat"}, Aggregation: Count, Window: AllTimeWindow(), Lateness: 5 * time.Minute},
	)
	var st State
	// 12:00..14:30, one event per minute.
	for i := range 151 {
		set.ApplyEvent(&st, ev("chat", time.Duration(i)*time.Minute))
	}
	v := set.Values(&st, t0.Add(2*time.Hour+30*time.Minute)) // 14:30
	if v["done"] != 60 || v["cur"] != 31 || v["all"] != 151 {
		t.Fatalf("at 14:30: %v (want done 60 for 13:00-14:00, cur 31, all 151)", v)
	}
	for i := 151; i < 180; i++ { // to 14:59
		set.ApplyEvent(&st, ev("chat", time.Duration(i)*time.Minute))
	}
	v = set.Values(&st, t0.Add(3*time.Hour)) // 15:00: 14:00-15:00 is complete, 15:00- empty
	if v["done"] != 60 || v["cur"] != 0 || v["all"] != 180 {
		t.Fatalf("at 15:00: %v", v)
	}
	if n := st.Series["done"].Len(); n > 3 {
		t.Fatalf("tumbling kept %d tiles", n)
	}
}

func TestAggregations(t *testing.T) {
	w := SlidingWindow(time.Hour, 5*time.Minute)
	set := mustSet(t,
		Definition{Name: "mn", Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: "amount", Aggregation: Min, Window: w, Lateness: time.Hour},
		Definition{Name: "mx", Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: "amount", Aggregation: Max, Window: w, Lateness: time.Hour},
		Definition{Name: "last_bidder", Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: "user_id", Aggregation: Last, Window: w, Lateness: time.Hour},
		Definition{Name: "last_amount", Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: "amount", Aggregation: Last, Window: w, Lateness: time.Hour},
		Definition{Name: "recent", Sources: []string{"auctions"}, Field: "user_id", Aggregation: LastKDistinct, K: 2, Window: w, Lateness: time.Hour},
		Definition{Name: "top", Sources: []string{"auctions"}, Field: "user_id", Aggregation: TopK, K: 2, Window: w, Lateness: time.Hour},
		Definition{Name: "uniq", Sources: []string{"auctions"}, Field: "user_id", Aggregation: ApproxDistinct, Window: w, Lateness: time.Hour},
		Definition{Name: "p50", Sources: []string{"auctions"}, Filter: `type == "bid"`, Field: "amount", Aggregation: ApproxPercentile, P: 0.5, Window: w, Lateness: time.Hour},
		Definition{Name: "big", Sources: []string{"auctions"}, Field: `amount > 10 && currency == "USD"`, Aggregation: Sum, Window: w, Lateness: time.Hour},
		Definition{Name: "rate", Sources: []string{"auctions"}, Aggregation: Count, Per: time.Minute, Window: w, Lateness: time.Hour},
		Definition{Name: "dsum", Sources: []string{"auctions"}, Field: "amount", Aggregation: DecayedSum, HalfLife: time.Minute, Window: AllTimeWindow(), Lateness: time.Hour},
		Definition{Name: "dcount", Sources: []string{"auctions"}, Aggregation: DecayedCount, HalfLife: time.Minute, Window: AllTimeWindow(), Lateness: time.Hour},
		Definition{Name: "empty_mean", Sources: []string{"auctions"}, Filter: `type == "nope"`, Field: "amount", Aggregation: Mean, Window: w, Lateness: time.Hour},
	)
	var st State
	bid := func(at time.Duration, user string, amount float64, cur string) {
		set.ApplyEvent(&st, ev("auctions", at, "type", "bid", "user_id", user, "amount", amount, "currency", cur))
	}
	bid(0, "ann", 5, "USD")
	bid(time.Minute, "bob", 30, "USD")
	bid(2*time.Minute, "ann", 12, "EUR")
	bid(2*time.Minute, "cid", 20, "USD") // same time as ann's: last picks the greater value
	set.ApplyEvent(&st, ev("auctions", 90*time.Second, "type", "start"))
	now := t0.Add(2 * time.Minute)
	r := set.Results(&st, now)
	check := func(name string, want any) {
		t.Helper()
		got := r[name]
		switch w := want.(type) {
		case float64:
			if got.Float() != w {
				t.Errorf("%s = %v, want %v", name, got.Float(), w)
			}
		case string:
			if got.Text != w {
				t.Errorf("%s = %q, want %q", name, got.Text, w)
			}
		case []string:
			if !slices.Equal(got.Items, w) {
				t.Errorf("%s = %q, want %q", name, got.Items, w)
			}
		case []KeyCount:
			if !slices.Equal(got.Top, w) {
				t.Errorf("%s = %v, want %v", name, got.Top, w)
			}
		}
	}
	check("mn", 5.0)
	check("mx", 30.0)
	check("last_bidder", "cid")
	check("last_amount", 20.0)
	check("recent", []string{"cid", "ann"}) // same time: the greater first, as last
	check("top", []KeyCount{{"ann", 2}, {"bob", 1}})
	check("uniq", 3.0)
	check("big", 2.0) // bob's 30 USD and cid's 20 USD: the bool projects to 1
	check("rate", 5.0/60)
	if p := r["p50"].Float(); p < 12*0.99 || p > 20*1.01 {
		t.Errorf("p50 = %v", p)
	}
	// decayed: 5·2^-2 + 30·2^-1 + 12 + 20 + 0 (start has amount 0)
	if got, want := r["dsum"].Float(), 5*0.25+30*0.5+12+20; abs(got-want) > 1e-9 {
		t.Errorf("dsum = %v, want %v", got, want)
	}
	if got, want := r["dcount"].Float(), 0.25+0.5+1+1+1/1.4142135623730951; abs(got-want) > 1e-9 {
		t.Errorf("dcount = %v, want %v", got, want)
	}
	if !r["empty_mean"].Empty {
		t.Errorf("empty mean %+v", r["empty_mean"])
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestDefinitionValidation(t *testing.T) {
	w := SlidingWindow(time.Minute, time.Second)
	bad := []struct {
		d    Definition
		want string
	}{
		{Definition{Name: "Bad-Name", Sources: []string{"chat"}, Aggregation: Count, Window: w}, "name it bad_name"},
		{Definition{Name: "x", Aggregation: Count, Window: w}, "at least one source"},
		{Definition{Name: "x", Sources: []string{"chats"}, Aggregation: Count, Window: w}, `did you mean "chat"?`},
		{Definition{Name: "x", Sources: []string{"chat"}, Aggregation: Sum, Window: w}, "sum needs a field"},
		{Definition{Name: "x", Sources: []string{"chat"}, Aggregation: "summ", Window: w}, `did you mean "sum"?`},
		{Definition{Name: "x", Sources: []string{"chat"}, Aggregation: Count, Window: SlidingWindow(time.Second, time.Minute)}, "smaller than its bucket"},
		{Definition{Name: "x", Sources: []string{"chat"}, Aggregation: Count, Window: SlidingWindow(90*time.Second, time.Minute)}, "not a multiple"},
		{Definition{Name: "x", Sources: []string{"chat"}, Aggregation: Count, Window: w, Lateness: 8 * 24 * time.Hour}, "longer than the source retention"},
		{Definition{Name: "x", Sources: []string{"chat"}, Field: "amount", Aggregation: Sum, Window: w}, `unknown field "amount"`},
		{Definition{Name: "x", Sources: []string{"chat"}, Field: "user_idd", Aggregation: ApproxDistinct, Window: w}, `did you mean "user_id"?`},
		{Definition{Name: "x", Sources: []string{"chat"}, Field: "text", Aggregation: Sum, Window: w}, "sum needs a number"},
		{Definition{Name: "x", Sources: []string{"chat"}, Field: "user_id", Aggregation: TopK, Window: w}, "k in 1..100"},
		{Definition{Name: "x", Sources: []string{"chat"}, Field: "user_id", Aggregation: TopK, K: 101, Window: w}, "k in 1..100"},
		{Definition{Name: "x", Sources: []string{"auctions"}, Field: "amount", Aggregation: ApproxPercentile, P: 90, Window: w}, "did you mean p: 0.9?"},
		{Definition{Name: "x", Sources: []string{"auctions"}, Field: "amount", Aggregation: ApproxPercentile, P: 1, Window: w}, "p in (0, 1)"},
		{Definition{Name: "x", Sources: []string{"chat"}, Aggregation: DecayedCount, Window: AllTimeWindow()}, "needs half_life"},
		{Definition{Name: "x", Sources: []string{"chat"}, Aggregation: DecayedCount, HalfLife: time.Hour, Window: w}, "all-time"},
		{Definition{Name: "x", Sources: []string{"chat"}, Filter: `type == "bid"`, Aggregation: Count, Window: w}, `unknown field "type" for chat`},
		{Definition{Name: "x", Sources: []string{"chat", "auctions"}, Filter: `type == "bid"`, Aggregation: Count, Window: w}, "not in the schema of source chat"},
		{Definition{Name: "x", Sources: []string{"livestreams"}, Entity: "user", Aggregation: Count, Window: w}, "user_id, which is missing from source livestreams"},
		{Definition{Name: "x", Sources: []string{"auctions"}, Entity: "auction", Aggregation: Count, Window: w}, `did you mean "auction_id"?`},
		{Definition{Name: "x", Sources: []string{"chat"}, Filter: "user_id", Aggregation: Count, Window: w}, "must be true or false"},
		{Definition{Name: "x", Sources: []string{"chat"}, Field: "user_id", Aggregation: ApproxDistinct, Window: SlidingWindow(time.Hour, time.Second)}, "at most 100 allowed"},
		{Definition{Name: "x", Sources: []string{"chat"}, Aggregation: Count, K: 3, Window: w}, "k applies to"},
		{Definition{Name: "x", Sources: []string{"chat"}, Field: "user_id", Aggregation: Count, Window: w}, "count takes no field"},
	}
	for i, c := range bad {
		err := c.d.Validate()
		if err == nil {
			t.Errorf("case %d: %+v accepted", i, c.d)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: error %q lacks %q", i, err, c.want)
		}
	}
	d := LivestreamDefaults()[0]
	if _, err := NewSet(d, d); err == nil || !strings.Contains(err.Error(), "new name") {
		t.Fatalf("duplicate names: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	defs := Defaults()
	if len(defs) < 20 {
		t.Fatalf("%d default features", len(defs))
	}
	set := mustSet(t, defs...)
	if got := set.Entities(); !slices.Equal(got, []string{"livestream", "seller", "user"}) {
		t.Fatalf("entities %v", got)
	}
	// The names serving reads are kept.
	for _, n := range []string{"joins_5m", "chat_1m", "chat_5m", "bids_5m", "sold_1h", "gmv_1h", "avg_sale_1h"} {
		if _, ok := set.ForEntity("livestream").Get(n); !ok {
			t.Errorf("livestream default %s missing", n)
		}
	}
	var names []string
	for _, d := range LivestreamDefaults() {
		names = append(names, d.Name)
	}
	if !sort.StringsAreSorted(names) && len(names) < 10 {
		t.Fatalf("livestream defaults %v", names)
	}
}

// Idle keys: a key whose features are all empty after eviction at the
// partition's watermarks can be deleted.
func TestIdleKeys(t *testing.T) {
	set := mustSet(t,
		Definition{Name: "c", Sources: []string{"chat"}, Aggregation: Count, Window: SlidingWindow(5*time.Minute, time.Minute), Lateness: time.Minute},
		Definition{Name: "d", Sources: []string{"chat"}, Aggregation: DecayedCount, HalfLife: time.Minute, Window: AllTimeWindow(), Lateness: time.Minute},
	)
	var st State
	set.ApplyEvent(&st, ev("chat", 0))
	var pw Watermarks
	pw.Observe("chat", t0)
	if set.Idle(&st, &pw) || st.Empty() {
		t.Fatal("fresh key idle")
	}
	pw.Observe("chat", t0.Add(30*time.Minute)) // the partition moved on: the window expired, the decay not yet
	if set.Idle(&st, &pw) {
		t.Fatal("idle while the decayed count is still above 2^-64")
	}
	pw.Observe("chat", t0.Add(2*time.Hour))
	if !set.Idle(&st, &pw) {
		t.Fatal("not idle 2h later")
	}
	if got := set.Values(&st, t0.Add(2*time.Hour)); got["c"] != 0 || got["d"] > 1e-18 {
		t.Fatalf("values of an idle key %v", got)
	}
	// Series of removed or reshaped definitions do not keep a key alive.
	other := mustSet(t, Definition{Name: "c", Sources: []string{"chat"}, Field: "user_id", Aggregation: TopK, K: 1, Window: AllTimeWindow(), Lateness: time.Minute})
	var st2 State
	set.ApplyEvent(&st2, ev("chat", 0))
	if !other.Idle(&st2, nil) {
		t.Fatal("a series of another shape (and one of no feature) keeps the key")
	}
	// The key's own events evict it too.
	set.ApplyEvent(&st, ev("viewing", 3*time.Hour)) // another source: no feature of it, no eviction
	set.ApplyEvent(&st, ev("chat", 3*time.Hour))
	if st.Empty() {
		t.Fatal("empty right after an event")
	}
}

func TestShuffleWithinLatenessGivesSameValues(t *testing.T) {
	testOrderIndependence(t, 5000, rand.New(rand.NewPCG(1, 2)))
}

func TestJSONEventsAndKeys(t *testing.T) {
	e, err := ParseJSONEvent("auctions", []byte(`{"event_id":"e1","event_time":"2026-11-25T12:00:01.5Z","livestream_id":"ls1","auction_id":"a1","type":"bid","user_id":"u1","amount":12.5,"currency":"USD","seller_id":"s1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Source() != "auctions" || !e.Time().Equal(t0.Add(1500*time.Millisecond)) {
		t.Fatalf("event %v %v", e.Source(), e.Time())
	}
	if v, ok := e.Field("amount"); !ok || v.Num() != 12.5 || v.Kind() != Number {
		t.Fatalf("amount %v", v)
	}
	for entity, want := range map[string]string{"livestream": "ls1", "user": "u1", "seller": "s1", "auction_id": "a1"} {
		if k, ok := EntityKey(entity, e); !ok || k != want {
			t.Errorf("key of %s = %q", entity, k)
		}
	}
	if _, ok := EntityKey("category", e); ok {
		t.Error("missing category gave a key")
	}
	if _, err := ParseJSONEvent("chat", []byte(`{"event_time":"yesterday"}`)); err == nil {
		t.Error("bad event_time accepted")
	}
	for x, want := range map[any]Kind{"s": String, 1.5: Number, 3: Number, int64(3): Number, true: Bool, json.Number("2"): Number} {
		if v, ok := valueOf(x); !ok || v.Kind() != want {
			t.Errorf("%v: %v", x, v)
		}
	}
	if v, ok := valueOf([]any{"a", "b"}); !ok || !slices.Equal(v.List(), []string{"a", "b"}) {
		t.Errorf("list %v", v)
	}
	if NumberValue(3).Key() != "3" || BoolValue(true).Key() != "true" || StringValue("x").String() != `"x"` {
		t.Error("keys")
	}
}
