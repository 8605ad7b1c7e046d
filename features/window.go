// Package features is the pure core of livefeed's features: windows of
// buckets (tiles) on event time, aggregations over them, and the feature
// definitions that say what to aggregate. It knows nothing of Kafka or Goka,
// so processors (online) and offline recomputation share it.
package features

import (
	"errors"
	"fmt"
	"time"
)

// Window is a sliding window of Size built from buckets of Bucket: memory per
// key is bounded by Size/Bucket+1 buckets whatever the event rate. A window's
// value at time now covers every bucket that overlaps (now-Size, now], so it
// may include up to one bucket more than Size.
type Window struct {
	Size   time.Duration `json:"size"`
	Bucket time.Duration `json:"bucket"`
}

// Validate checks that the window is usable.
func (w Window) Validate() error {
	switch {
	case w.Bucket <= 0:
		return errors.New("bucket must be > 0")
	case w.Size < w.Bucket:
		return fmt.Errorf("window %v is smaller than its bucket %v", w.Size, w.Bucket)
	case w.Size%w.Bucket != 0:
		return fmt.Errorf("window %v is not a multiple of its bucket %v", w.Size, w.Bucket)
	case w.Size/w.Bucket > 10000:
		return fmt.Errorf("window %v has more than 10000 buckets of %v", w.Size, w.Bucket)
	}
	return nil
}

// Bucket is one tile: the events whose time falls in [Start, Start+bucket).
type Bucket struct {
	Start int64   `json:"s"` // unix milliseconds
	Count int64   `json:"c"`
	Sum   float64 `json:"v,omitempty"`
}

// Series is the bucketed state of one feature for one entity, oldest bucket
// first. The zero value is empty and ready.
type Series struct {
	Buckets []Bucket `json:"b,omitempty"`
}

func (w Window) bucketStart(t time.Time) int64 {
	ms := t.UnixMilli()
	b := w.Bucket.Milliseconds()
	s := ms - ms%b
	if ms < 0 && ms%b != 0 {
		s -= b
	}
	return s
}

// Add records value v at event time t.
func (s *Series) Add(w Window, t time.Time, v float64) {
	start := w.bucketStart(t)
	n := len(s.Buckets)
	// Fast path: the newest bucket (events mostly arrive in order).
	if n > 0 && s.Buckets[n-1].Start == start {
		s.Buckets[n-1].Count++
		s.Buckets[n-1].Sum += v
		return
	}
	i := n
	for i > 0 && s.Buckets[i-1].Start > start {
		i--
	}
	if i > 0 && s.Buckets[i-1].Start == start {
		s.Buckets[i-1].Count++
		s.Buckets[i-1].Sum += v
		return
	}
	s.Buckets = append(s.Buckets, Bucket{})
	copy(s.Buckets[i+1:], s.Buckets[i:])
	s.Buckets[i] = Bucket{Start: start, Count: 1, Sum: v}
}

// Evict drops the buckets that can no longer be part of any window evaluated
// at or after horizon (typically watermark − lateness).
func (s *Series) Evict(w Window, horizon time.Time) {
	cut := horizon.Add(-w.Size).UnixMilli()
	b := w.Bucket.Milliseconds()
	i := 0
	for i < len(s.Buckets) && s.Buckets[i].Start+b <= cut {
		i++
	}
	if i > 0 {
		s.Buckets = append(s.Buckets[:0], s.Buckets[i:]...)
	}
}

// Totals returns the count and sum of the buckets overlapping (now-Size, now].
func (s *Series) Totals(w Window, now time.Time) (count int64, sum float64) {
	from := now.Add(-w.Size).UnixMilli()
	to := now.UnixMilli()
	b := w.Bucket.Milliseconds()
	for i := len(s.Buckets) - 1; i >= 0; i-- {
		bk := s.Buckets[i]
		if bk.Start > to {
			continue
		}
		if bk.Start+b <= from {
			break
		}
		count += bk.Count
		sum += bk.Sum
	}
	return count, sum
}
