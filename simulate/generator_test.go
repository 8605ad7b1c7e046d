package simulate

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
)

func TestDeterministic(t *testing.T) {
	for _, bad := range []float64{0, 0.05} {
		cfg := Config{Seed: 42, BadFraction: bad}
		a, b := newGen(t, cfg), newGen(t, cfg)
		steps := rand.New(rand.NewPCG(7, 7)) // irregular but repeatable call times
		now := t0
		for i := range 10_000 {
			now = now.Add(time.Duration(steps.IntN(40_000)) * time.Microsecond)
			ra, rb := a.Next(now), b.Next(now)
			if ra.Topic != rb.Topic || ra.Key != rb.Key || !bytes.Equal(ra.Value, rb.Value) || !ra.Time.Equal(rb.Time) {
				t.Fatalf("bad=%v: record %d differs:\n%s %s %s\n%s %s %s", bad, i,
					ra.Topic, ra.Key, ra.Value, rb.Topic, rb.Key, rb.Value)
			}
		}
		if !slices.EqualFunc(a.LiveStreams(), b.LiveStreams(), func(x, y StreamInfo) bool {
			return x.ID == y.ID && x.Title == y.Title && x.Viewers == y.Viewers && x.Status == y.Status
		}) {
			t.Fatal("same seed, different streams")
		}
	}

	// Another seed gives another marketplace, with other ids.
	a, b := newGen(t, Config{Seed: 1}), newGen(t, Config{Seed: 2})
	same := 0
	now := t0
	for range 1000 {
		now = now.Add(10 * time.Millisecond)
		if bytes.Equal(a.Next(now).Value, b.Next(now).Value) {
			same++
		}
	}
	if same > 0 {
		t.Fatalf("seeds 1 and 2 gave %d identical records", same)
	}
}

// world replays the records and checks that they tell a consistent story.
type world struct {
	t        *testing.T
	vocab    map[string]bool
	stream   map[string]*events.Livestream // last metadata per stream
	ended    map[string]bool
	watching map[string]string    // user → stream
	lastBeat map[string]time.Time // user → time of join or last heartbeat
	auction  map[string]*events.Auction
	closed   map[string]bool
	ids      map[string]bool
	counts   map[string]int // topic/type → records
	last     time.Time
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, vocab: map[string]bool{}, stream: map[string]*events.Livestream{},
		ended: map[string]bool{}, watching: map[string]string{}, lastBeat: map[string]time.Time{},
		auction: map[string]*events.Auction{}, closed: map[string]bool{}, ids: map[string]bool{},
		counts: map[string]int{}}
	for _, v := range Vocabulary() {
		w.vocab[v] = true
	}
	return w
}

func (w *world) checkWords(what, s string) {
	for _, tok := range Tokenize(s) {
		if !w.vocab[tok] {
			w.t.Fatalf("%s %q: token %q is not in the vocabulary", what, s, tok)
		}
	}
}

