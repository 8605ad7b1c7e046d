package simulate

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// A Change touches exactly the records it names: bids lose their amount,
// sneakers streams become "kicks", every other record is byte for byte the
// unchanged generator's.
func TestChangeTouchesOnlyItsRecords(t *testing.T) {
	ch, err := (&Change{DropFields: []string{"auctions.bid.amount"}, RenameCategories: map[string]string{"sneakers": "kicks"}}).compile()
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(Config{Seed: 7, Categories: []string{"sneakers", "watches"}})
	if err != nil {
		t.Fatal(err)
	}
	var bids, sold, renamed, same int
	for i := range 20000 {
		r := g.Next(t0.Add(time.Duration(i) * 20 * time.Millisecond))
		c := ch.apply(r)
		var m map[string]any
		if json.Unmarshal(r.Value, &m) != nil {
			continue // a bad record
		}
		var cm map[string]any
		if err := json.Unmarshal(c.Value, &cm); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Topic == "auctions" && m["type"] == "bid":
			if _, ok := cm["amount"]; ok {
				t.Fatalf("a bid kept its amount: %s", c.Value)
			}
			bids++
		case r.Topic == "livestreams" && m["category"] == "sneakers":
			if cm["category"] != "kicks" {
				t.Fatalf("not renamed: %s", c.Value)
			}
			renamed++
		default:
			if !bytes.Equal(r.Value, c.Value) {
				t.Fatalf("an untouched record changed:\n%s\n%s", r.Value, c.Value)
			}
			if r.Topic == "auctions" && m["type"] == "sold" {
				sold++
			}
			same++
		}
	}
	if bids == 0 || renamed == 0 || sold == 0 || same == 0 {
		t.Fatalf("bids %d renamed %d sold %d untouched %d: the sample misses a case", bids, renamed, sold, same)
	}
	if _, err := (&Change{DropFields: []string{"amount"}}).compile(); err == nil {
		t.Fatal("a field without its topic accepted")
	}
}
