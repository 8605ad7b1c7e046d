package features

import (
	"errors"
	"fmt"
	"time"
)

// WindowKind says how a window moves.
type WindowKind uint8

// Window kinds.
const (
	// Sliding (hopping) windows of Size advance by Bucket (the hop): the
	// state is Size/Bucket tiles (+ those the lateness keeps), and the value
	// at time now covers every tile overlapping (now-Size, now] — so up to
	// one tile more than Size.
	Sliding WindowKind = iota
	// Tumbling windows are the fixed, aligned intervals [k·Size, (k+1)·Size)
	// (aligned to the Unix epoch, UTC). The value is the last complete
	// window's (Emit = Complete, the default) or the one in progress
	// (Emit = Current).
	Tumbling
	// AllTime aggregates every event since the entity's first (one tile).
	AllTime
)

func (k WindowKind) String() string {
	switch k {
	case Sliding:
		return "sliding"
	case Tumbling:
		return "tumbling"
	case AllTime:
		return "all_time"
	}
	return fmt.Sprintf("window(%d)", k)
}

// Emit says which tumbling window a value reads.
type Emit uint8

// Tumbling emit modes.
const (
	// Complete reads the last window that ended at or before now: a stable
	// value that changes once per Size (and, within the lateness, when a
	// late event of that window arrives).
	Complete Emit = iota
	// Current reads the window that contains now, still filling.
	Current
)

func (e Emit) String() string {
	if e == Current {
		return "current"
	}
	return "complete"
}

// Window is the time extent of a feature. The zero Kind is Sliding, so
// Window{Size: 5 * time.Minute, Bucket: 30 * time.Second} is a 5-minute
// window sliding every 30 seconds, as before.
type Window struct {
	Size   time.Duration `json:"size,omitempty"`
	Bucket time.Duration `json:"bucket,omitempty"` // sliding: the hop (tile); tumbling: Size (0 means Size); all-time: 0
	Kind   WindowKind    `json:"kind,omitempty"`
	Emit   Emit          `json:"emit,omitempty"` // tumbling only
}

// SlidingWindow is a window of size that advances by hop.
func SlidingWindow(size, hop time.Duration) Window { return Window{Size: size, Bucket: hop} }

// TumblingWindow is a tumbling window of size; emit picks the complete or
// the current window.
func TumblingWindow(size time.Duration, emit Emit) Window {
	return Window{Size: size, Bucket: size, Kind: Tumbling, Emit: emit}
}

// AllTimeWindow aggregates everything since the first event.
func AllTimeWindow() Window { return Window{Kind: AllTime} }

// Limits on windows: tiles bound the state per key.
const (
	// MaxTiles bounds Size/Bucket (+ the lateness's tiles) for the scalar
	// aggregations (count, sum, mean, min, max, last).
	MaxTiles = 1000
	// MaxSketchTiles bounds it for the aggregations whose tiles are
	// sketches or lists (approx_*, top_k, last_k_distinct).
	MaxSketchTiles = 100
	// MinBucket is the smallest tile.
	MinBucket = time.Second
)

func (w Window) width() time.Duration {
	switch w.Kind {
	case Tumbling:
		return w.Size
	case AllTime:
		return 0
	}
	return w.Bucket
}

func (w Window) String() string {
	switch w.Kind {
	case Tumbling:
		return fmt.Sprintf("tumbling %s (%s)", FormatDuration(w.Size), w.Emit)
	case AllTime:
		return "all_time"
	}
	return fmt.Sprintf("sliding %s every %s", FormatDuration(w.Size), FormatDuration(w.Bucket))
}

// Validate checks that the window is usable.
func (w Window) Validate() error {
	if errs := w.check(0, MaxTiles); len(errs) > 0 {
		return errors.New(errs[0].Msg)
	}
	return nil
}

// Tiles is the most tiles one key keeps for this window with the given
// lateness (what bounds its state).
func (w Window) Tiles(lateness time.Duration) int {
	switch w.Kind {
	case AllTime:
		return 1
	case Tumbling:
		if w.Size <= 0 {
			return 0
		}
		return 2 + int((lateness+w.Size-1)/w.Size)
	}
	if w.Bucket <= 0 {
		return 0
	}
	return int(w.Size/w.Bucket) + 1 + int((lateness+w.Bucket-1)/w.Bucket)
}

// check validates the window; errors carry paths under "window".
func (w Window) check(lateness time.Duration, maxTiles int) []*Error {
	var errs []*Error
	add := func(path, fix, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix})
	}
	switch w.Kind {
	case AllTime:
		if w.Size != 0 || w.Bucket != 0 {
			add("window", "remove size and hop", "an all_time window has no size or hop")
		}
		return errs
	case Tumbling:
		if w.Bucket != 0 && w.Bucket != w.Size {
			add("window.hop", "remove the hop, or use a sliding window", "a tumbling window has no hop (its tile is its size)")
		}
		if w.Size < MinBucket || w.Size%time.Millisecond != 0 {
			add("window.size", "e.g. size: 1h", "tumbling window size %v: want a whole number of milliseconds >= %v", w.Size, MinBucket)
		}
		if w.Emit > Current {
			add("window.emit", "complete or current", "unknown emit %d", w.Emit)
		}
		return errs
	case Sliding:
	default:
		add("window.type", "sliding, tumbling or all_time", "unknown window kind %d", w.Kind)
		return errs
	}
	if w.Emit != Complete {
		add("window.emit", "remove emit", "emit applies to tumbling windows only")
	}
	switch {
	case w.Bucket <= 0:
		add("window.hop", "e.g. hop: 30s", "a sliding window needs a hop (bucket) > 0")
	case w.Bucket < MinBucket || w.Bucket%time.Millisecond != 0:
		add("window.hop", "use a hop of at least 1s", "hop %v: want a whole number of milliseconds >= %v", w.Bucket, MinBucket)
	case w.Size < w.Bucket:
		add("window.size", fmt.Sprintf("make the size at least the hop (size: %s), or the hop smaller", FormatDuration(w.Bucket)),
			"window %s is smaller than its bucket (hop) %s", FormatDuration(w.Size), FormatDuration(w.Bucket))
	case w.Size%w.Bucket != 0:
		add("window.hop", fmt.Sprintf("pick a hop that divides %s, e.g. %s", FormatDuration(w.Size), FormatDuration(divisorHop(w.Size, w.Bucket))),
			"window %s is not a multiple of its hop %s", FormatDuration(w.Size), FormatDuration(w.Bucket))
	default:
		if n := w.Tiles(lateness); n > maxTiles {
			add("window.hop", fmt.Sprintf("use a hop of at least %s", FormatDuration(minHop(w.Size, lateness, maxTiles))),
				"window %s every %s with lateness %s keeps %d tiles per key; at most %d allowed for this aggregation",
				FormatDuration(w.Size), FormatDuration(w.Bucket), FormatDuration(lateness), n, maxTiles)
		}
	}
	return errs
}

// divisorHop is the largest divisor of size not above hop, on whole seconds.
func divisorHop(size, hop time.Duration) time.Duration {
	for h := hop.Truncate(time.Second); h >= time.Second; h -= time.Second {
		if size%h == 0 {
			return h
		}
	}
	return time.Second
}

func minHop(size, lateness time.Duration, maxTiles int) time.Duration {
	for _, h := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
		10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if size%h == 0 && (Window{Size: size, Bucket: h}).Tiles(lateness) <= maxTiles {
			return h
		}
	}
	return size
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