func (w *world) add(i int, r Record, heartbeat time.Duration) {
	t := w.t
	t.Helper()
	d, err := decode(r)
	if err != nil {
		t.Fatalf("record %d (%s %s): %v", i, r.Topic, r.Value, err)
	}
	h := d.hdr
	if w.ids[h.EventID] {
		t.Fatalf("record %d: duplicate event_id %s", i, h.EventID)
	}
	w.ids[h.EventID] = true
	if !h.EventTime.Equal(r.Time) || r.Time.Before(w.last) {
		t.Fatalf("record %d: event time %v, record time %v, previous %v", i, h.EventTime, r.Time, w.last)
	}
	w.last = r.Time
	id := h.LivestreamID
	meta, known := w.stream[id]
	inactive := !known || w.ended[id]
	switch {
	case d.ls != nil:
		e := d.ls
		w.counts["livestreams/"+string(e.Status)]++
		if w.ended[id] {
			t.Fatalf("record %d: status %s after the end of %s", i, e.Status, id)
		}
		if known && (e.SellerID != meta.SellerID || e.Category != meta.Category || e.Language != meta.Language) {
			t.Fatalf("record %d: stream %s changed seller, category or language", i, id)
		}
		if _, ok := Catalog()[e.Category]; !ok {
			t.Fatalf("record %d: unknown category %q", i, e.Category)
		}
		if !slices.Contains(languages, e.Language) || len(e.Tags) < 2 || len(e.Tags) > 5 {
			t.Fatalf("record %d: language %q, tags %q", i, e.Language, e.Tags)
		}
		w.checkWords("title", e.Title)
		for _, tag := range e.Tags {
			if !slices.Contains(Catalog()[e.Category].Tags, tag) {
				t.Fatalf("record %d: tag %q is not a %s tag", i, tag, e.Category)
			}
		}
		switch e.Status {
		case events.StatusScheduled:
			if known {
				t.Fatalf("record %d: %s scheduled twice", i, id)
			}
		case events.StatusEnded:
			if !known || meta.Status != events.StatusLive {
				t.Fatalf("record %d: %s ended without being live", i, id)
			}
			if a := w.auction[id]; a != nil {
				t.Fatalf("record %d: %s ended during auction %s", i, id, a.AuctionID)
			}
			w.ended[id] = true
		}
		w.stream[id] = e

	case d.vw != nil:
		e := d.vw
		w.counts["viewing/"+string(e.Type)]++
		at, watching := w.watching[e.UserID]
		switch e.Type {
		case events.ViewingJoin:
			if watching || inactive || meta.Status != events.StatusLive {
				t.Fatalf("record %d: %s joins %s while watching %q (stream status %v)", i, e.UserID, id, at, meta)
			}
			w.watching[e.UserID] = id
			w.lastBeat[e.UserID] = r.Time
		case events.ViewingHeartbeat:
			if at != id {
				t.Fatalf("record %d: heartbeat of %s in %s while watching %q", i, e.UserID, id, at)
			}
			if gap := r.Time.Sub(w.lastBeat[e.UserID]); gap < heartbeat {
				t.Fatalf("record %d: heartbeat of %s after %v", i, e.UserID, gap)
			}
			w.lastBeat[e.UserID] = r.Time
		case events.ViewingLeave:
			if at != id {
				t.Fatalf("record %d: %s leaves %s while watching %q", i, e.UserID, id, at)
			}
			delete(w.watching, e.UserID)
		}

	case d.ch != nil:
		e := d.ch
		w.counts["chat"]++
		if w.watching[e.UserID] != id || inactive {
			t.Fatalf("record %d: %s chats in %s while watching %q", i, e.UserID, id, w.watching[e.UserID])
		}
		w.checkWords("chat", e.Text)

	case d.au != nil:
		e := d.au
		w.counts["auctions/"+string(e.Type)]++
		if inactive || meta.Status != events.StatusLive {
			t.Fatalf("record %d: auction event in %s which is not live", i, id)
		}
		if !strings.HasPrefix(e.AuctionID, id+"-a") {
			t.Fatalf("record %d: auction %s of stream %s", i, e.AuctionID, id)
		}
		cur := w.auction[id]
		switch e.Type {
		case events.AuctionStart:
			if cur != nil || w.closed[e.AuctionID] {
				t.Fatalf("record %d: auction %s starts while %v runs", i, e.AuctionID, cur)
			}
			w.auction[id] = e
		case events.AuctionBid:
			if cur == nil || cur.AuctionID != e.AuctionID {
				t.Fatalf("record %d: bid in %s which is not running", i, e.AuctionID)
			}
			if w.watching[e.UserID] != id {
				t.Fatalf("record %d: %s bids in %s without watching it", i, e.UserID, id)
			}
			if cur.Type == events.AuctionBid && (e.Amount <= cur.Amount || e.UserID == cur.UserID) {
				t.Fatalf("record %d: bid %v by %s after %v by %s", i, e.Amount, e.UserID, cur.Amount, cur.UserID)
			}
			if e.Currency != "USD" {
				t.Fatalf("record %d: currency %q", i, e.Currency)
			}
			w.auction[id] = e
		case events.AuctionSold, events.AuctionUnsold:
			if cur == nil || cur.AuctionID != e.AuctionID {
				t.Fatalf("record %d: %s of %s which is not running", i, e.Type, e.AuctionID)
			}
			hadBid := cur.Type == events.AuctionBid
			if e.Type == events.AuctionSold != hadBid {
				t.Fatalf("record %d: %s after %s", i, e.Type, cur.Type)
			}
			if hadBid && (e.UserID != cur.UserID || e.Amount != cur.Amount) {
				t.Fatalf("record %d: sold to %s for %v, highest bid %s %v", i, e.UserID, e.Amount, cur.UserID, cur.Amount)
			}
			delete(w.auction, id)
			w.closed[e.AuctionID] = true
		}
	}
}

