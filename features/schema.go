package features

import (
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/livefeed/livefeed/events"
)

// FieldType is the type of a field in a source's schema.
type FieldType uint8

// Field types.
const (
	TypeString FieldType = iota + 1
	TypeNumber
	TypeBool
	TypeTime
	TypeList
)

func (t FieldType) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeNumber:
		return "number"
	case TypeBool:
		return "bool"
	case TypeTime:
		return "time"
	case TypeList:
		return "list"
	}
	return "?"
}

// EnrichedFields are added by the livestream processor to the events of
// every source but livestreams: the stream's seller and category at the
// time of the event.
var EnrichedFields = []string{"seller_id", "category"}

// Sources are the input topics a feature can read, with the event type
// whose JSON fields make the source's schema.
var sourceTypes = map[string]reflect.Type{
	events.TopicLivestreams: reflect.TypeFor[events.Livestream](),
	events.TopicViewing:     reflect.TypeFor[events.Viewing](),
	events.TopicChat:        reflect.TypeFor[events.Chat](),
	events.TopicAuctions:    reflect.TypeFor[events.Auction](),
}

var schemas = func() map[string]map[string]FieldType {
	out := map[string]map[string]FieldType{}
	for src, t := range sourceTypes {
		m := map[string]FieldType{}
		addFields(m, t)
		if src != events.TopicLivestreams {
			for _, f := range EnrichedFields {
				m[f] = TypeString
			}
		}
		out[src] = m
	}
	return out
}()

var timeType = reflect.TypeFor[time.Time]()

func addFields(m map[string]FieldType, t reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			addFields(m, f.Type)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		switch {
		case f.Type == timeType:
			m[name] = TypeTime
		case f.Type.Kind() == reflect.String:
			m[name] = TypeString
		case f.Type.Kind() == reflect.Bool:
			m[name] = TypeBool
		case f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Float64:
			m[name] = TypeNumber
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			m[name] = TypeList
		}
	}
}

// SourceNames lists the sources a feature can read, sorted.
func SourceNames() []string {
	out := make([]string, 0, len(schemas))
	for s := range schemas {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Schema returns the fields of a source's events by JSON name (derived from
// the events package's structs, plus EnrichedFields on sources other than
// livestreams), or nil for an unknown source.
func Schema(source string) map[string]FieldType {
	s, ok := schemas[source]
	if !ok {
		return nil
	}
	out := make(map[string]FieldType, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

func fieldNames(m map[string]FieldType) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Well-known entities and their key fields.
var entityKeys = map[string]string{
	"livestream": "livestream_id",
	"user":       "user_id",
	"seller":     "seller_id",
}

// KeyField is the event field that keys an entity: livestream_id, user_id
// and seller_id for the entities livestream, user and seller; any other
// entity is the name of a key field itself (e.g. auction_id, category).
func KeyField(entity string) string {
	if k, ok := entityKeys[entity]; ok {
		return k
	}
	return entity
}

// EntityKey is the key of ev for entity, or false when the event has no
// (or an empty) key field: such an event feeds no feature of that entity.
func EntityKey(entity string, ev Event) (string, bool) {
	v, ok := ev.Field(KeyField(entity))
	if !ok {
		return "", false
	}
	k := v.Key()
	return k, k != ""
}
