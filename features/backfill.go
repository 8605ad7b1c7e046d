package features

import (
	"encoding/binary"
	"slices"
	"sort"
	"time"

	"github.com/livefeed/livefeed/internal/wire"
)

// Backfill: when a definitions file adds features, the processors compute
// them from the first live offset on (the split) while a backfill replays
// the input topics' history before the split through a Set of the new
// features only, and merges each key's result into the key's state once
// (processors/backfill, README.md "Backfill"). The State keeps what that
// needs per key: which features are still warming up (their value covers
// only the events since the split) and which backfills were merged.

// flagBackfill marks an encoding with the backfill section.
const flagBackfill = 1

// Subset is the set of the named features of s (in s's order), and the
// names s does not define.
func (s *Set) Subset(names []string) (*Set, []string) {
	var defs []Definition
	var missing []string
	for _, n := range names {
		if _, ok := s.index[n]; !ok {
			missing = append(missing, n)
		}
	}
	for _, d := range s.defs {
		if slices.Contains(names, d.Name) {
			defs = append(defs, d)
		}
	}
	sub, err := Compile(defs, WithRetention(0))
	if err != nil {
		panic("features: subset of a valid set: " + err.Error())
	}
	return sub, missing
}

// Reach is how far back, from the instant it is read, the events of
// the set's values can lie: the longest window (two sizes for a tumbling
// window that emits the complete one) plus its lateness. ok is false when
// a feature reads all time (all_time, decayed): then every retained event
// counts. A backfill replays from now − Reach.
func (s *Set) Reach() (d time.Duration, ok bool) {
	for _, def := range s.defs {
		switch def.Window.Kind {
		case AllTime:
			return 0, false
		case Tumbling:
			d = max(d, 2*def.Window.Size+def.Lateness)
		default:
			d = max(d, def.Window.Size+def.Window.Bucket+def.Lateness)
		}
	}
	return d, true
}

// MarkWarming marks s's features as warming up in st for backfill id,
// unless st already merged it: a live event reached the key while the
// backfill of its partition is still replaying.
func (s *Set) MarkWarming(st *State, id string) {
	if st.Merged(id) {
		return
	}
	for _, d := range s.defs {
		if st.Warming[d.Name] == id {
			continue
		}
		if st.Warming == nil {
			st.Warming = map[string]string{}
		}
		st.Warming[d.Name] = id
	}
}

// Merged reports whether backfill id was merged into st.
func (st *State) Merged(id string) bool {
	_, ok := slices.BinarySearch(st.Backfilled, id)
	return ok
}

// ClearWarming removes the warming marks of the backfills keep rejects
// (those finished or abandoned), and reports whether any was removed.
func (st *State) ClearWarming(keep func(id string) bool) bool {
	n := len(st.Warming)
	for name, id := range st.Warming {
		if !keep(id) {
			delete(st.Warming, name)
		}
	}
	if len(st.Warming) == 0 {
		st.Warming = nil
	}
	return len(st.Warming) != n
}

// WarmingNames lists the features of st still warming up, sorted.
func (st *State) WarmingNames() []string {
	if len(st.Warming) == 0 {
		return nil
	}
	out := make([]string, 0, len(st.Warming))
	for n := range st.Warming {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// MergeBackfill merges backfill id's state src (s's features over the
// events before the split) into dst (see Merge) unless dst merged it
// already, records id, and clears the warming marks of id. It reports
// whether it merged: a backfill's record replayed after a restart is not
// counted twice.
func (s *Set) MergeBackfill(dst, src *State, id string) bool {
	if dst.Merged(id) {
		return false
	}
	s.Merge(dst, src)
	i, _ := slices.BinarySearch(dst.Backfilled, id)
	dst.Backfilled = slices.Insert(dst.Backfilled, i, id)
	dst.ClearWarming(func(w string) bool { return w != id })
	return true
}

func (st *State) appendBackfill(b []byte) []byte {
	var buf [16]string
	names := wire.AppendSortedKeys(buf[:0], st.Warming)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = wire.AppendString(b, n)
		b = wire.AppendString(b, st.Warming[n])
	}
	b = binary.AppendUvarint(b, uint64(len(st.Backfilled)))
	for _, id := range st.Backfilled {
		b = wire.AppendString(b, id)
	}
	return b
}

func (st *State) readBackfill(r *reader) {
	if n := r.count(2); n > 0 {
		st.Warming = make(map[string]string, n)
		for range n {
			name := r.name()
			st.Warming[name] = r.string()
		}
	}
	if n := r.count(1); n > 0 {
		st.Backfilled = make([]string, 0, n)
		for range n {
			st.Backfilled = append(st.Backfilled, r.string())
		}
		if !slices.IsSorted(st.Backfilled) {
			r.fail("backfill ids not sorted")
		}
	}
}
