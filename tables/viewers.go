package tables

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/livefeed/livefeed/internal/wire"
)

// ViewerSet is a stream's current viewers: ViewerKey(user id) → the event
// time (unix ms) they were last seen. Keys are 64-bit hashes, not the ids:
// a busy stream has thousands of viewers, and a map of strings was scanned
// by the garbage collector and written id by id on every flush; a map of
// numbers is neither. Two viewers of one stream collide with probability
// ~n²/2⁶⁵ (about 10⁻¹³ at 2,000 viewers); they would count once.
type ViewerSet map[uint64]int64

// ViewerKey is the key of a user in a ViewerSet: 64-bit FNV-1a of the id.
func ViewerKey(userID string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(userID); i++ {
		h ^= uint64(userID[i])
		h *= 1099511628211
	}
	return h
}

// SeeViewer records that the viewer with key k was seen at ms (unix ms),
// keeping the newest time.
func (l *Livestream) SeeViewer(k uint64, ms int64) {
	if l.Viewers == nil {
		l.Viewers = ViewerSet{}
	}
	if ms > l.Viewers[k] {
		l.Viewers[k] = ms
	}
	if ms < l.oldestSeen {
		l.oldestSeen = ms // a late event: the bound moves back
	}
}

// ExpireViewers removes the viewers last seen before horizon (unix ms).
// It scans the set only when the oldest viewer may be older than horizon:
// a lower bound of the last-seen times is kept from the previous scan
// (heartbeats only move times forward), so a busy stream's set is scanned
// about once per viewer timeout instead of on every viewing event.
func (l *Livestream) ExpireViewers(horizon int64) {
	if l.oldestSeen != 0 && horizon <= l.oldestSeen {
		return
	}
	oldest := int64(0)
	for k, seen := range l.Viewers {
		if seen < horizon {
			delete(l.Viewers, k)
			continue
		}
		if oldest == 0 || seen < oldest {
			oldest = seen
		}
	}
	l.oldestSeen = oldest
}

// appendViewers appends the set: count, then per viewer its key (8
// bytes, little-endian) and its last-seen time, the first as a varint and
// the others as varints of their difference from the first (a few bytes:
// viewers expire within minutes). Map order: one set may encode to other
// bytes each time.
func appendViewers(b []byte, v ViewerSet) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	var base int64
	first := true
	for k, seen := range v {
		b = binary.LittleEndian.AppendUint64(b, k)
		if first {
			base, first = seen, false
			b = binary.AppendVarint(b, seen)
			continue
		}
		b = binary.AppendVarint(b, seen-base)
	}
	return b
}

// readViewers reads appendViewers' form.
func readViewers(r *wire.Reader) ViewerSet {
	n := r.Count(9) // a viewer takes at least 9 bytes
	if n == 0 {
		return nil
	}
	v := make(ViewerSet, n)
	var base int64
	for i := range n {
		k := r.Uint64()
		if i == 0 {
			base = r.Varint()
			v[k] = base
			continue
		}
		v[k] = base + r.Varint()
	}
	return v
}

// readViewersV3 reads codec version 3's form: count, then per viewer its
// id (string) and last-seen time (varint).
func readViewersV3(r *wire.Reader) ViewerSet {
	n := r.Count(2) // a viewer takes at least 2 bytes
	if n == 0 {
		return nil
	}
	v := make(ViewerSet, n)
	for range n {
		k := ViewerKey(r.String())
		v[k] = r.Varint()
	}
	return v
}

// MarshalJSON writes the set as an object of "#<key in hex>": time.
func (v ViewerSet) MarshalJSON() ([]byte, error) {
	m := make(map[string]int64, len(v))
	for k, seen := range v {
		m["#"+strconv.FormatUint(k, 16)] = seen
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads MarshalJSON's form, or the user ids of the JSON
// fields written before (codec versions 1 and 2).
func (v *ViewerSet) UnmarshalJSON(data []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	if m == nil {
		*v = nil
		return nil
	}
	out := make(ViewerSet, len(m))
	for id, seen := range m {
		if hex, ok := strings.CutPrefix(id, "#"); ok {
			k, err := strconv.ParseUint(hex, 16, 64)
			if err != nil {
				return fmt.Errorf("viewer key %q: %w", id, err)
			}
			out[k] = seen
			continue
		}
		out[ViewerKey(id)] = seen
	}
	*v = out
	return nil
}
