// Package simulate generates the realistic traffic of a live-shopping
// marketplace: sellers run livestreams in categories (trading cards, sneakers,
// watches, ...), buyers with latent category tastes join the streams they like,
// send heartbeats, chat, bid in auctions and sometimes win them.
//
// A Generator turns a sequence of times into a sequence of Records, one per
// call to Next, ready to be written to the four livestream-keyed input topics
// of livefeed (see package events). It is deterministic: the same Config.Seed
// and the same sequence of times give the same records, byte for byte.
// Produce writes a Generator's records to Kafka.
//
// # Rate and crowd
//
// Next returns exactly one record per call, so the caller's rate of calls is
// the event rate, while streams, auctions, sessions and heartbeats live in
// simulated time (the times passed to Next). The generator reconciles the two
// by sizing the crowd: it keeps about as many concurrent viewers as make
// heartbeats (every Config.Heartbeat per viewer) a third of the records at the
// observed rate, capped by Config.Users, and weights joins/leaves, chat and
// bids so that the mix stays near 50 % viewing, 30–40 % chat and 10–15 %
// auctions. The defaults (2000 users, 100 live streams) are realistic at about
// 100–300 events/s. Far above that, a default-sized crowd is hyperactive:
// viewers hop between streams within seconds (few heartbeats) and auctions
// hit their price ceilings early (few bids); far below, auction and status
// events of the fixed number of streams crowd out the rest. Config.FitRate
// sizes the marketplace for a given rate.
package simulate

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/livefeed/livefeed/events"
)

// Record is one generated event, ready for Kafka.
type Record struct {
	// Topic is one of events.TopicLivestreams, TopicViewing, TopicChat and
	// TopicAuctions, without any deployment prefix.
	Topic string
	// Key is the Kafka key: the livestream_id of the event (except for
	// deliberately bad records, see Config.BadFraction).
	Key string
	// Value is the JSON encoding of an events.Livestream, Viewing, Chat or
	// Auction.
	Value []byte
	// Time is the event time (the simulated time of the Next call).
	Time time.Time
}

// StreamInfo describes a stream that is scheduled or live.
type StreamInfo struct {
	ID       string
	SellerID string
	Category string
	Title    string
	Tags     []string
	Language string
	Status   events.Status
	// Viewers is the number of users currently watching.
	Viewers int
}

// The target event mix (shares of all records) and the share of viewing
// heartbeats the viewer population is sized for.
const (
	mixView  = 0.50 // join + heartbeat + leave
	mixChat  = 0.32
	mixBid   = 0.16 // bids; auction start/sold/unsold and livestream events come on top
	hbShare  = 0.36
	minChurn = 0.04
	pFavOnly = 0.85 // preference mass on the favourite categories
	currency = "USD"
	nsPerSec = float64(time.Second)
)

type category struct {
	id   string
	w    CategoryWords
	live []*stream // live streams of this category
}

type seller struct {
	id   string
	cat  int
	lang int
	fame float64 // who gets to stream (Pareto)
	draw float64 // how much a stream of this seller attracts viewers
	busy bool
}

type user struct {
	id   string
	favs []int     // favourite category indices, strongest first
	cum  []float64 // cumulative preference over all categories
	lang int
	chat float64 // chattiness in (0, 1]
	bid  float64 // propensity to bid in (0, 1]

	stream *stream // the stream being watched, or nil
	endAt  int64   // end of the current session
	vpos   int32   // position in stream.viewers
	spos   int32   // position in Generator.sessions
	ipos   int32   // position in Generator.idle
	hidx   int32   // heap index of the kSession timer, -1 if none
}

type stream struct {
	id        string
	seller    int
	cat       int
	lang      int
	title     string
	tags      []string
	status    events.Status
	bootstrap bool
	viewers   []int32
	cpos      int // position in category.live
	auction   *auction
	auctions  int
	endAt     int64
}

