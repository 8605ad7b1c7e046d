package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Size limits, checked by Decode before any JSON is parsed.
const (
	// MaxEventBytes bounds an input event (topics livestreams, viewing,
	// chat, auctions). The largest valid event is a livestream with a
	// 512-byte title and 32 tags of 64 bytes, or a chat with 2000 bytes of
	// text: a few KiB even with every character escaped as \uXXXX. 64 KiB
	// leaves room for fields a producer adds and we ignore, and still keeps
	// one hostile record from costing the processor more than a few
	// allocations of its size.
	MaxEventBytes = 64 << 10
	// MaxRecordBytes bounds a record written by livefeed itself (Enriched,
	// which wraps an input event of up to MaxEventBytes; UserSignal,
	// LivestreamVector and AudienceSignal, which carry vectors of up to
	// MaxVectorDim floats, up to ~60 KiB as a JSON array). It is also the
	// most of a value that a dead letter keeps (pipeline.DeadLetter): a
	// longer value is truncated to its first MaxRecordBytes bytes, well
	// under Kafka's default max.message.bytes (1 MiB) and the producers'
	// default limits.
	MaxRecordBytes = 256 << 10
)

// DefaultFutureSkew is how far ahead of the processor's wall clock an event
// time may be before the event is dead-lettered as "future".
const DefaultFutureSkew = time.Hour

// Errors of hostile input beyond malformed and invalid events. Each has its
// own dead-letter reason (pipeline.Reason).
var (
	// ErrOversized: the value is longer than the limit for its kind.
	ErrOversized = errors.New("oversized event")
	// ErrFuture: the event time is further ahead of the wall clock than the
	// allowed skew. Accepted, it would advance its key's watermark and make
	// every real event after it late.
	ErrFuture = errors.New("event time in the future")
	// ErrAncient: the event time is older than its key's watermark for its
	// source minus the longest window plus its lateness — no feature can take
	// it any more.
	ErrAncient = errors.New("event time older than every window")
)

// internal is implemented by the records livefeed writes itself; they may
// be up to MaxRecordBytes long.
type internal interface{ internalRecord() }

func (*Enriched) internalRecord()         {}
func (*UserSignal) internalRecord()       {}
func (*LivestreamVector) internalRecord() {}
func (*AudienceSignal) internalRecord()   {}

// MaxBytes is the size limit Decode applies to v: MaxRecordBytes for the
// records livefeed writes, MaxEventBytes for everything else.
func MaxBytes(v Validator) int {
	if _, ok := v.(internal); ok {
		return MaxRecordBytes
	}
	return MaxEventBytes
}

// CheckSize fails with ErrOversized if data is longer than limit.
func CheckSize(data []byte, limit int) error {
	if len(data) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrOversized, len(data), limit)
	}
	return nil
}

// CheckFuture fails with ErrFuture if t is more than skew after now (the
// processor's wall clock). skew <= 0 turns the check off.
func CheckFuture(t, now time.Time, skew time.Duration) error {
	if skew > 0 && t.Sub(now) > skew {
		return fmt.Errorf("%w: event_time %s is %s ahead of the processor's clock (allowed skew %s)",
			ErrFuture, t.UTC().Format(time.RFC3339Nano), t.Sub(now).Round(time.Second), skew)
	}
	return nil
}

// CheckAncient fails with ErrAncient if t is older than watermark minus
// retention, where watermark is the newest event time of the event's source
// seen for its key and retention is the longest window plus its lateness.
// It judges by event time only, never by the wall clock, so a replay of the
// same records decides the same. A zero watermark or a retention <= 0 (no
// windowed feature) turns the check off.
func CheckAncient(t, watermark time.Time, retention time.Duration) error {
	if retention <= 0 || watermark.IsZero() {
		return nil
	}
	if horizon := watermark.Add(-retention); t.Before(horizon) {
		return fmt.Errorf("%w: event_time %s is %s before its key's watermark %s (longest window + lateness %s)",
			ErrAncient, t.UTC().Format(time.RFC3339Nano), watermark.Sub(t).Round(time.Second),
			watermark.UTC().Format(time.RFC3339Nano), retention)
	}
	return nil
}

// Source is the input topic (without prefix) of an input event:
// "livestreams", "viewing", "chat" or "auctions"; "" for anything else.
func Source(v any) string {
	switch v.(type) {
	case *Livestream:
		return TopicLivestreams
	case *Viewing:
		return TopicViewing
	case *Chat:
		return TopicChat
	case *Auction:
		return TopicAuctions
	}
	return ""
}

// fieldError finds the first field of v (a pointer to a struct) whose JSON
// value in data does not decode into the field's type, and names it. The
// field name comes from v's struct tags, never from the input, so it is
// safe as a metric label. nil if data is not an object or every known
// field decodes (the fault is elsewhere).
func fieldError(data []byte, v any) *ValidationError {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return nil
	}
	rt := reflect.TypeOf(v)
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return nil
	}
	var found *ValidationError
	walkFields(rt.Elem(), func(name string, ft reflect.Type) bool {
		raw, ok := lookup(obj, name)
		if !ok {
			return true
		}
		if err := json.Unmarshal(raw, reflect.New(ft).Interface()); err != nil {
			found = &ValidationError{Field: name, Reason: "wrong type: want " + kindOf(ft) + ", got " + jsonKind(raw)}
			if !strings.Contains(err.Error(), "cannot unmarshal") {
				found.Reason += " (" + err.Error() + ")"
			}
			return false
		}
		return true
	})
	return found
}

// lookup finds a key as encoding/json does: exact, else case-insensitive.
func lookup(obj map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if raw, ok := obj[name]; ok {
		return raw, true
	}
	for k, raw := range obj {
		if strings.EqualFold(k, name) {
			return raw, true
		}
	}
	return nil, false
}

// walkFields calls fn with the JSON name and type of every exported field
// of t, embedded structs flattened, until fn returns false.
func walkFields(t reflect.Type, fn func(name string, ft reflect.Type) bool) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if !walkFields(f.Type, fn) {
				return false
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !fn(name, f.Type) {
			return false
		}
	}
	return true
}

func kindOf(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "an RFC 3339 timestamp string"
	}
	if t == reflect.TypeFor[Vector]() {
		return "a base64 string or an array of numbers"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int64, reflect.Int32:
		return "a number"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a JSON value"
		}
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(kindOf(t.Elem()), "a "), "an ") + "s"
	}
	return "a " + t.Kind().String()
}

func jsonKind(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return "nothing"
	}
	switch s[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
