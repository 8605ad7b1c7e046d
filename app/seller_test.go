package app

import (
	"context"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/serving"
)

// A seller's embedding follows the content of their streams (livestream
// group → seller-signals → seller group) and moves toward the tastes of the
// users who buy from them (user group → seller-signals), and is served at
// /v1/features/seller/{id}.
func TestSellerEmbeddingFromContentAndBuyers(t *testing.T) {
	r := startPipeline(t)
	resetBase()
	n := 0
	streams := append([]stream{{"ls-cards-3", "s-1", "yugioh booster pack opening", "trading-cards", []string{"yugioh", "booster"}}}, catalog...)
	for _, s := range streams {
		r.produce(t, events.TopicLivestreams, s.id, events.Livestream{Header: hdr(&n, s.id, 0), SellerID: s.seller,
			Title: s.title, Category: s.category, Tags: s.tags, Language: "en", Status: events.StatusLive})
	}
	vector := func(id string) []float32 {
		var lf serving.LivestreamFeatures
		if r.get(t, "/v1/features/livestream/"+id+"?embedding=true", &lf) != 200 {
			return nil
		}
		return lf.Embedding
	}
	seller := func(id string) serving.EntityFeatures {
		var ef serving.EntityFeatures
		r.get(t, "/v1/features/seller/"+id+"?embedding=true", &ef)
		return ef
	}
	contents := map[string][]float32{}
	r.waitFor(t, "every stream embedded", func() bool {
		for _, s := range streams {
			if contents[s.id] = vector(s.id); len(contents[s.id]) == 0 {
				return false
			}
		}
		return true
	})
	version := r.app.Embedder.Version()

	// s-1 sells two streams: its embedding is their (equally recent, so
	// equally weighted) mean direction. s-3 sells one: its content.
	mean := models.Normalized(addVec(contents["ls-cards-1"], contents["ls-cards-3"]))
	var s1 serving.EntityFeatures
	r.waitFor(t, "s-1's embedding from both its streams", func() bool {
		s1 = seller("s-1")
		return len(s1.Embedding) == len(mean) && models.Dot(s1.Embedding, mean) > 0.9999
	})
	if !s1.HasEmbedding || s1.EmbeddingModel != version {
		t.Fatalf("s-1: has_embedding %v, model %q, want %q", s1.HasEmbedding, s1.EmbeddingModel, version)
	}
	var s3 serving.EntityFeatures
	r.waitFor(t, "s-3's embedding", func() bool {
		s3 = seller("s-3")
		return len(s3.Embedding) > 0
	})
	if d := models.Dot(s3.Embedding, contents["ls-shoes-1"]); d < 0.9999 {
		t.Fatalf("s-3's embedding is not its stream's content: cos %.5f", d)
	}
	// Nearest its own streams: among every stream, the closest to s-1 is one
	// of s-1's.
	best, bestDot := "", float32(-2)
	for id, v := range contents {
		if d := models.Dot(s1.Embedding, v); d > bestDot {
			best, bestDot = id, d
		}
	}
	if best != "ls-cards-1" && best != "ls-cards-3" {
		t.Fatalf("nearest stream to s-1 is %s (cos %.3f), not one of its own", best, bestDot)
	}
	// Without ?embedding=true the vector is not sent, the flag is.
	var plain serving.EntityFeatures
	if r.get(t, "/v1/features/seller/s-1", &plain) != 200 || len(plain.Embedding) != 0 || !plain.HasEmbedding {
		t.Fatalf("plain seller features: %+v", plain)
	}

	// u-watch builds a watch-collector taste on s-5's stream, then buys in
	// s-1's stream: s-1's embedding moves toward watches.
	watch := contents["ls-watch-1"]
	r.produce(t, events.TopicViewing, "ls-watch-1", events.Viewing{Header: hdr(&n, "ls-watch-1", time.Second), Type: events.ViewingJoin, UserID: "u-watch"})
	r.produce(t, events.TopicChat, "ls-watch-1", events.Chat{Header: hdr(&n, "ls-watch-1", 2*time.Second), UserID: "u-watch", Text: "rolex"})
	r.waitFor(t, "u-watch's taste", func() bool {
		var uf serving.UserFeatures
		return r.get(t, "/v1/features/user/u-watch", &uf) == 200 && uf.Signals["watch"]+uf.Signals["chat"] == 2
	})
	r.produce(t, events.TopicAuctions, "ls-cards-1", events.Auction{Header: hdr(&n, "ls-cards-1", 3*time.Second),
		AuctionID: "a-1", Type: events.AuctionSold, UserID: "u-watch", Amount: 40, Currency: "USD"})
	var moved serving.EntityFeatures
	r.waitFor(t, "s-1's embedding to take in its buyer", func() bool {
		moved = seller("s-1")
		return len(moved.Embedding) > 0 && models.Dot(moved.Embedding, s1.Embedding) < 0.9999
	})
	if models.Dot(moved.Embedding, watch) <= models.Dot(s1.Embedding, watch) {
		t.Fatalf("the buyer (a watch collector) did not move s-1 toward watches: %.3f → %.3f",
			models.Dot(s1.Embedding, watch), models.Dot(moved.Embedding, watch))
	}
	// The blend: 0.7·content + 0.3·the buyer's taste (the watch stream's
	// content), normalised.
	want := models.Normalized(addVec(scaleVec(mean, 0.7), scaleVec(models.Normalized(watch), 0.3)))
	if d := models.Dot(moved.Embedding, want); d < 0.999 {
		t.Fatalf("s-1's embedding is not 0.7·content + 0.3·buyers: cos %.5f", d)
	}
	// s-3 had no buyer: unchanged.
	if d := models.Dot(seller("s-3").Embedding, s3.Embedding); d < 0.9999 {
		t.Fatalf("s-3 moved without a buyer: cos %.5f", d)
	}
}

func addVec(a, b []float32) []float32 {
	out := make([]float32, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

func scaleVec(a []float32, f float32) []float32 {
	out := make([]float32, len(a))
	for i := range a {
		out[i] = a[i] * f
	}
	return out
}

func TestSellerAndTasteSettingsValidated(t *testing.T) {
	for name, c := range map[string]Config{
		"negative taste weight": {TasteWeights: map[events.SignalKind]float64{events.SignalBuy: -1}},
		"buyer weight above 1":  {SellerBuyerWeight: 1.5},
		"negative half-life":    {SellerBuyerHalfLife: -time.Hour},
	} {
		c.Defaults()
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := Config{TasteWeights: map[events.SignalKind]float64{events.SignalBuy: 0}, SellerBuyerWeight: -1}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Errorf("valid settings rejected: %v", err)
	}
}

func TestTasteWeightsReachTheTopology(t *testing.T) {
	cfg := Config{NoEmbeddings: true, TasteWeights: map[events.SignalKind]float64{events.SignalBuy: 20},
		SellerBuyerWeight: 0.5, SellerContentHalfLife: time.Hour}
	cfg.Defaults()
	topo, release, err := buildTopology(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if topo.Weights[events.SignalBuy] != 20 || topo.Seller.BuyerWeight != 0.5 || topo.Seller.ContentHalfLife != time.Hour {
		t.Fatalf("topology weights %v, seller %+v", topo.Weights, topo.Seller)
	}
}
