package models

import (
	"math"
	"time"

	"github.com/livefeed/livefeed/events"
)

// Dot is the inner product of two vectors of equal length.
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		return 0
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// Normalize scales v to unit length in place and returns it; a zero vector
// stays zero.
func Normalize(v []float32) []float32 {
	n := float32(math.Sqrt(float64(Dot(v, v))))
	if n == 0 {
		return v
	}
	for i := range v {
		v[i] /= n
	}
	return v
}

// Blend mixes a content vector with a behavioural one (an audience's or
// buyers' tastes): normalize((1−w)·content + w·behaviour), a new slice.
// Cold start: without a behaviour vector (or with one of another
// dimension) or with w ≤ 0 it is content; without content it is behaviour;
// with neither, nil. Inputs are unit vectors and are not modified.
func Blend(content, behaviour []float32, w float32) []float32 {
	if len(content) > 0 && len(behaviour) != len(content) {
		behaviour = nil // another model's dimension
	}
	switch {
	case len(content) > 0 && len(behaviour) > 0 && w > 0:
		v := make([]float32, len(content))
		for i := range v {
			v[i] = (1-w)*content[i] + w*behaviour[i]
		}
		return Normalize(v)
	case len(content) > 0:
		return content
	default:
		return behaviour
	}
}

// Normalized returns a unit-length copy of v.
func Normalized(v []float32) []float32 {
	return Normalize(append([]float32(nil), v...))
}

// DecayedSum is an exponentially decayed weighted sum of vectors, the
// building block of behavioural embeddings: at its reference time T it holds
// Σ wᵢ·vᵢ·2^(−(T−tᵢ)/halfLife). Adding is commutative, so replaying the same
// signals in another order gives the same sum (up to float rounding).
type DecayedSum struct {
	Vector events.Vector `json:"v,omitempty"`
	Weight float64       `json:"w"` // Σ decayed weights
	Time   time.Time     `json:"t"` // reference time T
}

func decay(dt time.Duration, halfLife time.Duration) float64 {
	if halfLife <= 0 {
		return 1
	}
	return math.Exp2(-dt.Seconds() / halfLife.Seconds())
}

// Add folds w·v observed at time t into the sum.
func (d *DecayedSum) Add(v []float32, w float64, t time.Time, halfLife time.Duration) {
	if len(v) == 0 || w == 0 {
		return
	}
	if len(d.Vector) != len(v) {
		// First vector, or the model's dimension changed: start over.
		d.Vector = make([]float32, len(v))
		d.Weight = 0
		d.Time = t
	}
	if t.After(d.Time) {
		f := float32(decay(t.Sub(d.Time), halfLife))
		for i := range d.Vector {
			d.Vector[i] *= f
		}
		d.Weight *= float64(f)
		d.Time = t
	} else {
		w *= decay(d.Time.Sub(t), halfLife)
	}
	fw := float32(w)
	for i, x := range v {
		d.Vector[i] += fw * x
	}
	d.Weight += w
}

// Unit returns the sum's direction (unit length), nil if empty.
func (d *DecayedSum) Unit() []float32 {
	if len(d.Vector) == 0 || d.Weight == 0 {
		return nil
	}
	return Normalized(d.Vector)
}

// DecayedValue is an exponentially decayed weighted scalar sum.
type DecayedValue struct {
	Value float64   `json:"v"`
	Time  time.Time `json:"t"`
}

// Add folds w observed at time t.
func (d *DecayedValue) Add(w float64, t time.Time, halfLife time.Duration) {
	if d.Time.IsZero() {
		d.Time = t
	}
	if t.After(d.Time) {
		d.Value *= decay(t.Sub(d.Time), halfLife)
		d.Time = t
	} else {
		w *= decay(d.Time.Sub(t), halfLife)
	}
	d.Value += w
}

// At is the value decayed to time now.
func (d DecayedValue) At(now time.Time, halfLife time.Duration) float64 {
	if now.After(d.Time) {
		return d.Value * decay(now.Sub(d.Time), halfLife)
	}
	return d.Value
}