func (w *world) total() int {
	n := 0
	for _, c := range w.counts {
		n += c
	}
	return n
}

func (w *world) share(prefix string) float64 {
	n := 0
	for k, c := range w.counts {
		if strings.HasPrefix(k, prefix) {
			n += c
		}
	}
	return float64(n) / float64(w.total())
}

// TestEventsValid checks every record of a long run: it passes events.Decode
// and CheckKey, and the records tell a consistent story (joins before
// heartbeats every 30s, chat and bids by viewers, rising bids, sold to the
// highest bidder, streams scheduled → live → ended, words from the catalog).
func TestEventsValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		step time.Duration
		n    int
	}{
		{"defaults-100/s", Config{Seed: 3}, 10 * time.Millisecond, 120_000},
		{"small-fast", Config{Seed: 4, Users: 300, Sellers: 20, LiveStreams: 10, StreamMean: time.Minute,
			AuctionMean: 10 * time.Second}, 500 * time.Microsecond, 100_000},
		{"short-streams", Config{Seed: 5, Users: 500, Sellers: 30, LiveStreams: 20, StreamMean: 5 * time.Minute,
			SessionMean: time.Minute}, 20 * time.Millisecond, 100_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGen(t, tc.cfg)
			w := newWorld(t)
			run(g, tc.n, tc.step, func(i int, r Record) { w.add(i, r, g.cfg.Heartbeat) })
			// (At 2000 events/s, 300 users hop between streams within seconds:
			// no heartbeats there.)
			if w.counts["livestreams/ended"] == 0 || w.counts["auctions/sold"] == 0 ||
				w.counts["viewing/heartbeat"] == 0 && tc.name != "small-fast" {
				t.Fatalf("missing lifecycle events: %v", w.counts)
			}
			t.Logf("mix: viewing %.1f%% chat %.1f%% auctions %.1f%% livestreams %.1f%%; %v",
				100*w.share("viewing"), 100*w.share("chat"), 100*w.share("auctions"), 100*w.share("livestreams"), w.counts)
		})
	}
}

// TestMix checks that the event mix resembles a marketplace at the rate the
// defaults are sized for: viewing and chat dominate, auctions are fewer.
func TestMix(t *testing.T) {
	g := newGen(t, Config{Seed: 6})
	w := newWorld(t)
	run(g, 150_000, 5*time.Millisecond, func(i int, r Record) { w.add(i, r, g.cfg.Heartbeat) })
	view, chat, auc, ls := w.share("viewing"), w.share("chat"), w.share("auctions"), w.share("livestreams")
	t.Logf("viewing %.1f%% (heartbeats %.1f%%) chat %.1f%% auctions %.1f%% (bids %.1f%%) livestreams %.2f%%",
		100*view, 100*w.share("viewing/heartbeat"), 100*chat, 100*auc, 100*w.share("auctions/bid"), 100*ls)
	if view < 0.40 || view > 0.60 || chat < 0.25 || chat > 0.45 || auc < 0.04 || auc > 0.25 || ls > 0.02 ||
		auc > chat || auc > view || w.share("viewing/heartbeat") < 0.2 {
		t.Fatalf("unrealistic mix: %v", w.counts)
	}
}

