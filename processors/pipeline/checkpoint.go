package pipeline

import (
	"errors"
	"sync"
	"time"

	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/syndtr/goleveldb/leveldb"
)

// tableStorage is goka's storage of one table partition, with its
// goleveldb at hand for batched writes (nil for another storage, written
// key by key); it forgets itself when goka closes it.
//
// The local store is a checkpoint of the changelog, not a second copy of
// every flush. A flush's values are staged here (the newest encoded value
// per key, copied) and written to the local store together every
// CheckpointInterval, or when CheckpointBytes are staged, with the newest
// changelog offset acknowledged by then. A hot stream's value, written to
// the changelog ten times a second, reaches goleveldb once per checkpoint
// instead of ten times a second, and goleveldb's journal, memtable flushes
// and compactions shrink with it.
//
// Recovery is unchanged: goka resumes the changelog from the stored offset,
// and every value the offset covers is in the store (a value is staged
// before its record is produced, so before its offset can be stored). A
// crash loses at most the staged values, whose changelog records recovery
// reads again (or, if they were never acknowledged, whose input messages
// were never committed and are processed again). Reads see staged values
// first; iterators and Close write the checkpoint before they go to the
// store.
type tableStorage struct {
	storage.Storage
	db      *leveldb.DB
	release func()
	opts    checkpointOptions

	mu sync.Mutex
	// staged are the values since the last checkpoint (del: a tombstone),
	// in checkpointing while a checkpoint writes them; staged is owned by
	// the writer goroutine's stage calls and the checkpoint that swaps it.
	staged, checkpointing map[string]staged
	stagedBytes           int64
	// spare are the buffers of the last checkpoint, reused by the next
	// stage of the same key (a hot key's value has about the same size
	// every time); free are the rest of them, for new keys. Reuse keeps
	// the staging from allocating every value anew each interval, which
	// drove the collector.
	spare map[string][]byte
	free  [][]byte
	// acked is the newest changelog offset acknowledged (−1: none since the
	// last checkpoint stored one).
	acked int64
	last  time.Time
	err   error // the last checkpoint's failure, returned by the next stage

	cpMu sync.Mutex // one checkpoint at a time
}

type staged struct {
	v   []byte
	del bool
}

// checkpointOptions are a State's StateOptions for its table storages.
type checkpointOptions struct {
	interval time.Duration // < 0: checkpoint every stage
	bytes    int64
	pending  prometheus.Gauge
	batch    *sharedBatch // nil: a batch of its own
}

// sharedBatch is one goleveldb batch for the checkpoints of a State's
// partitions, which the writer mostly writes one at a time: a batch keeps
// the capacity of the largest checkpoint it held.
type sharedBatch struct {
	mu sync.Mutex
	b  leveldb.Batch
}

// newTableStorage wraps a table partition's store. A store that is not
// goleveldb (goka's tester's, or any storage given to WrapOptions) is
// written at every flush: the checkpoint saves goleveldb's journal and
// compactions, and such a store is read directly (the tester's
// TableValue) by code that expects every acknowledged flush in it.
func newTableStorage(st storage.Storage, db *leveldb.DB, opts checkpointOptions) *tableStorage {
	if db == nil {
		opts.interval = -1
	}
	if opts.batch == nil {
		opts.batch = &sharedBatch{}
	}
	return &tableStorage{Storage: st, db: db, opts: opts, staged: map[string]staged{}, acked: -1, last: time.Now()}
}

// stage takes a flush's values (nil: a delete) for the next checkpoint,
// copying them, and writes the checkpoint when it is due. It fails when
// the last checkpoint failed (the flush then fails, which stops the
// processor, as a failed table write does).
func (t *tableStorage) stage(keys []string, values [][]byte) error {
	t.mu.Lock()
	if err := t.err; err != nil {
		t.mu.Unlock()
		return err
	}
	var grown int64
	for i, key := range keys {
		old := t.staged[key]
		if values[i] == nil {
			grown -= int64(len(old.v))
			t.staged[key] = staged{del: true}
			continue
		}
		// Buffers are reused: Get hands out copies, so nothing else holds
		// them.
		buf := old.v
		if buf == nil {
			buf = t.reuse(key)
		}
		v := append(buf[:0], values[i]...)
		grown += int64(len(v) - len(old.v))
		t.staged[key] = staged{v: v}
	}
	t.stagedBytes += grown
	due := t.opts.interval < 0 || t.stagedBytes >= t.opts.bytes || time.Since(t.last) >= t.opts.interval
	t.mu.Unlock()
	t.opts.pending.Add(float64(grown))
	if due {
		return t.checkpoint()
	}
	return nil
}

// reuse is a buffer for key's first stage since the checkpoint: the one
// key had at the last checkpoint, else a free one. t.mu is held.
func (t *tableStorage) reuse(key string) []byte {
	if b, ok := t.spare[key]; ok {
		delete(t.spare, key)
		return b
	}
	if n := len(t.free); n > 0 {
		b := t.free[n-1]
		t.free = t.free[:n-1]
		return b
	}
	return nil
}

