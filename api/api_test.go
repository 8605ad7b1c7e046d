package api

import (
	"encoding/json"
	"math"
	"net/url"
	"reflect"
	"testing"
)

// What the client encodes, the server reads back unchanged.
func TestRecommendationsRequestRoundTrip(t *testing.T) {
	for _, r := range []RecommendationsRequest{
		{UserID: "u1", Filter: Filter{Status: []Status{StatusLive}}},
		{UserID: "u 2,&=", K: 7, ExcludeSeen: true, Exclude: []string{"a", "b"}, Formula: "similarity * log(1 + viewers_now)",
			MaxPerSeller: 2, OverFetch: 3, Explain: true,
			Filter: Filter{Status: []Status{StatusLive, StatusScheduled}, Categories: []string{"cards", "shoes"}, Languages: []string{"en"},
				ExcludeSellers: []string{"s1"}, Ranges: []Range{Between("bids_5m", -1.5, 1e300), AtMost("max_bid_5m", 10), AtLeast(AttrViewersNow, 3)}}},
	} {
		got, err := ParseRecommendationsRequest(r.Query())
		if err != nil {
			t.Fatal(err)
		}
		want := r
		want.Filter.Ranges = nil
		// Ranges come back sorted by field.
		for _, f := range []string{"bids_5m", "max_bid_5m", AttrViewersNow} {
			for _, rg := range r.Filter.Ranges {
				if rg.Field == f {
					want.Filter.Ranges = append(want.Filter.Ranges, rg)
				}
			}
		}
		if len(want.Filter.Ranges) == 0 {
			want.Filter.Ranges = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	for _, q := range []string{"k=1", "user_id=u&k=x", "user_id=u&colour=red", "user_id=u&min.bids_5m=NaN", "user_id=u&explain=maybe"} {
		vals, _ := url.ParseQuery(q)
		if r, err := ParseRecommendationsRequest(vals); err == nil {
			t.Errorf("%s accepted: %+v", q, r)
		}
	}
}

func TestValueJSON(t *testing.T) {
	for _, c := range []struct {
		v    Value
		json string
	}{
		{Value{}, `null`},
		{Value{Kind: Num, Number: 2.5}, `2.5`},
		{Value{Kind: Text, Text: "x"}, `"x"`},
		{Value{Kind: List, Items: []string{}}, `[]`},
		{Value{Kind: List, Items: []string{"a", "b"}}, `["a","b"]`},
		{Value{Kind: Top, Top: []KeyCount{{Key: "a", Count: 3}}}, `[{"key":"a","count":3}]`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil || string(b) != c.json {
			t.Errorf("%+v: %s %v, want %s", c.v, b, err, c.json)
		}
		var back Value
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, c.v) {
			t.Errorf("%s: decoded %+v %v, want %+v", b, back, err, c.v)
		}
	}
	if b, _ := json.Marshal(Value{Kind: Num, Number: math.Inf(1)}); string(b) != "null" {
		t.Errorf("+Inf: %s, want null (JSON has no infinities)", b)
	}
	var v Value
	for _, bad := range []string{`true`, `{}`, `[1]`, `[{"key":1}]`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s decoded as %+v", bad, v)
		}
	}
	if x, ok := (Value{}).Float(); ok || x != 0 {
		t.Errorf("null as a number: %v %v", x, ok)
	}
}

func TestArgJSON(t *testing.T) {
	for _, c := range []struct {
		a    Arg
		json string
		raw  string
	}{
		{String("en"), `"en"`, "en"},
		{Number(60), `60`, "60"},
		{Number(0.5), `0.5`, "0.5"},
		{Strings("a", "b"), `["a","b"]`, "a,b"},
	} {
		b, err := json.Marshal(c.a)
		if err != nil || string(b) != c.json || c.a.Raw() != c.raw {
			t.Errorf("%+v: %s %v raw %q", c.a, b, err, c.a.Raw())
		}
		var back Arg
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, c.a) {
			t.Errorf("%s: decoded %+v %v", b, back, err)
		}
	}
	var a Arg
	for _, bad := range []string{`true`, `null`, `{}`, `[1]`} {
		if err := json.Unmarshal([]byte(bad), &a); err == nil {
			t.Errorf("%s decoded as %+v", bad, a)
		}
	}
}
