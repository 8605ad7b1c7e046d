package serving

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/livefeed/livefeed/serving/index"
	"github.com/livefeed/livefeed/tables"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
)

// SnapshotConfig makes a serving replica restart in seconds: the
// livestream view keeps its table in goleveldb under Dir (so it resumes
// from its local offsets instead of replaying the table from the start),
// and the index is written to Dir/index.snap on graceful shutdown and every
// Every, and restored from it on start.
//
// On start, per partition, the snapshot's offset (the last table message
// the index had applied) is compared with the view storage's (the last
// message it stored):
//   - equal, or the snapshot ahead (the view re-applies messages the index
//     already has; upserts are idempotent): the snapshot is used as is and
//     the view's catch-up applies the rest;
//   - the snapshot behind (a periodic snapshot, then a crash): the
//     partition's index is reconciled from the local view storage: every
//     stored stream is upserted (a stream whose vector did not change costs
//     an attribute update, the graph is untouched) and indexed streams the
//     storage no longer has are deleted;
//   - no local view storage, or no usable snapshot: the index starts empty
//     and is built from the view's recovery, as without snapshots.
type SnapshotConfig struct {
	// Dir holds the view's goleveldb state and the index snapshot; empty
	// disables both (memory view, index built from Kafka on every start).
	Dir string
	// Every is the period of snapshots while running; 0: only on graceful
	// shutdown.
	Every time.Duration
	// Index tunes the index (and must match the snapshot's graph options,
	// else the snapshot is ignored).
	Index index.Options
}

func (c SnapshotConfig) path() string    { return filepath.Join(c.Dir, "index.snap") }
func (c SnapshotConfig) viewDir() string { return filepath.Join(c.Dir, "view") }
func (c SnapshotConfig) enabled() bool   { return c.Dir != "" }
func (c SnapshotConfig) builder() storage.Builder {
	return storage.DefaultBuilder(c.viewDir())
}

// RestoreStats says how the index was restored on start.
type RestoreStats struct {
	FromSnapshot bool    // the snapshot was loaded
	Reason       string  // why it was not, if it was not
	Reconciled   []int32 // partitions rebuilt or reconciled from the view storage
	Reset        []int32 // partitions without view storage: emptied, the view replays them
	Items        int
	Took         time.Duration // load + reconciliation
}

// newIndex returns the service's index: restored from the snapshot and the
// local view storage when SnapshotConfig allows, else empty.
func (s *Service) newIndex() (*index.Index, error) {
	sc := s.cfg.Snapshot
	parts := int(s.cfg.Broker.Partitions)
	if !sc.enabled() {
		return index.NewWithOptions(parts, s.cfg.Features, sc.Index), nil
	}
	start := time.Now()
	var st RestoreStats
	ix, info, err := index.LoadSnapshot(sc.path(), s.cfg.Features, sc.Index)
	if err == nil && len(info.Offsets) != parts {
		err = fmt.Errorf("snapshot of %d partitions, the table has %d", len(info.Offsets), parts)
	}
	if err != nil {
		st.Reason = err.Error()
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("index snapshot not used", "err", err)
		}
		ix = index.NewWithOptions(parts, s.cfg.Features, sc.Index)
		info.Offsets = nil
	} else {
		st.FromSnapshot = true
	}
	build := sc.builder()
	topic := string(s.cfg.LivestreamTable)
	for p := range int32(parts) {
		stored, err := viewOffset(sc.viewDir(), build, topic, p)
		if err != nil {
			return nil, fmt.Errorf("reading the livestream view's local offset, partition %d: %w", p, err)
		}
		snap := int64(offsetNotStored)
		if info.Offsets != nil {
			snap = info.Offsets[p]
		}
		switch {
		case stored == offsetNotStored:
			// The view replays this partition from Kafka: start it
			// empty (a stale stream whose tombstone was compacted away
			// would otherwise stay).
			if snap != offsetNotStored {
				for _, id := range ix.IDs(p) {
					ix.Delete(p, id)
				}
				st.Reset = append(st.Reset, p)
			}
		case snap >= stored:
			// Current (or ahead: the view re-applies what it has).
		default:
			if err := reconcile(ix, build, topic, p, stored); err != nil {
				return nil, fmt.Errorf("reconciling the index with the livestream view's local state, partition %d: %w", p, err)
			}
			st.Reconciled = append(st.Reconciled, p)
		}
	}
	s.dropMisplaced(ix)
	st.Items, st.Took = ix.Len(), time.Since(start)
	s.log.Info("index restored", "from_snapshot", st.FromSnapshot, "items", st.Items, "took", st.Took,
		"reconciled_partitions", st.Reconciled, "reset_partitions", st.Reset)
	s.restored = st
	return ix, nil
}

