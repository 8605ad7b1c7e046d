package main

import (
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/processors/user"
)

func TestTasteWeightsAndSellerFlags(t *testing.T) {
	f := newFlags("run", true, false)
	if err := f.parse(nil, false); err != nil {
		t.Fatal(err)
	}
	if got, want := f.cfg.TasteWeights.String(), user.DefaultWeights().String(); got != want {
		t.Fatalf("default taste weights %s, want %s", got, want)
	}
	if f.cfg.SellerContentHalfLife != 7*24*time.Hour || f.cfg.SellerBuyerHalfLife != 30*24*time.Hour || f.cfg.SellerBuyerWeight != 0.3 {
		t.Fatalf("seller defaults: %v %v %v", f.cfg.SellerContentHalfLife, f.cfg.SellerBuyerHalfLife, f.cfg.SellerBuyerWeight)
	}

	f = newFlags("run", true, false)
	if err := f.parse([]string{"--taste-weights", "watch=0.5,buy=20", "--seller-buyer-weight", "0.5",
		"--seller-content-half-life", "48h"}, false); err != nil {
		t.Fatal(err)
	}
	w := f.cfg.TasteWeights
	if w[events.SignalWatch] != 0.5 || w[events.SignalBuy] != 20 || w[events.SignalChat] != user.DefaultWeights()[events.SignalChat] {
		t.Fatalf("parsed weights %v", w)
	}
	if f.cfg.SellerBuyerWeight != 0.5 || f.cfg.SellerContentHalfLife != 48*time.Hour {
		t.Fatalf("seller flags: %v %v", f.cfg.SellerBuyerWeight, f.cfg.SellerContentHalfLife)
	}

	t.Setenv("LIVEFEED_TASTE_WEIGHTS", "bid=7")
	f = newFlags("run", true, false)
	if err := f.parse(nil, false); err != nil || f.cfg.TasteWeights[events.SignalBid] != 7 {
		t.Fatalf("from the environment: %v %v", f.cfg.TasteWeights, err)
	}

	for _, bad := range []string{"buy=-1", "like=2", "watch", "chat=abc"} {
		f = newFlags("run", true, false)
		if err := f.parse([]string{"--taste-weights", bad}, false); err == nil || !strings.Contains(err.Error(), "--taste-weights") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}