func TestStreamsEnd(t *testing.T) {
	cfg := Config{Seed: 7}
	g := newGen(t, cfg)
	ended := map[string]bool{}
	var minLive, maxLive = 1 << 30, 0
	// One hour of simulated time at 20 events/s.
	run(g, 72_000, 50*time.Millisecond, func(i int, r Record) {
		if r.Topic == events.TopicLivestreams {
			var e events.Livestream
			if err := events.Decode(r.Value, &e); err != nil {
				t.Fatal(err)
			}
			if e.Status == events.StatusEnded {
				ended[e.LivestreamID] = true
			}
		}
		if i > 1000 && i%500 == 0 {
			live := 0
			for _, s := range g.LiveStreams() {
				if ended[s.ID] || s.Status == events.StatusEnded {
					t.Fatalf("ended stream %s still listed", s.ID)
				}
				if s.Status == events.StatusLive {
					live++
				}
			}
			minLive, maxLive = min(minLive, live), max(maxLive, live)
		}
	})
	// StreamMean is 40m: within an hour most of the first streams ended and
	// were replaced, and the number of live streams stayed near the target.
	if len(ended) < g.cfg.LiveStreams {
		t.Fatalf("only %d streams ended in an hour", len(ended))
	}
	if minLive < g.cfg.LiveStreams*8/10 || maxLive > g.cfg.LiveStreams*12/10 {
		t.Fatalf("live streams between %d and %d, target %d", minLive, maxLive, g.cfg.LiveStreams)
	}
	t.Logf("%d streams ended, %d..%d live", len(ended), minLive, maxLive)
}

// TestTaste checks that users mostly watch their favourite categories.
func TestTaste(t *testing.T) {
	g := newGen(t, Config{Seed: 8})
	category := map[string]string{}
	inTaste, total := 0, 0
	perUser := map[string][2]int{}
	run(g, 150_000, 10*time.Millisecond, func(i int, r Record) {
		d, err := decode(r)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case d.ls != nil:
			category[d.ls.LivestreamID] = d.ls.Category
		case d.vw != nil:
			c, ok := category[d.vw.LivestreamID]
			if !ok {
				t.Fatalf("viewing event before the metadata of %s", d.vw.LivestreamID)
			}
			n := perUser[d.vw.UserID]
			if slices.Contains(g.Taste(d.vw.UserID), c) {
				inTaste++
				n[0]++
			}
			total++
			n[1]++
			perUser[d.vw.UserID] = n
		}
	})
	share := float64(inTaste) / float64(total)
	mostly := 0
	for _, n := range perUser {
		if 2*n[0] > n[1] {
			mostly++
		}
	}
	t.Logf("%.1f%% of %d viewing events in the user's taste; %d of %d users mostly in their taste",
		100*share, total, mostly, len(perUser))
	if share < 0.70 {
		t.Fatalf("only %.1f%% of the viewing events are in the users' taste", 100*share)
	}
	if mostly < len(perUser)*7/10 {
		t.Fatalf("only %d of %d users watch mostly their taste", mostly, len(perUser))
	}
}

func TestTasteAndUsers(t *testing.T) {
	g := newGen(t, Config{Seed: 9, Users: 50, Categories: []string{"watches", "coins", "comics"}})
	ids := g.UserIDs()
	if len(ids) != 50 || ids[0] != "u-0000" || ids[49] != "u-0049" {
		t.Fatalf("user ids %v", ids)
	}
	for _, id := range ids {
		taste := g.Taste(id)
		if len(taste) < 1 || len(taste) > 2 || len(taste) == 2 && taste[0] == taste[1] {
			t.Fatalf("taste of %s: %v", id, taste)
		}
		for _, c := range taste {
			if c != "watches" && c != "coins" && c != "comics" {
				t.Fatalf("taste of %s: %v", id, taste)
			}
		}
	}
	for _, id := range []string{"", "u-50", "u-x", "s-0001", "u-00001"} {
		if g.Taste(id) != nil {
			t.Fatalf("taste of unknown user %q", id)
		}
	}
}