const offsetNotStored = -1

// viewOffset opens the partition's view storage just long enough to read
// its offset (the view opens it again when it runs); offsetNotStored if
// there is none.
func viewOffset(dir string, build storage.Builder, topic string, p int32) (int64, error) {
	// storage.DefaultBuilder keeps a partition in dir/topic.partition (and
	// would create it empty: look first).
	if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%s.%d", topic, p))); errors.Is(err, os.ErrNotExist) {
		return offsetNotStored, nil
	}
	st, err := build(topic, p)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if err := st.Open(); err != nil {
		return 0, err
	}
	return st.GetOffset(offsetNotStored)
}

// reconcile makes partition p of ix equal to the view storage's content.
func reconcile(ix *index.Index, build storage.Builder, topic string, p int32, stored int64) (err error) {
	st, err := build(topic, p)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	if err := st.Open(); err != nil {
		return err
	}
	it, err := st.Iterator()
	if err != nil {
		return err
	}
	defer it.Release()
	seen := map[string]struct{}{}
	for it.Next() {
		key := string(it.Key())
		val, err := it.Value()
		if err != nil {
			return err
		}
		ls, err := tables.DecodeLivestream(val)
		if err != nil {
			ix.Delete(p, key) // as onLivestream: an unreadable value stays out
			continue
		}
		seen[key] = struct{}{}
		ix.Upsert(p, index.ItemFrom(ls))
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, id := range ix.IDs(p) {
		if _, ok := seen[id]; !ok {
			ix.Delete(p, id)
		}
	}
	ix.MarkOffset(p, stored)
	return nil
}

// livestreamViewOptions are the extra options of the livestream view: its
// goleveldb storage when snapshots are on.
func (s *Service) livestreamViewOptions() []goka.ViewOption {
	if !s.cfg.Snapshot.enabled() {
		return nil
	}
	return []goka.ViewOption{goka.WithViewStorageBuilder(s.cfg.Snapshot.builder())}
}

// snapshotLoop writes a snapshot every SnapshotConfig.Every until ctx is
// done.
func (s *Service) snapshotLoop(ctx context.Context) error {
	sc := s.cfg.Snapshot
	if !sc.enabled() || sc.Every <= 0 {
		return nil
	}
	t := time.NewTicker(sc.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.SaveSnapshot(); err != nil {
				// A failed periodic snapshot must not stop serving.
				s.log.Error("periodic index snapshot failed", "err", err)
			}
		}
	}
}

// SaveSnapshot writes the index to SnapshotConfig.Dir (atomically). It is a
// no-op without a Dir.
func (s *Service) SaveSnapshot() error {
	sc := s.cfg.Snapshot
	if !sc.enabled() {
		return nil
	}
	if err := os.MkdirAll(sc.Dir, 0o755); err != nil {
		return fmt.Errorf("index snapshot: %w", err)
	}
	start := time.Now()
	info, err := s.index.SaveSnapshot(sc.path())
	if err != nil {
		return err
	}
	s.log.Info("index snapshot written", "items", info.Items, "bytes", info.Bytes, "took", time.Since(start))
	return nil
}

// Restored says how the index was restored on start.
func (s *Service) Restored() RestoreStats { return s.restored }