// recycle makes the buffers of a written checkpoint the spare ones (the
// previous spares left unused become free buffers, up to the byte bound;
// the rest go to the collector). t.mu is held.
func (t *tableStorage) recycle(vals map[string]staged) {
	capacity := int64(0)
	for _, b := range t.free {
		capacity += int64(cap(b))
	}
	for _, b := range t.spare {
		if capacity+int64(cap(b)) > t.opts.bytes {
			break
		}
		t.free = append(t.free, b)
		capacity += int64(cap(b))
	}
	spare := make(map[string][]byte, len(vals))
	for k, v := range vals {
		if v.v != nil {
			spare[k] = v.v
		}
	}
	t.spare = spare
}

// ackedOffset records that the changelog acknowledged the records up to
// offset; the next checkpoint stores it with the values.
func (t *tableStorage) ackedOffset(offset int64) {
	t.mu.Lock()
	t.acked = max(t.acked, offset)
	t.mu.Unlock()
}

// due reports whether a checkpoint is due by time (for partitions gone
// quiet, checked by State.Run).
func (t *tableStorage) due() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return (len(t.staged) > 0 || t.acked >= 0) && time.Since(t.last) >= t.opts.interval
}

// checkpoint writes the staged values, then the newest acknowledged
// offset, to the local store.
func (t *tableStorage) checkpoint() error {
	t.cpMu.Lock()
	defer t.cpMu.Unlock()
	t.mu.Lock()
	vals, offset, n := t.staged, t.acked, t.stagedBytes
	if len(vals) == 0 && offset < 0 {
		t.last = time.Now()
		t.mu.Unlock()
		return nil
	}
	t.checkpointing, t.staged, t.stagedBytes, t.acked, t.last = vals, make(map[string]staged, len(vals)), 0, -1, time.Now()
	t.mu.Unlock()

	err := t.write(vals)
	if err == nil && offset >= 0 {
		err = t.Storage.SetOffset(offset)
	}
	t.mu.Lock()
	t.checkpointing = nil
	if err == nil {
		t.recycle(vals)
		t.mu.Unlock()
		t.opts.pending.Sub(float64(n))
		return nil
	}
	// Keep what was not written and not staged anew since, and fail the
	// next flush; the values staged anew since replace theirs.
	var superseded int64
	for k, v := range vals {
		if _, newer := t.staged[k]; newer {
			superseded += int64(len(v.v))
			continue
		}
		t.staged[k] = v
		t.stagedBytes += int64(len(v.v))
	}
	t.acked = max(t.acked, offset)
	t.err = err
	t.mu.Unlock()
	t.opts.pending.Sub(float64(superseded))
	return err
}

func (t *tableStorage) write(vals map[string]staged) error {
	if len(vals) == 0 {
		return nil
	}
	if t.db == nil {
		for key, v := range vals {
			var err error
			if v.del {
				err = t.Storage.Delete(key)
			} else {
				err = t.Storage.Set(key, v.v)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	b := t.opts.batch
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
	for key, v := range vals {
		if v.del {
			b.b.Delete([]byte(key))
		} else {
			b.b.Put([]byte(key), v.v)
		}
	}
	return t.db.Write(&b.b, nil)
}

// lookup finds key among the values not yet in the store. t.mu is held.
func (t *tableStorage) lookup(key string) (staged, bool) {
	if v, ok := t.staged[key]; ok {
		return v, true
	}
	v, ok := t.checkpointing[key]
	return v, ok
}

// Get reads a staged value before the store (a copy: the staged buffer is
// reused by the next stage of the key).
func (t *tableStorage) Get(key string) ([]byte, error) {
	t.mu.Lock()
	if v, ok := t.lookup(key); ok {
		var c []byte
		if !v.del {
			c = append([]byte(nil), v.v...)
		}
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	return t.Storage.Get(key)
}

// Has answers from the staged values before the store.
func (t *tableStorage) Has(key string) (bool, error) {
	t.mu.Lock()
	if v, ok := t.lookup(key); ok {
		t.mu.Unlock()
		return !v.del, nil
	}
	t.mu.Unlock()
	return t.Storage.Has(key)
}

// Iterator writes the checkpoint first: iterators read the store.
func (t *tableStorage) Iterator() (storage.Iterator, error) {
	if err := t.checkpoint(); err != nil {
		return nil, err
	}
	return t.Storage.Iterator()
}

// IteratorWithRange writes the checkpoint first: iterators read the store.
func (t *tableStorage) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	if err := t.checkpoint(); err != nil {
		return nil, err
	}
	return t.Storage.IteratorWithRange(start, limit)
}

// Close writes the checkpoint (a partition revoked or a processor
// stopping keeps its store current) and closes the store.
func (t *tableStorage) Close() error {
	t.release()
	return errors.Join(t.checkpoint(), t.Storage.Close())
}
