package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSellerSignalValidate(t *testing.T) {
	good := func() SellerSignal {
		return SellerSignal{SellerID: "s-1", Kind: SellerContent, LivestreamID: "ls-1",
			EventTime: time.Unix(1e9, 0).UTC(), Vector: Vector{1, 0}, Model: "m"}
	}
	s := good()
	raw, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	var back SellerSignal
	if err := Decode(raw, &back); err != nil || back.Model != "m" || len(back.Vector) != 2 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	buyer := good()
	buyer.Kind, buyer.Model, buyer.UserID = SellerBuyer, "", "u-1"
	if err := buyer.Validate(); err != nil {
		t.Fatalf("buyer: %v", err)
	}
	for field, mutate := range map[string]func(*SellerSignal){
		"seller_id":     func(s *SellerSignal) { s.SellerID = "" },
		"livestream_id": func(s *SellerSignal) { s.LivestreamID = "" },
		"kind":          func(s *SellerSignal) { s.Kind = "like" },
		"model":         func(s *SellerSignal) { s.Model = "" },
		"user_id":       func(s *SellerSignal) { s.Kind, s.UserID = SellerBuyer, "" },
		"event_time":    func(s *SellerSignal) { s.EventTime = time.Time{} },
		"vector":        func(s *SellerSignal) { s.Vector = nil },
	} {
		s := good()
		mutate(&s)
		var ve *ValidationError
		if err := s.Validate(); !errors.As(err, &ve) || ve.Field != field {
			t.Errorf("%s: error %v", field, err)
		}
	}
	if err := Decode([]byte(`{"seller_id":"s","kind":"content","vector":"!!"}`), &back); err == nil ||
		!strings.Contains(err.Error(), "vector") {
		t.Errorf("bad base64: %v", err)
	}
}
