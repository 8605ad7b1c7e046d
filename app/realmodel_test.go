package app

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving"
)

// realCatalog: five streams in each of eight categories, titled the way
// sellers title them. "Vintage" appears outside sneakers too.
var realCatalog = map[string][]string{
	"trading-cards": {"Pokemon booster box break, chasing Charizard", "PSA 10 graded Pikachu and Mewtwo slabs",
		"Magic the Gathering commander deck opening", "Yu-Gi-Oh tournament packs, rare pulls", "NBA Prizm basketball card breaks"},
	"sneakers": {"Air Jordan 1 retro high OG restock", "Old school Nike running shoes from the 80s",
		"Yeezy Boost 350 resale night", "Deadstock Nike Dunk Low drop", "Classic Adidas Samba and Gazelle kicks"},
	"watches": {"Vintage Rolex Submariner and Datejust", "Omega Speedmaster moonwatch collection",
		"Seiko divers under 500 dollars", "Casio G-Shock limited editions", "Swiss luxury watches auction"},
	"comics": {"Marvel first appearances, Spider-Man keys", "DC Batman graphic novels lot",
		"Manga box sets: One Piece and Naruto", "Golden age comic books, CGC graded", "Indie comics and zines"},
	"vinyl": {"Jazz vinyl records, Blue Note pressings", "Classic rock LPs: Beatles and Led Zeppelin",
		"Hip hop vinyl and turntable gear", "Rare soul 45s", "Vintage synthesizer records and cassettes"},
	"handbags": {"Louis Vuitton Neverfull and Speedy bags", "Hermes Birkin authentication live",
		"Chanel classic flap handbags", "Designer purses under 300", "Gucci and Prada leather bags"},
	"coins": {"Silver dollars and Morgan coins", "Gold bullion coins and bars", "Ancient Roman coins",
		"Proof sets and mint errors", "World coins grab bags"},
	"toys": {"LEGO Star Wars sets, retired", "Hot Wheels treasure hunts", "Funko Pop vaulted figures",
		"Vintage Barbie dolls", "Transformers and G.I. Joe action figures"},
}

// Done means, with the real model (all-MiniLM-L6-v2 on the pure-Go
// backend): a user who watches trading-card streams is recommended other
// trading-card streams first, and a text search for "vintage sneakers" finds
// sneaker streams — through the whole pipeline (worker, vectors topic,
// livestream and user groups, views, index, HTTP).
func TestRealModelRecommendsAndSearches(t *testing.T) {
	dir := os.Getenv("LIVEFEED_MODEL_DIR")
	if dir == "" {
		t.Skip("LIVEFEED_MODEL_DIR is not set: no real model. Fetch all-MiniLM-L6-v2 with " +
			"`export LIVEFEED_MODEL_DIR=$(deploy/models/fetch.sh all-minilm-l6-v2)` (CI does)")
	}
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
		t.Fatalf("LIVEFEED_MODEL_DIR=%s: %v", dir, err)
	}
	perCategory := 5
	if raceDetector {
		perCategory = 2 // the race detector makes the pure-Go model ~20× slower
	}
	r, _ := startStack(t, Config{Brokers: testBrokers(), DataDir: t.TempDir(), ModelDir: dir,
		TopicPrefix: fmt.Sprintf("rm%d-", time.Now().UnixNano())})
	cl := r.newProducer(t)
	t.Cleanup(cl.Close)
	r.client = cl
	resetBase()
	n := 0
	var ids []string
	for cat, titles := range realCatalog {
		k := perCategory
		if cat == "trading-cards" || cat == "sneakers" {
			k = len(titles)
		}
		for i, title := range titles[:k] {
			id := fmt.Sprintf("ls-%s-%d", cat, i)
			ids = append(ids, id)
			r.produce(t, events.TopicLivestreams, id, events.Livestream{Header: hdr(&n, id, 0), SellerID: "s-" + id,
				Title: title, Category: cat, Language: "en", Status: events.StatusLive})
		}
	}
	start := time.Now()
	waitLong(t, "every stream embedded by the real model", 5*time.Minute, func() bool {
		for _, id := range ids {
			var lf serving.LivestreamFeatures
			if r.get(t, "/v1/features/livestream/"+id, &lf) != 200 || lf.EmbeddingModel != r.app.Embedder.Version() {
				return false
			}
		}
		return true
	})
	t.Logf("%d streams embedded through the worker in %v", len(ids), time.Since(start).Round(time.Millisecond))

	res := r.search(t, "vintage sneakers", 3)
	t.Logf("vintage sneakers → %v", titlesOf(res))
	if len(res.Results) != 3 || res.Results[0].Category != "sneakers" || countCategory(res, "sneakers") < 2 {
		t.Errorf("search \"vintage sneakers\": %v, want sneaker streams first", titlesOf(res))
	}

	// The collector watches, chats and bids in three trading-card streams.
	for i := range 3 {
		id := fmt.Sprintf("ls-trading-cards-%d", i)
		r.produce(t, events.TopicViewing, id, events.Viewing{Header: hdr(&n, id, time.Second), Type: events.ViewingJoin, UserID: "u-collector"})
		r.produce(t, events.TopicChat, id, events.Chat{Header: hdr(&n, id, 2*time.Second), UserID: "u-collector", Text: "nice pull"})
		r.produce(t, events.TopicAuctions, id, events.Auction{Header: hdr(&n, id, 3*time.Second), AuctionID: "a-" + id, Type: events.AuctionBid,
			UserID: "u-collector", Amount: 20, Currency: "USD"})
	}
	waitLong(t, "the collector's signals", time.Minute, func() bool {
		var uf serving.UserFeatures
		return r.get(t, "/v1/features/user/u-collector", &uf) == 200 && len(uf.Recent) == 3 &&
			uf.Signals["watch"]+uf.Signals["chat"]+uf.Signals["bid"] == 9
	})
	var rec serving.Response
	if code := r.get(t, "/v1/recommendations?user_id=u-collector&k=4&exclude_seen=true", &rec); code != http.StatusOK || rec.Strategy != "taste" {
		t.Fatalf("recommendations: %d, strategy %q", code, rec.Strategy)
	}
	t.Logf("u-collector → %v", titlesOf(rec))
	// Two trading-card streams are left unseen: they come first.
	for i, want := range []string{"trading-cards", "trading-cards"} {
		if len(rec.Results) <= i || rec.Results[i].Category != want {
			t.Fatalf("recommendation %d: %v, want %s streams first", i, titlesOf(rec), want)
		}
	}
}

func waitLong(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func titlesOf(r serving.Response) []string {
	var out []string
	for _, x := range r.Results {
		out = append(out, fmt.Sprintf("%s (%s, %.3f)", x.Title, x.Category, x.Score))
	}
	return out
}

func countCategory(r serving.Response, cat string) int {
	n := 0
	for _, x := range r.Results {
		if x.Category == cat {
			n++
		}
	}
	return n
}
