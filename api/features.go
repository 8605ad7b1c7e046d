package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"
)

// LivestreamFeatures is the body of GET /v1/features/livestream/{id}.
type LivestreamFeatures struct {
	LivestreamID string    `json:"livestream_id"`
	SellerID     string    `json:"seller_id"`
	Title        string    `json:"title"`
	Category     string    `json:"category"`
	Tags         []string  `json:"tags,omitempty"`
	Language     string    `json:"language"`
	Status       Status    `json:"status"`
	LiveSince    time.Time `json:"live_since,omitzero"`
	ViewersNow   int       `json:"viewers_now"`
	// Features are the features as numbers (see Result.Features): a
	// feature whose value is null in Values is absent here.
	Features map[string]float64 `json:"features"`
	// Values are the features as typed values: numbers, null for an empty
	// window's mean/min/max/last/percentile, a string for the last of a
	// string field, lists for last_k_distinct, {key, count} lists for
	// top_k.
	Values         map[string]Value `json:"values"`
	Watermark      time.Time        `json:"watermark,omitzero"`
	EmbeddingModel string           `json:"embedding_model,omitempty"`
	Embedding      []float32        `json:"embedding,omitempty"`
	Events         int64            `json:"events"`
	LateDropped    int64            `json:"late_dropped"`
	// Warming lists the features still warming up: added by a new
	// definitions file, their backfill over the input topics' history has
	// not reached this stream yet, so their values cover only the events
	// since the processors restarted with them.
	Warming []string `json:"warming,omitempty"`
}

// UserFeatures is the body of GET /v1/features/user/{id}.
type UserFeatures struct {
	UserID     string             `json:"user_id"`
	Categories map[string]float64 `json:"categories"`
	Recent     []RecentStream     `json:"recent"`
	// Signals counts the user's engagement signals by kind (watch, chat,
	// bid, buy).
	Signals   map[string]int64 `json:"signals"`
	LastEvent time.Time        `json:"last_event,omitzero"`
	HasTaste  bool             `json:"has_taste"`
	// Taste is the unit taste vector, with ?embedding=true.
	Taste []float32 `json:"taste,omitempty"`
	// Features and Values as in LivestreamFeatures, when the server has
	// user features.
	Features map[string]float64 `json:"features,omitempty"`
	Values   map[string]Value   `json:"values,omitempty"`
}

// RecentStream is a stream a user recently engaged with.
type RecentStream struct {
	LivestreamID string    `json:"livestream_id"`
	Kind         string    `json:"kind"`
	Time         time.Time `json:"time"`
}

// EntityFeatures is the body of GET /v1/features/{entity}/{id} for entities
// other than livestream and user.
type EntityFeatures struct {
	Entity      string             `json:"entity"`
	ID          string             `json:"id"`
	Features    map[string]float64 `json:"features"`
	Values      map[string]Value   `json:"values"`
	Watermark   time.Time          `json:"watermark,omitzero"`
	Events      int64              `json:"events"`
	LateDropped int64              `json:"late_dropped"`
	// HasEmbedding says the entity has an embedding (a seller's: its
	// streams' content blended with its buyers' tastes); EmbeddingModel is
	// the model of its content part (empty for buyers only) and Embedding,
	// with ?embedding=true, the unit vector.
	HasEmbedding   bool      `json:"has_embedding,omitempty"`
	EmbeddingModel string    `json:"embedding_model,omitempty"`
	Embedding      []float32 `json:"embedding,omitempty"`
	// Warming lists the features still warming up (see
	// LivestreamFeatures.Warming).
	Warming []string `json:"warming,omitempty"`
}

// ValueKind is the JSON shape of a feature value.
type ValueKind uint8

// Value kinds.
const (
	Null ValueKind = iota // no value: the aggregate of an empty window
	Num                   // a number
	Text                  // a string (last of a string field)
	List                  // a list of strings (last_k_distinct); [] decodes as List
	Top                   // a list of {key, count} (top_k)
)

func (k ValueKind) String() string {
	return [...]string{"null", "number", "string", "list", "top"}[k]
}

// KeyCount is one entry of a top_k value.
type KeyCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// Value is one feature's typed value. The zero Value is null.
type Value struct {
	Kind   ValueKind
	Number float64    // Num
	Text   string     // Text
	Items  []string   // List
	Top    []KeyCount // Top
}

// Float is the value as Features gives it: the number, a list's length,
// and ok false for null and strings.
func (v Value) Float() (x float64, ok bool) {
	switch v.Kind {
	case Num:
		return v.Number, true
	case List:
		return float64(len(v.Items)), true
	case Top:
		return float64(len(v.Top)), true
	}
	return 0, false
}

// MarshalJSON writes null, a number, a string, a list of strings or a list
// of {key, count}.
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.Kind {
	case Num:
		if math.IsNaN(v.Number) || math.IsInf(v.Number, 0) {
			return []byte("null"), nil // JSON has no NaN or infinities
		}
		return strconv.AppendFloat(nil, v.Number, 'g', -1, 64), nil
	case Text:
		return json.Marshal(v.Text)
	case List:
		if v.Items == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(v.Items)
	case Top:
		if v.Top == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(v.Top)
	}
	return []byte("null"), nil
}

var errValue = errors.New("feature value: want null, a number, a string, a list of strings or a list of {key, count}")

// UnmarshalJSON reads what MarshalJSON writes; an empty list is a List.
func (v *Value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errValue
	}
	switch b[0] {
	case 'n':
		*v = Value{}
		return nil
	case '"':
		*v = Value{Kind: Text}
		return json.Unmarshal(b, &v.Text)
	case '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		if len(raw) > 0 && bytes.HasPrefix(bytes.TrimSpace(raw[0]), []byte("{")) {
			*v = Value{Kind: Top}
			return json.Unmarshal(b, &v.Top)
		}
		*v = Value{Kind: List, Items: []string{}}
		return json.Unmarshal(b, &v.Items)
	case 't', 'f', '{':
		return errValue
	}
	*v = Value{Kind: Num}
	return json.Unmarshal(b, &v.Number)
}
