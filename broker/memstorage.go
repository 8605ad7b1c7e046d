package broker

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/lovoo/goka/storage"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// MemoryStorageBuilder builds the in-memory storage of serving's views: a
// map, with keys sorted only when an iterator asks for them. Goka's own
// memory storage (storage.NewMemory, v1.1.17) re-sorts its whole key list on
// every new key, so recovering a view is quadratic in the keys of a
// partition: 46 s for 125k keys here, 330 s to bring a serving replica up on
// a 1M-stream table (BENCHMARKS.md, "Recovery").
func MemoryStorageBuilder() storage.Builder {
	return func(string, int32) (storage.Storage, error) { return newMemStorage(), nil }
}

type memStorage struct {
	mu     sync.RWMutex
	values map[string][]byte
	offset *int64
}

func newMemStorage() *memStorage { return &memStorage{values: map[string][]byte{}} }

func (m *memStorage) Open() error          { return nil }
func (m *memStorage) Close() error         { return nil }
func (m *memStorage) MarkRecovered() error { return nil }

func (m *memStorage) Has(key string) (bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.values[key]
	return ok, nil
}

func (m *memStorage) Get(key string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.values[key], nil
}

func (m *memStorage) Set(key string, value []byte) error {
	if value == nil {
		return errors.New("cannot write nil value")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.values[key] = value
	return nil
}

func (m *memStorage) Delete(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.values, key)
	return nil
}

func (m *memStorage) SetOffset(offset int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.offset = &offset
	return nil
}

func (m *memStorage) GetOffset(def int64) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.offset == nil {
		return def, nil
	}
	return *m.offset, nil
}

// Iterator iterates over a sorted snapshot: changes after the call are not
// seen.
func (m *memStorage) Iterator() (storage.Iterator, error) {
	return m.snapshot(func(string) bool { return true }), nil
}

// IteratorWithRange iterates over the keys in [start, limit] (limit empty:
// the keys with prefix start), as goka's memory storage does.
func (m *memStorage) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	if len(limit) == 0 {
		limit = util.BytesPrefix(start).Limit
	}
	return m.snapshot(func(k string) bool {
		return bytes.Compare([]byte(k), start) >= 0 && bytes.Compare([]byte(k), limit) <= 0
	}), nil
}

func (m *memStorage) snapshot(keep func(string) bool) *memIterator {
	m.mu.RLock()
	defer m.mu.RUnlock()
	it := &memIterator{current: -1}
	for k, v := range m.values {
		if keep(k) {
			it.keys = append(it.keys, k)
			it.values = append(it.values, v)
		}
	}
	idx := make([]int, len(it.keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(it.keys[a], it.keys[b]) })
	keys, values := make([]string, len(idx)), make([][]byte, len(idx))
	for i, j := range idx {
		keys[i], values[i] = it.keys[j], it.values[j]
	}
	it.keys, it.values = keys, values
	return it
}

// memIterator walks a sorted snapshot; not safe for concurrent use.
type memIterator struct {
	current int
	keys    []string
	values  [][]byte
}

func (i *memIterator) exhausted() bool { return i.current >= len(i.keys) }

func (i *memIterator) Next() bool {
	i.current++
	return !i.exhausted()
}

func (i *memIterator) Err() error { return nil }

func (i *memIterator) Key() []byte {
	if i.current < 0 || i.exhausted() {
		return nil
	}
	return []byte(i.keys[i.current])
}

func (i *memIterator) Value() ([]byte, error) {
	if i.current < 0 || i.exhausted() {
		return nil, nil
	}
	return i.values[i.current], nil
}

func (i *memIterator) Release() { i.current = len(i.keys) }

// Seek moves to the first key with the given prefix (goka's memory storage
// semantics).
func (i *memIterator) Seek(key []byte) bool {
	if i.current < 0 {
		i.current = 0
	}
	for !i.exhausted() && !strings.HasPrefix(i.keys[i.current], string(key)) {
		i.current++
	}
	return !i.exhausted()
}
