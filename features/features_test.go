package features

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func mustSet(t *testing.T, defs ...Definition) *Set {
	t.Helper()
	s, err := NewSet(defs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWindowCountsSlideWithTime(t *testing.T) {
	d := Definition{Name: "chat_1m", Source: "chat", Aggregation: Count, Window: Window{time.Minute, 10 * time.Second}, Lateness: time.Minute}
	set := mustSet(t, d)
	var st State
	for i := range 12 { // one message every 10s for 2 minutes
		set.Apply(&st, Observation{Source: "chat", Time: t0.Add(time.Duration(i) * 10 * time.Second)})
	}
	// At t0+115s the window (55s, 115s] overlaps buckets 50,60,...,110 → 7 events.
	if got := set.Values(&st, t0.Add(115*time.Second))["chat_1m"]; got != 7 {
		t.Fatalf("chat_1m = %v, want 7", got)
	}
	// Long after, the window is empty.
	if got := set.Values(&st, t0.Add(time.Hour))["chat_1m"]; got != 0 {
		t.Fatalf("chat_1m an hour later = %v, want 0", got)
	}
}

func TestSumMeanAndTypeFilter(t *testing.T) {
	set := mustSet(t,
		Definition{Name: "gmv", Source: "auctions", Types: []string{"sold"}, Field: "amount", Aggregation: Sum, Window: Window{time.Hour, time.Minute}},
		Definition{Name: "avg", Source: "auctions", Types: []string{"sold"}, Field: "amount", Aggregation: Mean, Window: Window{time.Hour, time.Minute}},
		Definition{Name: "bids", Source: "auctions", Types: []string{"bid"}, Aggregation: Count, Window: Window{time.Hour, time.Minute}},
	)
	var st State
	obs := func(typ string, amount float64, at time.Duration) {
		set.Apply(&st, Observation{Source: "auctions", Type: typ, Time: t0.Add(at), Fields: map[string]float64{"amount": amount}})
	}
	obs("bid", 10, 0)
	obs("bid", 20, time.Second)
	obs("sold", 20, 2*time.Second)
	obs("sold", 40, 3*time.Minute)
	v := set.Values(&st, t0.Add(5*time.Minute))
	if v["gmv"] != 60 || v["avg"] != 30 || v["bids"] != 2 {
		t.Fatalf("values %v", v)
	}
}

func TestLateEventsAreDroppedNotMerged(t *testing.T) {
	set := mustSet(t, Definition{Name: "c", Source: "chat", Aggregation: Count, Window: Window{time.Hour, time.Minute}, Lateness: 30 * time.Second})
	var st State
	if !set.Apply(&st, Observation{Source: "chat", Time: t0.Add(10 * time.Minute)}) {
		t.Fatal("first event dropped")
	}
	if !set.Apply(&st, Observation{Source: "chat", Time: t0.Add(10*time.Minute - 20*time.Second)}) {
		t.Fatal("event within lateness dropped")
	}
	if set.Apply(&st, Observation{Source: "chat", Time: t0.Add(10*time.Minute - 31*time.Second)}) {
		t.Fatal("event beyond lateness applied")
	}
	if got := set.Values(&st, t0.Add(10*time.Minute))["c"]; got != 2 {
		t.Fatalf("count %v, want 2", got)
	}
}

// Any arrival order within the lateness gives the same values, and memory
// stays bounded by the window however long the run.
func TestOrderIndependenceAndBoundedState(t *testing.T) {
	d := Definition{Name: "c", Source: "chat", Field: "x", Aggregation: Sum, Window: Window{5 * time.Minute, 30 * time.Second}, Lateness: time.Minute}
	set := mustSet(t, d)
	rng := rand.New(rand.NewPCG(1, 2))
	var obs []Observation
	for i := range 5000 {
		obs = append(obs, Observation{Source: "chat", Time: t0.Add(time.Duration(i) * time.Second), Fields: map[string]float64{"x": float64(i % 7)}})
	}
	var inOrder State
	for _, o := range obs {
		set.Apply(&inOrder, o)
	}
	// Arrival = event time + a random delay under 40s (within the 60s lateness).
	shuffled := append([]Observation(nil), obs...)
	delay := make(map[time.Time]time.Duration, len(obs))
	for _, o := range obs {
		delay[o.Time] = time.Duration(rng.IntN(40)) * time.Second
	}
	sort.SliceStable(shuffled, func(i, j int) bool {
		return shuffled[i].Time.Add(delay[shuffled[i].Time]).Before(shuffled[j].Time.Add(delay[shuffled[j].Time]))
	})
	var outOfOrder State
	for _, o := range shuffled {
		if !set.Apply(&outOfOrder, o) {
			t.Fatalf("event at %v dropped", o.Time)
		}
	}
	now := obs[len(obs)-1].Time
	if a, b := set.Values(&inOrder, now)["c"], set.Values(&outOfOrder, now)["c"]; a != b {
		t.Fatalf("in order %v, out of order %v", a, b)
	}
	if n := len(inOrder.Series["c"].Buckets); n > 13 {
		t.Fatalf("%d buckets kept for a 5m/30s window with 1m lateness", n)
	}
}

func TestDefinitionValidation(t *testing.T) {
	bad := []Definition{
		{Name: "Bad-Name", Source: "chat", Aggregation: Count, Window: Window{time.Minute, time.Second}},
		{Name: "x", Aggregation: Count, Window: Window{time.Minute, time.Second}},
		{Name: "x", Source: "chat", Aggregation: Sum, Window: Window{time.Minute, time.Second}},
		{Name: "x", Source: "chat", Aggregation: "median", Window: Window{time.Minute, time.Second}},
		{Name: "x", Source: "chat", Aggregation: Count, Window: Window{time.Second, time.Minute}},
		{Name: "x", Source: "chat", Aggregation: Count, Window: Window{90 * time.Second, time.Minute}},
	}
	for i, d := range bad {
		if err := d.Validate(); err == nil {
			t.Errorf("case %d: %+v accepted", i, d)
		}
	}
	if _, err := NewSet(LivestreamDefaults()...); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	d := LivestreamDefaults()[0]
	if _, err := NewSet(d, d); err == nil {
		t.Fatal("duplicate names accepted")
	}
}

// A consumer may read one topic minutes ahead of another (catching up on a
// backlog): lateness is judged per source, so nothing is dropped for it.
func TestLatenessIsPerSource(t *testing.T) {
	set := mustSet(t,
		Definition{Name: "chats", Source: "chat", Aggregation: Count, Window: Window{time.Hour, time.Minute}, Lateness: 30 * time.Second},
		Definition{Name: "joins", Source: "viewing", Aggregation: Count, Window: Window{time.Hour, time.Minute}, Lateness: 30 * time.Second},
	)
	var st State
	for i := range 10 { // chat is read 10 minutes ahead
		set.Apply(&st, Observation{Source: "chat", Time: t0.Add(time.Duration(i) * time.Minute)})
	}
	for i := range 10 {
		if !set.Apply(&st, Observation{Source: "viewing", Time: t0.Add(time.Duration(i) * time.Minute)}) {
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