type auction struct {
	id      string
	start   float64 // starting price
	price   float64 // highest bid, valid when high >= 0
	ceiling float64 // the most anyone will pay
	high    int32   // highest bidder, -1 if none
}

// Generator simulates the marketplace. It is not safe for concurrent use.
type Generator struct {
	cfg  Config
	rng  *rand.Rand
	tag  string // seed-derived part of stream and event ids
	cats []category
	// catCum is the cumulative category popularity.
	catCum  []float64
	sellers []seller
	fameCum []float64
	users   []user

	started bool
	nowNS   int64
	now     time.Time
	dtAvg   float64 // moving average of the seconds between Next calls
	calls   uint64

	q        queue
	active   []*stream // scheduled and live streams
	budget   int       // target number of scheduled + live streams
	sessions []int32   // users watching a stream
	idle     []int32   // users not watching
	nstreams int
	nevents  uint64
	idbuf    []byte
	lastBad  bool // the last record was deliberately bad
}

// New returns a generator for cfg (after cfg.Defaults).
func New(cfg Config) (*Generator, error) {
	cfg.Categories = slices.Clone(cfg.Categories)
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := uint64(cfg.Seed)
	g := &Generator{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(seed, splitmix(seed^0x6c6976656665656b))),
		tag: fmt.Sprintf("%06x", splitmix(seed)>>40),
	}
	g.idbuf = append(g.idbuf, "ev-"+g.tag+"-"...)
	known := Catalog()
	var sum float64
	for _, id := range cfg.Categories {
		w := known[id]
		g.cats = append(g.cats, category{id: id, w: w})
		sum += w.Popularity
		g.catCum = append(g.catCum, sum)
	}

	g.sellers = make([]seller, cfg.Sellers)
	sum = 0
	for i := range g.sellers {
		s := &g.sellers[i]
		s.id = "s-" + pad(i, cfg.Sellers)
		s.cat = sampleCum(g.rng, g.catCum)
		s.lang = g.pickLanguage()
		// Pareto(1.5) fame: a few sellers draw most of the crowd.
		s.fame = math.Min(1/math.Pow(1-g.rng.Float64(), 1/1.5), 50)
		s.draw = math.Pow(s.fame, 0.7)
		sum += s.fame
		g.fameCum = append(g.fameCum, sum)
	}

	g.users = make([]user, cfg.Users)
	g.idle = make([]int32, cfg.Users)
	for i := range g.users {
		g.initUser(i)
		g.idle[i] = int32(i)
	}
	g.q.users = g.users
	g.budget = min(cfg.Sellers, cfg.LiveStreams+max(1, cfg.LiveStreams/10))
	return g, nil
}

// initUser draws the tastes of user i: one or two favourite categories (by
// popularity) holding pFavOnly of a Dirichlet-like preference, the rest spread
// over the other categories.
func (g *Generator) initUser(i int) {
	u := &g.users[i]
	u.id = "u-" + pad(i, g.cfg.Users)
	u.lang = g.pickLanguage()
	u.chat = 0.1 + float64(0.9*g.rng.Float64()*g.rng.Float64())
	u.bid = 0.05 + float64(0.95*g.rng.Float64()*g.rng.Float64())
	u.ipos = int32(i)
	u.hidx = -1

	n := len(g.cats)
	nfav := 1
	if n > 1 && g.rng.Float64() < 0.55 {
		nfav = 2
	}
	first := sampleCum(g.rng, g.catCum)
	u.favs = []int{first}
	for len(u.favs) < nfav {
		if c := sampleCum(g.rng, g.catCum); c != first {
			u.favs = append(u.favs, c)
		}
	}
	pref := make([]float64, n)
	var other float64
	for c := range pref {
		if c != first && (nfav == 1 || c != u.favs[1]) {
			pref[c] = g.cats[c].w.Popularity * g.rng.ExpFloat64()
			other += pref[c]
		}
	}
	favMass := pFavOnly
	if other == 0 {
		favMass = 1
	}
	for c := range pref {
		if pref[c] > 0 {
			pref[c] = (1 - favMass) * pref[c] / other
		}
	}
	if nfav == 1 {
		pref[first] = favMass
	} else {
		w := 0.55 + float64(0.3*g.rng.Float64())
		pref[first] = favMass * w
		pref[u.favs[1]] = favMass * (1 - w)
	}
	u.cum = make([]float64, n)
	var sum float64
	for c, p := range pref {
		sum += p
		u.cum[c] = sum
	}
}

