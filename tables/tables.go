// Package tables holds the contracts of livefeed's state tables: the values
// the processors write to their goka group tables (changelog topics in Kafka)
// and that serving reads through goka views, with their codecs.
package tables

import (
	"fmt"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	fastjson "github.com/segmentio/encoding/json"
)

// Livestream is the state of one livestream (table of group "livestream").
type Livestream struct {
	LivestreamID string        `json:"livestream_id"`
	SellerID     string        `json:"seller_id,omitempty"`
	Title        string        `json:"title,omitempty"`
	Category     string        `json:"category,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	Language     string        `json:"language,omitempty"`
	Status       events.Status `json:"status,omitempty"`
	// MetadataTime is the event time of the metadata applied last; older
	// metadata events arriving later are ignored (last write wins by event time).
	MetadataTime time.Time `json:"metadata_time,omitzero"`
	LiveSince    time.Time `json:"live_since,omitzero"`
	EndedAt      time.Time `json:"ended_at,omitzero"`

	// Embedding is the L2-normalised content embedding of title, category and
	// tags, EmbeddingModel the model version that made it and EmbeddedText
	// the exact text embedded.
	Embedding      events.Vector `json:"embedding,omitempty"`
	EmbeddingModel string        `json:"embedding_model,omitempty"`
	EmbeddedText   string        `json:"embedded_text,omitempty"`
	// With asynchronous embedding (processors/embedding) Embedding is the
	// served vector: the content vector blended with the audience's (see
	// processors/livestream/vectors.go). Content is the newest vector the
	// embedding worker sent, for the text with hash ContentHash, made by
	// ContentModel for the metadata event of ContentTime; it is served only
	// while ContentHash matches the stream's current text.
	Content      events.Vector `json:"content,omitempty"`
	ContentHash  string        `json:"content_hash,omitempty"`
	ContentModel string        `json:"content_model,omitempty"`
	ContentTime  time.Time     `json:"content_time,omitzero"`
	// Audience is the decayed sum of the tastes of the stream's viewers.
	Audience models.DecayedSum `json:"audience,omitzero"`

	// Viewers maps each current viewer (by ViewerKey) to the event time
	// (unix ms) they were last seen (join or heartbeat); leave removes
	// them, silence expires them.
	Viewers ViewerSet `json:"viewers,omitempty"`
	// oldestSeen is a lower bound of the viewers' last-seen times (0:
	// unknown), in memory only: ExpireViewers scans the set only when a
	// viewer may have expired, not on every viewing event.
	oldestSeen int64
	// Features holds the windowed engagement metrics.
	Features features.State `json:"-"` // encoded in binary by Codec

	Events      int64 `json:"events"`
	LateDropped int64 `json:"late_dropped"`

	// Applied is, per input partition that fed this value
	// (pipeline.OriginKey), the offset of the newest record applied to it:
	// processors/pipeline.State skips a record at or below it (a replay
	// after a crash).
	Applied map[uint64]int64 `json:"-"` // encoded in binary by Codec
}

// ViewersNow is the number of concurrent viewers.
func (l *Livestream) ViewersNow() int { return len(l.Viewers) }

// IsLive reports whether the stream is live.
func (l *Livestream) IsLive() bool { return l.Status == events.StatusLive }

// RecentStream is a livestream a user engaged with recently.
type RecentStream struct {
	LivestreamID string            `json:"livestream_id"`
	Kind         events.SignalKind `json:"kind"`
	Time         time.Time         `json:"time"`
}

// MaxRecent bounds User.Recent.
const MaxRecent = 50

// User is the state of one user (table of group "user").
type User struct {
	UserID string `json:"user_id"`
	// Taste is the decayed weighted sum of the content embeddings of the
	// streams the user engaged with; its direction is the taste vector.
	Taste models.DecayedSum `json:"taste"`
	// Categories is the decayed engagement per category.
	Categories map[string]models.DecayedValue `json:"categories,omitempty"`
	// Recent are the streams engaged with most recently, newest first,
	// distinct by stream.
	Recent    []RecentStream              `json:"recent,omitempty"`
	Signals   map[events.SignalKind]int64 `json:"signals,omitempty"`
	LastEvent time.Time                   `json:"last_event,omitzero"`
	// Features holds the user entity's windowed features.
	Features features.State `json:"-"` // encoded in binary by Codec

	// Applied is, per input partition that fed this value
	// (pipeline.OriginKey), the offset of the newest record applied to it:
	// processors/pipeline.State skips a record at or below it (a replay
	// after a crash).
	Applied map[uint64]int64 `json:"-"` // encoded in binary by Codec
}

// JSONCodec is a goka codec for a table value type.
type JSONCodec[T any] struct{}

// Encode marshals a *T or T.
func (JSONCodec[T]) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case *T:
		return fastjson.Marshal(v)
	case T:
		return fastjson.Marshal(&v)
	default:
		var zero T
		return nil, fmt.Errorf("encoding %T: want %T", value, &zero)
	}
}

// Decode unmarshals into a new *T.
func (JSONCodec[T]) Decode(data []byte) (any, error) {
	v := new(T)
	if err := fastjson.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("decoding %T: %w", v, err)
	}
	return v, nil
}

// UserSignalCodec is the goka codec of the user-signals topic: it writes
// the binary form (events.UserSignal.AppendBinary) and reads binary or
// JSON.
type UserSignalCodec struct{}

// Encode encodes a *events.UserSignal.
func (UserSignalCodec) Encode(value any) ([]byte, error) {
	s, ok := value.(*events.UserSignal)
	if !ok || s == nil {
		return nil, fmt.Errorf("encoding %T: want *events.UserSignal", value)
	}
	return s.MarshalBinary()
}

// Decode decodes and validates a user signal.
func (UserSignalCodec) Decode(data []byte) (any, error) {
	s := new(events.UserSignal)
	if err := events.Decode(data, s); err != nil {
		return nil, fmt.Errorf("decoding a user signal: %w", err)
	}
	return s, nil
}

// Codecs of the three tables.
type (
	LivestreamCodec = Codec[Livestream, *Livestream]
	UserCodec       = Codec[User, *User]
	EntityCodec     = Codec[Entity, *Entity]
)

// DecodeLivestream decodes a livestream table value.
func DecodeLivestream(data []byte) (*Livestream, error) {
	v := new(Livestream)
	if err := Unmarshal(data, v); err != nil {
		return nil, err
	}
	return v, nil
}

// DecodeUser decodes a user table value.
func DecodeUser(data []byte) (*User, error) {
	v := new(User)
	if err := Unmarshal(data, v); err != nil {
		return nil, err
	}
	return v, nil
}

// Entity is the state of one entity other than a livestream (seller, or any
// key field), kept by its generic feature group: windowed features and, for
// sellers with embeddings on, the seller embedding.
type Entity struct {
	ID          string         `json:"id"`
	Features    features.State `json:"-"` // encoded in binary by Codec
	Events      int64          `json:"events"`
	LateDropped int64          `json:"late_dropped"`

	// The seller embedding (processors/entity Seller): Content is the
	// decayed sum of the content vectors of the seller's streams (made by
	// ContentModel), Buyers the decayed sum of their buyers' tastes, and
	// Embedding their blend (unit length), EmbeddingModel the model of its
	// content part (empty for buyers only).
	Content        models.DecayedSum `json:"content,omitzero"`
	ContentModel   string            `json:"content_model,omitempty"`
	Buyers         models.DecayedSum `json:"buyers,omitzero"`
	Embedding      events.Vector     `json:"embedding,omitempty"`
	EmbeddingModel string            `json:"embedding_model,omitempty"`

	// Applied is, per input partition that fed this value
	// (pipeline.OriginKey), the offset of the newest record applied to it:
	// processors/pipeline.State skips a record at or below it (a replay
	// after a crash).
	Applied map[uint64]int64 `json:"-"` // encoded in binary by Codec
}

// AppliedOffsets make the table values pipeline.Deduplicated.
func (l *Livestream) AppliedOffsets() *map[uint64]int64 { return &l.Applied }
func (u *User) AppliedOffsets() *map[uint64]int64       { return &u.Applied }
func (e *Entity) AppliedOffsets() *map[uint64]int64     { return &e.Applied }