// TestBadFraction checks that about BadFraction of the records are bad, that
// every bad record is rejected by the consumers' checks (events.Decode or
// events.CheckKey) and that every other record passes them.
func TestBadFraction(t *testing.T) {
	const n, frac = 50_000, 0.1
	g := newGen(t, Config{Seed: 10, BadFraction: frac})
	bad := 0
	kinds := map[string]int{}
	run(g, n, 10*time.Millisecond, func(i int, r Record) {
		_, err := decode(r)
		if !g.lastBad {
			if err != nil {
				t.Fatalf("record %d: good record fails: %v", i, err)
			}
			return
		}
		bad++
		var verr *events.ValidationError
		switch {
		case err == nil:
			t.Fatalf("record %d: bad record passes: %s %s %s", i, r.Topic, r.Key, r.Value)
		case errors.Is(err, events.ErrMalformed):
			kinds["malformed"]++
		case errors.As(err, &verr):
			switch {
			case verr.Field == "key":
				kinds["key"]++
			case verr.Field == "amount":
				kinds["amount"]++
			case verr.Field == "status" || verr.Field == "type":
				kinds["unknown "+r.Topic]++
			case strings.Contains(verr.Reason, "required") || verr.Field == "currency":
				kinds["missing "+verr.Field]++
			default:
				t.Fatalf("record %d: unexpected error %v", i, err)
			}
		default:
			t.Fatalf("record %d: unexpected error %v", i, err)
		}
		if !slices.Contains(events.InputTopics(), r.Topic) || r.Key == "" {
			t.Fatalf("record %d: bad record with topic %q key %q", i, r.Topic, r.Key)
		}
	})
	got := float64(bad) / n
	t.Logf("%.2f%% bad: %v", 100*got, kinds)
	if got < frac-0.01 || got > frac+0.01 {
		t.Fatalf("bad fraction %.3f, want %.3f", got, frac)
	}
	for _, k := range []string{"malformed", "key", "amount", "unknown livestreams", "missing user_id"} {
		if kinds[k] == 0 {
			t.Fatalf("no bad record of kind %q: %v", k, kinds)
		}
	}
}

func TestTimeNeverGoesBack(t *testing.T) {
	g := newGen(t, Config{Seed: 11})
	g.Next(t0)
	g.Next(t0.Add(time.Second))
	r := g.Next(t0) // earlier than the last call
	if !r.Time.Equal(t0.Add(time.Second)) {
		t.Fatalf("time went back to %v", r.Time)
	}
	// Times in another zone are written in UTC.
	r = g.Next(t0.Add(2 * time.Second).In(time.FixedZone("X", 3600)))
	if r.Time.Location() != time.UTC || !bytes.Contains(r.Value, []byte(`"2026-03-14T18:00:02Z"`)) {
		t.Fatalf("record %s at %v", r.Value, r.Time)
	}
}

