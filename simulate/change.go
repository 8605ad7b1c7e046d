package simulate

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/livefeed/livefeed/events"
)

// Change alters generated records the way a changed producer would — a
// field it stops sending, a category it renames — to exercise feature
// monitoring (serving/drift). It is applied to each record after the
// Generator made it, so the simulation itself (who watches, bids, wins)
// and every record it does not touch stay byte for byte what the seed
// gives: the same seed with and without a Change differs only in the
// changed records.
type Change struct {
	// DropFields removes JSON fields from events, each "topic.field" or
	// "topic.type.field" ("auctions.bid.amount": the amount of bids only).
	DropFields []string
	// RenameCategories renames categories in livestream events (old →
	// new); the processors enrich the other events from the stream's
	// state, so they carry the new name too.
	RenameCategories map[string]string
}

// Compile checks the change and returns the function that applies it to a
// record (nil for an empty change), for callers that write records
// themselves (Produce applies ProduceOptions.Change).
func (c *Change) Compile() (func(Record) Record, error) {
	cc, err := c.compile()
	if err != nil || cc == nil {
		return nil, err
	}
	return cc.apply, nil
}

type fieldDrop struct{ topic, typ, field string }

// compiled is a Change ready to apply.
type compiled struct {
	drops  []fieldDrop
	rename map[string]string
}

func (c *Change) compile() (*compiled, error) {
	if c == nil || (len(c.DropFields) == 0 && len(c.RenameCategories) == 0) {
		return nil, nil
	}
	out := &compiled{rename: c.RenameCategories}
	for _, f := range c.DropFields {
		parts := strings.Split(f, ".")
		switch len(parts) {
		case 2:
			out.drops = append(out.drops, fieldDrop{topic: parts[0], field: parts[1]})
		case 3:
			out.drops = append(out.drops, fieldDrop{topic: parts[0], typ: parts[1], field: parts[2]})
		default:
			return nil, fmt.Errorf("simulate: drop field %q: want topic.field or topic.type.field", f)
		}
	}
	return out, nil
}

// apply returns r changed, or r itself when the change does not touch it
// (or its value is not a JSON object: a deliberately bad record).
func (c *compiled) apply(r Record) Record {
	var m map[string]json.RawMessage
	changed := false
	decode := func() bool {
		if m == nil && json.Unmarshal(r.Value, &m) != nil {
			return false
		}
		return true
	}
	for _, d := range c.drops {
		if d.topic != r.Topic || !decode() {
			continue
		}
		if d.typ != "" {
			var typ string
			if json.Unmarshal(m["type"], &typ) != nil || typ != d.typ {
				continue
			}
		}
		if _, ok := m[d.field]; ok {
			delete(m, d.field)
			changed = true
		}
	}
	if len(c.rename) > 0 && r.Topic == events.TopicLivestreams && decode() {
		var cat string
		if json.Unmarshal(m["category"], &cat) == nil {
			if to, ok := c.rename[cat]; ok {
				m["category"], _ = json.Marshal(to)
				changed = true
			}
		}
	}
	if !changed {
		return r
	}
	b, err := json.Marshal(m)
	if err != nil {
		return r
	}
	r.Value = b
	return r
}
