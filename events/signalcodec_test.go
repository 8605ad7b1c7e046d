package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// The binary form decodes to the same signal as its JSON, with and without
// the optional parts, and every cut-short record is malformed, never a
// panic or a partial signal.
func TestUserSignalBinaryRoundTrip(t *testing.T) {
	full := benchSignal()
	full.Amount = 12.5
	signalOnly := *full
	signalOnly.Source, signalOnly.Event = "", nil
	eventOnly := *full
	eventOnly.Kind, eventOnly.Embedding, eventOnly.Amount = "", nil, 0
	for _, s := range []*UserSignal{full, &signalOnly, &eventOnly} {
		bin, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(s)
		var fromBin, fromJSON UserSignal
		if err := Decode(bin, &fromBin); err != nil {
			t.Fatalf("binary %+v: %v", s, err)
		}
		if err := Decode(js, &fromJSON); err != nil {
			t.Fatalf("JSON %s: %v", js, err)
		}
		if !fromBin.EventTime.Equal(fromJSON.EventTime) {
			t.Fatalf("event time %v, JSON %v", fromBin.EventTime, fromJSON.EventTime)
		}
		fromBin.EventTime = fromJSON.EventTime
		if !reflect.DeepEqual(fromBin, fromJSON) {
			t.Fatalf("binary decodes to %+v\nJSON to %+v", fromBin, fromJSON)
		}
		for n := range len(bin) {
			var cut UserSignal
			if err := Decode(bin[:n], &cut); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%d of %d bytes: %v, want malformed", n, len(bin), err)
			}
		}
		var long UserSignal
		if err := Decode(append(bin, 0), &long); !errors.Is(err, ErrMalformed) {
			t.Fatalf("a trailing byte: %v, want malformed", err)
		}
	}
	// A binary record is validated as a JSON one is.
	bad := *full
	bad.Kind = "stare"
	bin, _ := bad.MarshalBinary()
	var ve *ValidationError
	if err := Decode(bin, new(UserSignal)); !errors.As(err, &ve) || ve.Field != "kind" {
		t.Fatalf("invalid kind: %v", err)
	}
}

// FuzzUserSignalBinary: a binary user-signals record never crashes the
// decoder, every error is classified, and what decodes re-encodes to the
// same bytes.
func FuzzUserSignalBinary(f *testing.F) {
	full := benchSignal()
	for _, s := range []*UserSignal{full, {EventID: "e", UserID: "u", Kind: SignalBid, LivestreamID: "ls", Amount: 3}} {
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{UserSignalBinary})
	fields := schemaFields()
	f.Fuzz(func(t *testing.T, data []byte) {
		var s UserSignal
		if err := Decode(data, &s); err != nil {
			checkDecodeError(t, data, &s, err, fields)
			return
		}
		if len(data) == 0 || data[0] != UserSignalBinary {
			return // JSON: FuzzDecodeRecords
		}
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("%x decoded to %+v, which encodes to %x", data, s, b)
		}
	})
}