func TestLiveStreams(t *testing.T) {
	g := newGen(t, Config{Seed: 12, LiveStreams: 30, Sellers: 40})
	if len(g.LiveStreams()) != 0 {
		t.Fatal("streams before the first call")
	}
	run(g, 20_000, 20*time.Millisecond, nil)
	list := g.LiveStreams()
	sellers := map[string]bool{}
	live, viewers := 0, 0
	for i, s := range list {
		if i > 0 && list[i-1].ID >= s.ID {
			t.Fatal("not sorted by id")
		}
		if sellers[s.SellerID] {
			t.Fatalf("seller %s streams twice", s.SellerID)
		}
		sellers[s.SellerID] = true
		if s.Status == events.StatusLive {
			live++
		}
		viewers += s.Viewers
		if _, ok := Catalog()[s.Category]; !ok || s.Title == "" || len(s.Tags) == 0 {
			t.Fatalf("stream %+v", s)
		}
	}
	if live < 24 || live > 36 || len(list) > 33 || viewers != len(g.sessions) {
		t.Fatalf("%d live of %d listed, %d viewers, %d sessions", live, len(list), viewers, len(g.sessions))
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.Defaults()
	if c.Users != DefaultUsers || c.Sellers != DefaultSellers || c.LiveStreams != DefaultLiveStreams ||
		len(c.Categories) != len(catalog) || c.SessionMean != DefaultSessionMean || c.Heartbeat != 30*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Users = -1 },
		func(c *Config) { c.Sellers = 10; c.LiveStreams = 11 },
		func(c *Config) { c.BadFraction = 1.5 },
		func(c *Config) { c.BadFraction = -0.1 },
		func(c *Config) { c.Categories = []string{"watches", "cars"} },
		func(c *Config) { c.Categories = []string{"watches", "watches"} },
		func(c *Config) { c.SessionMean = -time.Second },
		func(c *Config) { c.AuctionMean = time.Millisecond },
	} {
		c := Config{}
		bad(&c)
		c.Defaults()
		if err := c.Validate(); err == nil {
			t.Fatalf("%+v is valid", c)
		}
		if _, err := New(c); err == nil {
			t.Fatalf("New(%+v) succeeded", c)
		}
	}

	// New works on a copy.
	cats := []string{"coins", "comics"}
	g := newGen(t, Config{Categories: cats})
	cats[0] = "cars"
	if g.cfg.Categories[0] != "coins" {
		t.Fatal("New kept the caller's slice")
	}

	var f Config
	f.FitRate(50_000)
	if f.Users != 550_000 || f.LiveStreams != 25_000 || f.Sellers != 50_000 {
		t.Fatalf("FitRate(50k): %+v", f)
	}
	f = Config{Users: 10}
	f.FitRate(10)
	if f.Users != 10 || f.LiveStreams != 5 || f.Sellers != 20 {
		t.Fatalf("FitRate(10): %+v", f)
	}
	f.Defaults()
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestCatalog(t *testing.T) {
	cat := Catalog()
	if n := len(cat); n < 10 || n > 12 || len(Categories()) != n {
		t.Fatalf("%d categories", n)
	}
	for id, w := range cat {
		if id != strings.ToLower(id) || strings.ContainsAny(id, " _") {
			t.Fatalf("category id %q", id)
		}
		if w.Name == "" || w.Popularity <= 0 || w.StartPrice <= 0 || w.Value <= w.StartPrice ||
			len(w.Items) < 5 || len(w.Modifiers) < 3 || len(w.Formats) < 3 || len(w.Tags) < 5 {
			t.Fatalf("category %s: %+v", id, w)
		}
		for _, tag := range w.Tags {
			if tag == "" || len(tag) > events.MaxTagLen || tag != strings.ToLower(tag) || strings.Contains(tag, " ") {
				t.Fatalf("category %s: tag %q", id, tag)
			}
		}
		if len(w.Tokens()) == 0 {
			t.Fatalf("category %s has no tokens", id)
		}
	}
	// Catalog returns a copy.
	cat["watches"].Items[0] = "changed"
	if Catalog()["watches"].Items[0] == "changed" {
		t.Fatal("Catalog shares its slices")
	}
	v := Vocabulary()
	if !slices.IsSorted(v) || len(slices.Compact(slices.Clone(v))) != len(v) {
		t.Fatal("vocabulary not sorted and distinct")
	}
	for _, want := range []string{"pokemon", "charizard", "jordan", "rolex", "psa", "break"} {
		if _, ok := slices.BinarySearch(v, want); !ok {
			t.Fatalf("%q not in the vocabulary", want)
		}
	}
	if got := Tokenize("PSA 10 Charizard, cgc 9.8!"); !slices.Equal(got, []string{"psa", "10", "charizard", "cgc", "9", "8"}) {
		t.Fatalf("Tokenize: %q", got)
	}
}

// BenchmarkNext measures the generator alone, at the default size and at a
// size fitted for 50k events/s.
func BenchmarkNext(b *testing.B) {
	for _, bc := range []struct {
		name string
		rate float64
	}{{"defaults", 0}, {"fit-50k", 50_000}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{Seed: 1}
			cfg.FitRate(bc.rate)
			g := newGen(b, cfg)
			step := 20 * time.Microsecond
			now := t0
			// Warm up: 10 simulated seconds.
			for range int(10 * time.Second / step) {
				now = now.Add(step)
				g.Next(now)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var size int
			for range b.N {
				now = now.Add(step)
				size += len(g.Next(now).Value)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(size)/float64(b.N), "bytes/event")
		})
	}
}
