package usershard

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// db is the replica's local copy of the user-table partitions it holds,
// active or standby, in one goleveldb database:
//
//	'u' | partition (4 bytes, big endian) | user id  →  the table's value
//	'o' | partition (4 bytes, big endian)            →  next offset to read (8 bytes)
//
// A fetched batch of a partition and its next offset are written in one
// leveldb batch, so after a crash the stored offset always matches the
// stored values: a restart resumes from it instead of replaying the table.
type db struct {
	ldb *leveldb.DB
}

func openDB(dir string, cacheBytes int) (*db, error) {
	ldb, err := leveldb.OpenFile(dir, &opt.Options{
		BlockCacheCapacity: cacheBytes,
		// Bigger tables: fewer files (10M users are tens of thousands
		// of 2 MiB tables), and the open-files cache bounds what their
		// indexes hold in memory.
		CompactionTableSize:    8 << 20,
		OpenFilesCacheCapacity: 256,
		// A restore writes hundreds of MB at once: a bigger memtable
		// and more level-0 tables before writes slow down keep it
		// from stalling on compactions.
		WriteBuffer:            32 << 20,
		CompactionL0Trigger:    8,
		WriteL0SlowdownTrigger: 24,
		WriteL0PauseTrigger:    36,
		// A Get for an unknown user reads no data block.
		Filter: filter.NewBloomFilter(10),
	})
	if err != nil {
		return nil, fmt.Errorf("opening user partitions in %s: %w", dir, err)
	}
	return &db{ldb: ldb}, nil
}

func (d *db) Close() error { return d.ldb.Close() }

func userKey(p int32, id []byte) []byte {
	k := make([]byte, 5+len(id))
	k[0] = 'u'
	binary.BigEndian.PutUint32(k[1:], uint32(p))
	copy(k[5:], id)
	return k
}

func offsetKey(p int32) []byte {
	k := []byte{'o', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(k[1:], uint32(p))
	return k
}

// get returns the stored value of id in partition p, nil if none.
func (d *db) get(p int32, id string) ([]byte, error) {
	v, err := d.ldb.Get(userKey(p, []byte(id)), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// nextOffset returns the next offset to read of partition p; ok is false
// when the partition was never stored here.
func (d *db) nextOffset(p int32) (next int64, ok bool, err error) {
	v, err := d.ldb.Get(offsetKey(p), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("partition %d: stored offset of %d bytes", p, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// record is one table record to apply: a nil value deletes (a tombstone).
type record struct {
	key, value []byte
}

// apply writes a partition's records and its next offset atomically.
func (d *db) apply(p int32, recs []record, next int64) error {
	var b leveldb.Batch
	for _, r := range recs {
		if r.value == nil {
			b.Delete(userKey(p, r.key))
		} else {
			b.Put(userKey(p, r.key), r.value)
		}
	}
	var off [8]byte
	binary.BigEndian.PutUint64(off[:], uint64(next))
	b.Put(offsetKey(p), off[:])
	return d.ldb.Write(&b, nil)
}

// drop deletes partition p's offset, then its values. A partition without
// a stored offset must have no values either (adjustOffsets drops any left
// by an interrupted drop before the partition is read from the start).
func (d *db) drop(p int32) (deleted int, err error) {
	if err := d.ldb.Delete(offsetKey(p), nil); err != nil {
		return 0, err
	}
	it := d.ldb.NewIterator(util.BytesPrefix(userKey(p, nil)), nil)
	defer it.Release()
	var b leveldb.Batch
	for it.Next() {
		b.Delete(append([]byte(nil), it.Key()...))
		if b.Len() == 10_000 {
			if err := d.ldb.Write(&b, nil); err != nil {
				return deleted, err
			}
			deleted += b.Len()
			b.Reset()
		}
	}
	if err := it.Error(); err != nil {
		return deleted, err
	}
	deleted += b.Len()
	return deleted, d.ldb.Write(&b, nil)
}

// stored lists the partitions of [0, n) this replica has a copy of.
func (d *db) stored(n int32) ([]int32, error) {
	out := []int32{}
	for p := range n {
		_, ok, err := d.nextOffset(p)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}
