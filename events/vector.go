package events

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
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
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("decoding vector: want a base64 string or an array: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("decoding vector: %w", err)
	}
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
