package events

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Vector is an embedding on the wire. It encodes to JSON as a base64 string
// of little-endian float32s — exact, and an order of magnitude cheaper to
// encode and decode than a JSON array of decimals (state tables re-encode
// a stream's vector on every event) — and decodes from either that string or
// a JSON array of numbers.
type Vector []float32

// MarshalJSON encodes v as a base64 string.
func (v Vector) MarshalJSON() ([]byte, error) {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(raw))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, raw)
	return append(out, '"'), nil
}

// UnmarshalJSON decodes a base64 string or an array of numbers.
func (v *Vector) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '[' {
		var xs []float32
		if err := json.Unmarshal(data, &xs); err != nil {
			return fmt.Errorf("decoding vector: %w", err)
		}
		*v = xs
		return nil
	}
	var b64 []byte
	if n := len(data); n >= 2 && data[0] == '"' && data[n-1] == '"' && !bytes.ContainsAny(data[1:n-1], "\\\"") {
		b64 = data[1 : n-1] // the usual case: a plain string, no escapes to undo
	} else {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("decoding vector: want a base64 string or an array: %w", err)
		}
		b64 = []byte(s)
	}
	raw := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Decode(raw, b64)
	if err != nil {
		return fmt.Errorf("decoding vector: %w", err)
	}
	raw = raw[:n]
	if len(raw)%4 != 0 {
		return fmt.Errorf("decoding vector: %d bytes is not a whole number of float32s", len(raw))
	}
	out := make(Vector, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	*v = out
	return nil
}

// Topics of the embedding path (before any deployment prefix).
const (
	// TopicLivestreamVectors carries content vectors made by the embedding
	// worker, keyed by livestream_id and co-partitioned with the inputs.
	TopicLivestreamVectors = "livestream-vectors"
	// TopicAudienceSignals carries viewers' tastes, emitted by the user
	// group when a user starts watching a stream, keyed by livestream_id.
	TopicAudienceSignals = "audience-signals"
)

// MaxVectorDim bounds the length of a vector on the wire.
const MaxVectorDim = 4096

// ContentText is the text of a stream that its content embedding encodes:
// title, category (dashes as spaces) and tags.
func ContentText(title, category string, tags []string) string {
	var b strings.Builder
	b.WriteString(title)
	b.WriteString(". ")
	b.WriteString(strings.ReplaceAll(category, "-", " "))
	if len(tags) > 0 {
		b.WriteString(". ")
		b.WriteString(strings.Join(tags, " "))
	}
	return b.String()
}

// TextHash identifies an embedded text: the first 16 bytes of its SHA-256,
// in hex. A vector is served only while its text hash equals the hash of
// the stream's current text.
func TextHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:16])
}

// LivestreamVector is a stream's content vector (topic livestream-vectors),
// produced by the embedding worker for a metadata event.
type LivestreamVector struct {
	LivestreamID string `json:"livestream_id"`
	// TextHash is TextHash of the embedded text (ContentText of the event).
	TextHash string `json:"text_hash"`
	// Model is the version of the model that made the vector
	// (models.Embedder.Version: name and a digest of its files).
	Model  string `json:"model"`
	Vector Vector `json:"vector"`
	// EventTime is the event time of the metadata event embedded: of two
	// vectors for a stream, the older one never replaces the newer.
	EventTime time.Time `json:"event_time"`
}

// Validate checks a vector record.
func (v *LivestreamVector) Validate() error {
	if err := checkID("livestream_id", v.LivestreamID); err != nil {
		return err
	}
	if len(v.TextHash) != 32 {
		return invalid("text_hash", "want 32 hex digits, got %d characters", len(v.TextHash))
	}
	if v.Model == "" {
		return invalid("model", "required")
	}
	if err := checkVector("vector", v.Vector); err != nil {
		return err
	}
	if v.EventTime.IsZero() {
		return invalid("event_time", "required")
	}
	return nil
}

// AudienceSignal is a viewer's taste sent to the stream they started
// watching (topic audience-signals, keyed by livestream_id); the livestream
// group folds it into the stream's audience embedding.
type AudienceSignal struct {
	EventID      string    `json:"event_id"`
	EventTime    time.Time `json:"event_time"`
	LivestreamID string    `json:"livestream_id"`
	UserID       string    `json:"user_id"`
	// Taste is the viewer's unit taste vector.
	Taste Vector `json:"taste"`
}

// Validate checks an audience signal.
func (s *AudienceSignal) Validate() error {
	if err := checkID("event_id", s.EventID); err != nil {
		return err
	}
	if s.EventTime.IsZero() {
		return invalid("event_time", "required")
	}
	if err := checkID("livestream_id", s.LivestreamID); err != nil {
		return err
	}
	if err := checkID("user_id", s.UserID); err != nil {
		return err
	}
	return checkVector("taste", s.Taste)
}

func checkVector(field string, v Vector) error {
	if len(v) == 0 {
		return invalid(field, "required")
	}
	if len(v) > MaxVectorDim {
		return invalid(field, "longer than %d", MaxVectorDim)
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return invalid(fmt.Sprintf("%s[%d]", field, i), "not a finite number")
		}
	}
	return nil
}