// Taste returns the favourite categories of a user, strongest first, or nil
// for an unknown user id.
func (g *Generator) Taste(userID string) []string {
	i, ok := g.userIndex(userID)
	if !ok {
		return nil
	}
	out := make([]string, len(g.users[i].favs))
	for j, c := range g.users[i].favs {
		out[j] = g.cats[c].id
	}
	return out
}

// UserIDs returns the ids of all users.
func (g *Generator) UserIDs() []string {
	out := make([]string, len(g.users))
	for i := range g.users {
		out[i] = g.users[i].id
	}
	return out
}

// LiveStreams returns the streams that are scheduled or live, sorted by id.
// Before the first call to Next there are none.
func (g *Generator) LiveStreams() []StreamInfo {
	out := make([]StreamInfo, 0, len(g.active))
	for _, s := range g.active {
		if s.bootstrap && s.status == events.StatusScheduled {
			continue // not announced yet
		}
		out = append(out, StreamInfo{
			ID: s.id, SellerID: g.sellers[s.seller].id, Category: g.cats[s.cat].id,
			Title: s.title, Tags: slices.Clone(s.tags), Language: languages[s.lang],
			Status: s.status, Viewers: len(s.viewers),
		})
	}
	slices.SortFunc(out, func(a, b StreamInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (g *Generator) userIndex(id string) (int, bool) {
	if !strings.HasPrefix(id, "u-") {
		return 0, false
	}
	i, err := strconv.Atoi(id[2:])
	if err != nil || i < 0 || i >= len(g.users) || g.users[i].id != id {
		return 0, false
	}
	return i, true
}

// Next returns the next record at time now, the simulated time (its event
// time, in UTC). Times should not go backwards: an earlier time is taken as
// the latest time seen. The rate of calls sizes the simulated crowd (see the
// package documentation). Events validate only for times in the years
// 2000..2200.
func (g *Generator) Next(now time.Time) Record {
	g.advance(now)
	g.lastBad = false
	if g.cfg.BadFraction > 0 && g.rng.Float64() < g.cfg.BadFraction {
		if r, ok := g.bad(); ok {
			g.lastBad = true
			return r
		}
	}
	for {
		if g.q.len() > 0 && g.q.top().at <= g.nowNS {
			if r, ok := g.fire(g.q.pop()); ok {
				return r
			}
			continue
		}
		if r, ok := g.discretionary(); ok {
			return r
		}
		// Nothing can happen now (no stream is live yet): bring the next
		// timer forward.
		if g.q.len() == 0 {
			g.q.push(item{at: g.nowNS, k: kSchedule})
		}
		if r, ok := g.fire(g.q.pop()); ok {
			return r
		}
	}
}

func (g *Generator) advance(now time.Time) {
	ns := now.UnixNano()
	if !g.started {
		g.started = true
		g.nowNS = ns
		g.now = time.Unix(0, ns).UTC()
		g.bootstrap()
		return
	}
	if ns < g.nowNS {
		ns = g.nowNS
	}
	dt := float64(ns-g.nowNS) / nsPerSec
	g.calls++
	alpha := 1.0 / 512
	if g.calls < 512 {
		alpha = 1 / float64(g.calls)
	}
	g.dtAvg += float64(alpha * (dt - g.dtAvg))
	if ns != g.nowNS {
		g.nowNS = ns
		g.now = time.Unix(0, ns).UTC()
	}
}

// bootstrap starts the marketplace with LiveStreams streams going live at
// once (with staggered ends) and the rest of the budget scheduled.
func (g *Generator) bootstrap() {
	for range g.cfg.LiveStreams {
		s := g.newStream()
		if s == nil {
			break
		}
		s.bootstrap = true
		g.q.push(item{at: g.nowNS, k: kGoLive, s: s})
	}
	for range g.budget - len(g.active) {
		g.q.push(item{at: g.nowNS, k: kSchedule})
	}
}

// viewerTarget is the number of concurrent viewers whose heartbeats make
// hbShare of the records at the current rate of calls, within [1, Users].
func (g *Generator) viewerTarget() int {
	if g.dtAvg <= 0 {
		return len(g.users)
	}
	v := hbShare * g.cfg.Heartbeat.Seconds() / g.dtAvg
	if v >= float64(len(g.users)) {
		return len(g.users)
	}
	return max(1, int(v))
}

// discretionary picks what happens when no timer is due: viewing churn,
// chat or a bid, weighted so that the overall mix stays near the target
// whatever the rate of calls.
func (g *Generator) discretionary() (Record, bool) {
	hb := 0.0 // expected share of heartbeats among the records
	if g.dtAvg > 0 {
		hb = float64(len(g.sessions)) * g.dtAvg / g.cfg.Heartbeat.Seconds()
	}
	wView := math.Max(mixView-hb, minChurn)
	x := g.rng.Float64() * (wView + mixChat + mixBid)
	switch {
	case x < wView:
		return g.churn()
	case x < wView+mixChat:
		if r, ok := g.chat(); ok {
			return r, true
		}
	default:
		if r, ok := g.bid(); ok {
			return r, true
		}
		if r, ok := g.chat(); ok {
			return r, true
		}
	}
	return g.churn()
}

// churn lets an idle user join a stream while the crowd is below its target,
// and otherwise a viewer leave.
func (g *Generator) churn() (Record, bool) {
	if len(g.idle) > 0 && len(g.sessions) < g.viewerTarget() {
		if r, ok := g.join(g.idle[g.rng.IntN(len(g.idle))]); ok {
			return r, true
		}
	}
	if len(g.sessions) > 0 {
		u := g.sessions[g.rng.IntN(len(g.sessions))]
		s := g.users[u].stream
		g.detach(u)
		return g.viewing(s, u, events.ViewingLeave), true
	}
	return Record{}, false
}

// join starts a session of idle user u in a stream of their taste.
func (g *Generator) join(u int32) (Record, bool) {
	us := &g.users[u]
	s := g.pickStream(us)
	if s == nil {
		return Record{}, false
	}
	// Leave the idle list.
	last := g.idle[len(g.idle)-1]
	g.idle[us.ipos] = last
	g.users[last].ipos = us.ipos
	g.idle = g.idle[:len(g.idle)-1]
	us.ipos = -1

	us.stream = s
	us.vpos = int32(len(s.viewers))
	s.viewers = append(s.viewers, u)
	us.spos = int32(len(g.sessions))
	g.sessions = append(g.sessions, u)

	mean := g.cfg.SessionMean.Seconds()
	length := max(10, mean*g.rng.ExpFloat64())
	us.endAt = g.nowNS + int64(length*nsPerSec)
	g.q.push(item{at: min(us.endAt, g.nowNS+int64(g.cfg.Heartbeat)), k: kSession, u: u})
	return g.viewing(s, u, events.ViewingJoin), true
}

// detach ends the session of user u in the simulation state (the caller
// writes the leave).
func (g *Generator) detach(u int32) {
	us := &g.users[u]
	s := us.stream
	if last := s.viewers[len(s.viewers)-1]; last != u {
		s.viewers[us.vpos] = last
		g.users[last].vpos = us.vpos
	}
	s.viewers = s.viewers[:len(s.viewers)-1]
	if last := g.sessions[len(g.sessions)-1]; last != u {
		g.sessions[us.spos] = last
		g.users[last].spos = us.spos
	}
	g.sessions = g.sessions[:len(g.sessions)-1]
	if us.hidx >= 0 {
		g.q.removeAt(int(us.hidx))
	}
	us.stream = nil
	us.ipos = int32(len(g.idle))
	g.idle = append(g.idle, u)
}

// pickStream chooses a live stream for a user: a category from their
// preference, then a stream of it by preferential attachment (weight ∝ seller
// fame × (1 + viewers), less for another language).
func (g *Generator) pickStream(u *user) *stream {
	for range 3 {
		c := sampleCum(g.rng, u.cum)
		if len(g.cats[c].live) > 0 {
			return g.pickIn(u, g.cats[c].live)
		}
	}
	for _, c := range u.favs {
		if len(g.cats[c].live) > 0 {
			return g.pickIn(u, g.cats[c].live)
		}
	}
	var all []*stream
	for c := range g.cats {
		all = append(all, g.cats[c].live...)
	}
	if len(all) == 0 {
		return nil
	}
	return g.pickIn(u, all)
}

// pickCandidates bounds the cost of pickIn: in longer lists, the weighted
// choice is made among that many streams drawn uniformly.
const pickCandidates = 64

func (g *Generator) pickIn(u *user, list []*stream) *stream {
	if len(list) > pickCandidates {
		var cand [pickCandidates]*stream
		for i := range cand {
			cand[i] = list[g.rng.IntN(len(list))]
		}
		list = cand[:]
	}
	var total float64
	for _, s := range list {
		total += g.weight(u, s)
	}
	x := g.rng.Float64() * total
	for _, s := range list {
		x -= g.weight(u, s)
		if x < 0 {
			return s
		}
	}
	return list[len(list)-1]
}

func (g *Generator) weight(u *user, s *stream) float64 {
	w := g.sellers[s.seller].draw * math.Pow(float64(3+len(s.viewers)), 0.8)
	switch {
	case s.lang == u.lang:
	case s.lang == 0: // English streams are watched by everyone
		w *= 0.5
	default:
		w *= 0.1
	}
	return w
}

// pickSession returns a random viewer, favouring those with a high
// propensity (chat or bid), or -1 when nobody watches.
func (g *Generator) pickSession(bidding bool) int32 {
	if len(g.sessions) == 0 {
		return -1
	}
	var u int32
	for range 6 {
		u = g.sessions[g.rng.IntN(len(g.sessions))]
		p := g.users[u].chat
		if bidding {
			p = g.users[u].bid
		}
		if g.rng.Float64() < p {
			break
		}
	}
	return u
}

func (g *Generator) chat() (Record, bool) {
	u := g.pickSession(false)
	if u < 0 {
		return Record{}, false
	}
	s := g.users[u].stream
	e := events.Chat{Header: g.header(s), UserID: g.users[u].id, Text: g.chatText(&g.users[u], s)}
	return g.record(events.TopicChat, s.id, &e), true
}

func (g *Generator) chatText(u *user, s *stream) string {
	if u.lang != 0 && g.rng.Float64() < 0.7 {
		return pick(g.rng, chatPhrases[languages[u.lang]])
	}
	if g.rng.Float64() < 0.4 {
		return pick(g.rng, chatPhrases["en"])
	}
	w := &g.cats[s.cat].w
	t := pick(g.rng, chatTemplates)
	t = strings.Replace(t, "{i}", pick(g.rng, w.Items), 1)
	return strings.Replace(t, "{m}", pick(g.rng, w.Modifiers), 1)
}

// bid lets a viewer outbid the highest bidder of their stream's running
// auction, within the auction's ceiling.
func (g *Generator) bid() (Record, bool) {
	for range 4 {
		u := g.pickSession(true)
		if u < 0 {
			return Record{}, false
		}
		s := g.users[u].stream
		a := s.auction
		if a == nil || a.high == u {
			continue
		}
		amount := a.start
		if a.high >= 0 {
			steps := 1.0
			if g.rng.Float64() < 0.15 {
				steps = float64(2 + g.rng.IntN(3)) // jump bid
			}
			amount = a.price + float64(steps*increment(a.price))
		}
		if amount > a.ceiling {
			continue
		}
		a.price, a.high = amount, u
		e := events.Auction{Header: g.header(s), AuctionID: a.id, Type: events.AuctionBid,
			UserID: g.users[u].id, Amount: amount, Currency: currency}
		return g.record(events.TopicAuctions, s.id, &e), true
	}
	return Record{}, false
}

// increment is the bid step at a price, like the bid tables of auction sites.
func increment(p float64) float64 {
	switch {
	case p < 10:
		return 1
	case p < 50:
		return 2
	case p < 100:
		return 5
	case p < 500:
		return 10
	case p < 1000:
		return 25
	case p < 5000:
		return 100
	default:
		return math.Round(p * 0.02)
	}
}

// fire runs a timer; it reports false when the timer is stale or produced
// nothing.
func (g *Generator) fire(it item) (Record, bool) {
	s := it.s
	switch it.k {
	case kSchedule:
		if len(g.active) >= g.budget {
			return Record{}, false
		}
		s := g.newStream()
		if s == nil {
			return Record{}, false
		}
		lead := g.cfg.StreamMean.Seconds() * (0.0125 + float64(0.1125*g.rng.Float64()))
		g.q.push(item{at: g.nowNS + int64(lead*nsPerSec), k: kGoLive, s: s})
		return g.status(s), true

	case kGoLive:
		if s.status != events.StatusScheduled {
			return Record{}, false
		}
		s.status = events.StatusLive
		c := &g.cats[s.cat]
		s.cpos = len(c.live)
		c.live = append(c.live, s)
		mean := g.cfg.StreamMean.Seconds()
		length := mean * (0.5 + g.rng.Float64())
		if s.bootstrap {
			length *= 0.05 + float64(0.95*g.rng.Float64())
		}
		s.endAt = g.nowNS + int64(length*nsPerSec)
		g.q.push(item{at: s.endAt, k: kEnd, s: s})
		g.q.push(item{at: g.nowNS + g.auctionGap(), k: kAuctionStart, s: s})
		g.q.push(item{at: g.nowNS + g.updateGap(), k: kUpdate, s: s})
		return g.status(s), true

	case kUpdate:
		if s.status != events.StatusLive {
			return Record{}, false
		}
		s.title = g.title(s.cat, s.lang)
		if g.rng.Float64() < 0.5 {
			s.tags = g.tags(s.cat)
		}
		g.q.push(item{at: g.nowNS + g.updateGap(), k: kUpdate, s: s})
		return g.status(s), true

	case kAuctionStart:
		if s.status != events.StatusLive || s.auction != nil {
			return Record{}, false
		}
		if len(s.viewers) == 0 {
			// Nobody to sell to: the seller waits for a crowd.
			g.q.push(item{at: g.nowNS + g.auctionGap(), k: kAuctionStart, s: s})
			return Record{}, false
		}
		w := &g.cats[s.cat].w
		s.auctions++
		a := &auction{
			id:      s.id + "-a" + strconv.Itoa(s.auctions),
			start:   w.StartPrice * float64([]int{1, 1, 1, 2, 5}[g.rng.IntN(5)]),
			ceiling: w.Value * math.Exp(0.8*g.rng.NormFloat64()),
			high:    -1,
		}
		s.auction = a
		length := g.cfg.AuctionMean.Seconds() * (0.5 + g.rng.Float64())
		g.q.push(item{at: g.nowNS + int64(length*nsPerSec), k: kAuctionClose, s: s})
		e := events.Auction{Header: g.header(s), AuctionID: a.id, Type: events.AuctionStart}
		return g.record(events.TopicAuctions, s.id, &e), true

	case kAuctionClose:
		if s.status != events.StatusLive || s.auction == nil {
			return Record{}, false
		}
		r := g.closeAuction(s)
		g.q.push(item{at: g.nowNS + g.auctionGap(), k: kAuctionStart, s: s})
		return r, true

	case kEnd:
		if s.status != events.StatusLive {
			return Record{}, false
		}
		if s.auction != nil {
			// The running auction closes before the show ends.
			r := g.closeAuction(s)
			g.q.push(item{at: it.at, k: kEnd, s: s})
			return r, true
		}
		s.status = events.StatusEnded
		c := &g.cats[s.cat]
		last := c.live[len(c.live)-1]
		c.live[s.cpos] = last
		last.cpos = s.cpos
		c.live = c.live[:len(c.live)-1]
		i := slices.Index(g.active, s)
		g.active = slices.Delete(g.active, i, i+1)
		g.sellers[s.seller].busy = false
		// Everybody leaves with the show.
		for len(s.viewers) > 0 {
			u := s.viewers[len(s.viewers)-1]
			g.detach(u)
			g.q.push(item{at: g.nowNS, k: kLeaveEmit, u: u, s: s})
		}
		if len(g.active) < g.budget {
			g.q.push(item{at: g.nowNS, k: kSchedule})
		}
		return g.status(s), true

	case kSession:
		u := it.u
		us := &g.users[u]
		s := us.stream
		if us.endAt <= it.at || len(g.sessions) > g.viewerTarget()*5/4+1 {
			g.detach(u)
			return g.viewing(s, u, events.ViewingLeave), true
		}
		g.q.push(item{at: min(us.endAt, g.nowNS+int64(g.cfg.Heartbeat)), k: kSession, u: u})
		return g.viewing(s, u, events.ViewingHeartbeat), true

	case kLeaveEmit:
		return g.viewing(s, it.u, events.ViewingLeave), true
	}
	panic("simulate: unknown timer kind")
}

func (g *Generator) closeAuction(s *stream) Record {
	a := s.auction
	s.auction = nil
	e := events.Auction{Header: g.header(s), AuctionID: a.id, Type: events.AuctionUnsold}
	if a.high >= 0 {
		e.Type, e.UserID, e.Amount, e.Currency = events.AuctionSold, g.users[a.high].id, a.price, currency
	}
	return g.record(events.TopicAuctions, s.id, &e)
}

// auctionGap is the pause before the next auction of a stream.
func (g *Generator) auctionGap() int64 {
	return int64(g.cfg.AuctionMean.Seconds() * (0.1 + float64(0.5*g.rng.Float64())) * nsPerSec)
}

// updateGap is the time until the next metadata change of a live stream.
func (g *Generator) updateGap() int64 {
	return int64(g.cfg.StreamMean.Seconds() * (0.12 + float64(0.38*g.rng.Float64())) * nsPerSec)
}

// newStream creates a scheduled stream for a free seller (by fame), or
// returns nil when every seller is busy.
func (g *Generator) newStream() *stream {
	si := -1
	for range 16 {
		if i := sampleCum(g.rng, g.fameCum); !g.sellers[i].busy {
			si = i
			break
		}
	}
	if si < 0 {
		start := g.rng.IntN(len(g.sellers))
		for j := range g.sellers {
			if i := (start + j) % len(g.sellers); !g.sellers[i].busy {
				si = i
				break
			}
		}
		if si < 0 {
			return nil
		}
	}
	sl := &g.sellers[si]
	sl.busy = true
	cat := sl.cat
	if g.rng.Float64() < 0.1 {
		cat = sampleCum(g.rng, g.catCum)
	}
	g.nstreams++
	s := &stream{
		id:     "ls-" + g.tag + "-" + padN(g.nstreams, 6),
		seller: si,
		cat:    cat,
		lang:   sl.lang,
		status: events.StatusScheduled,
	}
	s.title = g.title(cat, s.lang)
	s.tags = g.tags(cat)
	g.active = append(g.active, s)
	return s
}

// title builds "[prefix] [modifier] item [format]" from the category words.
func (g *Generator) title(cat, lang int) string {
	w := &g.cats[cat].w
	var parts []string
	if lang != 0 && g.rng.Float64() < 0.6 {
		parts = append(parts, pick(g.rng, titlePrefixes[languages[lang]]))
	}
	switch g.rng.IntN(3) {
	case 0:
		parts = append(parts, pick(g.rng, w.Modifiers), pick(g.rng, w.Items))
	case 1:
		parts = append(parts, pick(g.rng, w.Modifiers), pick(g.rng, w.Items), pick(g.rng, w.Formats))
	default:
		parts = append(parts, pick(g.rng, w.Items), pick(g.rng, w.Formats))
	}
	return strings.Join(parts, " ")
}

// tags draws 2 to 5 distinct tags of the category.
func (g *Generator) tags(cat int) []string {
	all := g.cats[cat].w.Tags
	n := min(len(all), 2+g.rng.IntN(4))
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	out := make([]string, n)
	for i := range n {
		j := i + g.rng.IntN(len(idx)-i)
		idx[i], idx[j] = idx[j], idx[i]
		out[i] = all[idx[i]]
	}
	return out
}

func (g *Generator) pickLanguage() int {
	x := g.rng.Float64()
	for i, p := range languageShare {
		if x < p {
			return i
		}
		x -= p
	}
	return 0
}

func (g *Generator) status(s *stream) Record {
	e := g.livestream(s)
	return g.record(events.TopicLivestreams, s.id, &e)
}

func (g *Generator) livestream(s *stream) events.Livestream {
	return events.Livestream{
		Header: g.header(s), SellerID: g.sellers[s.seller].id, Title: s.title,
		Category: g.cats[s.cat].id, Tags: s.tags, Language: languages[s.lang], Status: s.status,
	}
}

func (g *Generator) viewing(s *stream, u int32, t events.ViewingType) Record {
	e := events.Viewing{Header: g.header(s), Type: t, UserID: g.users[u].id}
	return g.record(events.TopicViewing, s.id, &e)
}

func (g *Generator) header(s *stream) events.Header {
	return events.Header{EventID: g.eventID(), EventTime: g.now, LivestreamID: s.id}
}

// eventID returns a unique, deterministic id: "ev-<seed tag>-<sequence>".
func (g *Generator) eventID() string {
	g.nevents++
	n := len("ev-") + len(g.tag) + 1
	g.idbuf = strconv.AppendUint(g.idbuf[:n], g.nevents, 10)
	return string(g.idbuf)
}

func (g *Generator) record(topic, key string, v any) Record {
	b, err := json.Marshal(v)
	if err != nil {
		panic("simulate: encoding an event: " + err.Error()) // cannot happen with the events types
	}
	return Record{Topic: topic, Key: key, Value: b, Time: g.now}
}

// sampleCum draws an index from a cumulative weight table.
func sampleCum(r *rand.Rand, cum []float64) int {
	x := r.Float64() * cum[len(cum)-1]
	i, _ := slices.BinarySearchFunc(cum, x, func(c, x float64) int {
		if c <= x {
			return -1
		}
		return 1
	})
	return min(i, len(cum)-1)
}

func pick(r *rand.Rand, list []string) string { return list[r.IntN(len(list))] }

// pad formats i with as many digits as n-1 needs (at least 4).
func pad(i, n int) string {
	return padN(i, max(4, len(strconv.Itoa(n-1))))
}

func padN(i, width int) string {
	s := strconv.Itoa(i)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
