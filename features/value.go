package features

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	fastjson "github.com/segmentio/encoding/json"
)

// Kind is the type of a Value.
type Kind uint8

// Value kinds. Missing is the zero Value: a field the event does not have.
const (
	Missing Kind = iota
	String
	Number
	Bool
	List
)

func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "bool"
	case List:
		return "list"
	}
	return "missing"
}

// Value is one field of an event: a string, a number, a bool or a list of
// strings (livestream tags). The zero Value is Missing.
type Value struct {
	kind Kind
	num  float64
	str  string
	list []string
}

// StringValue, NumberValue, BoolValue and ListValue make Values.
func StringValue(s string) Value { return Value{kind: String, str: s} }

// NumberValue makes a number Value.
func NumberValue(f float64) Value { return Value{kind: Number, num: f} }

// BoolValue makes a bool Value.
func BoolValue(b bool) Value {
	if b {
		return Value{kind: Bool, num: 1}
	}
	return Value{kind: Bool}
}

// ListValue makes a list Value.
func ListValue(l []string) Value { return Value{kind: List, list: l} }

// Kind is the value's kind.
func (v Value) Kind() Kind { return v.kind }

// Num is the value as a number: numbers as they are, bools as 1 or 0,
// anything else 0.
func (v Value) Num() float64 { return v.num }

// Str is the value of a string ("" for other kinds).
func (v Value) Str() string { return v.str }

// Bool reports whether a bool value is true.
func (v Value) Bool() bool { return v.kind == Bool && v.num != 0 }

// List is the value of a list.
func (v Value) List() []string { return v.list }

// Key is the value as a key for distinct counts, top-k and last-k:
// strings as they are, numbers in their shortest decimal form, bools as
// "true"/"false". Missing values and lists have no key ("").
func (v Value) Key() string {
	switch v.kind {
	case String:
		return v.str
	case Number:
		return strconv.FormatFloat(v.num, 'g', -1, 64)
	case Bool:
		return strconv.FormatBool(v.num != 0)
	}
	return ""
}

func (v Value) String() string {
	switch v.kind {
	case String:
		return strconv.Quote(v.str)
	case List:
		b, _ := json.Marshal(v.list)
		return string(b)
	case Missing:
		return "<missing>"
	}
	return v.Key()
}

// Event is what the feature engine reads of one input event: the topic it
// came from, its event time and its fields by JSON name. Field returns
// false for a field the event does not carry; the engine then uses the zero
// value of the field's type ("" or 0), as JSON's omitempty does.
//
// Events of the sources other than livestreams are enriched with their
// stream's seller_id and category (see Schema).
type Event interface {
	Source() string
	Time() time.Time
	Field(name string) (Value, bool)
}

// MapEvent adapts a decoded JSON object to Event, for offline JSONL and
// tests. Field converts string, float64, json.Number, int, int64, bool and
// []any/[]string values.
type MapEvent struct {
	Src    string
	At     time.Time
	Fields map[string]any
}

// Source is the event's topic.
func (e MapEvent) Source() string { return e.Src }

// Time is the event time.
func (e MapEvent) Time() time.Time { return e.At }

// Field returns a field by JSON name.
func (e MapEvent) Field(name string) (Value, bool) {
	x, ok := e.Fields[name]
	if !ok {
		return Value{}, false
	}
	return valueOf(x)
}

func valueOf(x any) (Value, bool) {
	switch v := x.(type) {
	case string:
		return StringValue(v), true
	case float64:
		return NumberValue(v), true
	case float32:
		return NumberValue(float64(v)), true
	case int:
		return NumberValue(float64(v)), true
	case int64:
		return NumberValue(float64(v)), true
	case uint64:
		return NumberValue(float64(v)), true
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return Value{}, false
		}
		return NumberValue(f), true
	case bool:
		return BoolValue(v), true
	case []string:
		return ListValue(v), true
	case []any:
		l := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return Value{}, false
			}
			l = append(l, s)
		}
		return ListValue(l), true
	case Value:
		return v, v.kind != Missing
	}
	return Value{}, false
}

// ParseJSONEvent decodes one JSON event of the given source (one line of a
// JSONL log) into a MapEvent. Its time is the event_time field (RFC 3339).
func ParseJSONEvent(source string, line []byte) (MapEvent, error) {
	var m map[string]any
	if err := fastjson.Unmarshal(line, &m); err != nil {
		return MapEvent{}, fmt.Errorf("%s event: %w", source, err)
	}
	ts, _ := m["event_time"].(string)
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return MapEvent{}, fmt.Errorf("%s event: event_time %q: want an RFC 3339 timestamp", source, ts)
	}
	// The time as the decoded event's field reads it (RFC 3339 with
	// nanoseconds, the offset kept), whatever the producer's formatting.
	m["event_time"] = at.Format(time.RFC3339Nano)
	return MapEvent{Src: source, At: at, Fields: m}, nil
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
