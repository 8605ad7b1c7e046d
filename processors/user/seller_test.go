package user

import (
	"strings"
	"testing"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/tables"
)

func TestSellerSignalOnBuyWithTaste(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := &tables.User{UserID: "u"}
	sig := func(kind events.SignalKind, seller string, vec []float32) *events.UserSignal {
		return &events.UserSignal{EventID: "e", EventTime: t0, UserID: "u", Kind: kind, LivestreamID: "ls-1",
			SellerID: seller, Embedding: vec}
	}
	// No taste yet: nothing to tell the seller.
	if s := SellerSignal(st, sig(events.SignalBuy, "s-1", []float32{0, 1})); s != nil {
		t.Fatalf("seller signal without a taste: %+v", s)
	}
	Apply(st, sig(events.SignalWatch, "s-9", []float32{1, 0}), DefaultWeights(), time.Hour)
	for _, k := range []events.SignalKind{events.SignalWatch, events.SignalChat, events.SignalBid} {
		if s := SellerSignal(st, sig(k, "s-1", []float32{0, 1})); s != nil {
			t.Fatalf("%s sent a seller signal", k)
		}
	}
	if s := SellerSignal(st, sig(events.SignalBuy, "", []float32{0, 1})); s != nil {
		t.Fatal("a buy without a seller sent a seller signal")
	}
	// A buy sends the taste as it was before it.
	s := SellerSignal(st, sig(events.SignalBuy, "s-1", []float32{0, 1}))
	if s == nil || s.SellerID != "s-1" || s.Kind != events.SellerBuyer || s.UserID != "u" || s.LivestreamID != "ls-1" ||
		models.Dot(s.Vector, []float32{1, 0}) < 0.999 {
		t.Fatalf("seller signal %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseWeights(t *testing.T) {
	w, err := ParseWeights("watch=0.5, buy=10")
	if err != nil {
		t.Fatal(err)
	}
	want := Weights{events.SignalWatch: 0.5, events.SignalChat: 2, events.SignalBid: 4, events.SignalBuy: 10}
	if w.String() != want.String() {
		t.Fatalf("got %v, want %v", w, want)
	}
	if d, err := ParseWeights(DefaultWeights().String()); err != nil || d.String() != DefaultWeights().String() {
		t.Fatalf("defaults do not round-trip: %v %v", d, err)
	}
	if d, err := ParseWeights(""); err != nil || d.String() != DefaultWeights().String() {
		t.Fatalf("empty: %v %v", d, err)
	}
	for in, msg := range map[string]string{
		"watch":              "want kind=weight",
		"like=1":             "unknown signal kind",
		"buy=-1":             "negative",
		"buy=x":              "not a finite number",
		"buy=NaN":            "not a finite number",
		"buy=+Inf":           "not a finite number",
		"chat=1,chat=2":      "given twice",
		"watch=1,,bid=1e400": "not a finite number",
	} {
		if _, err := ParseWeights(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", in, err, msg)
		}
	}
}
