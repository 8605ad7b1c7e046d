package pipeline

import (
	"container/list"
	"sync"

	"github.com/lovoo/goka"
)

// StateCache keeps the decoded table values of a group's most recently used
// keys, per partition, so a callback does not decode its key's state from
// storage on every event (goka's ctx.Value decodes each time; it was a third
// of the livestream group's CPU).
//
// It is coherent because a partition's keys are written only by the one
// callback goroutine that owns the partition, and every rebalance (a new
// consumer-group session, whose partitions may have been written by another
// instance meanwhile) clears it: wire Reset into goka.WithRebalanceCallback.
// Values are written through with ctx.SetValue, so storage and the changelog
// stay the truth and recovery is unchanged.
type StateCache[T any] struct {
	perPartition int
	mu           sync.Mutex
	parts        map[int32]*lru[T]
}

// NewStateCache caches up to perPartition keys per partition (LRU).
func NewStateCache[T any](perPartition int) *StateCache[T] {
	return &StateCache[T]{perPartition: perPartition, parts: map[int32]*lru[T]{}}
}

func (c *StateCache[T]) part(p int32) *lru[T] {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.parts[p]
	if l == nil {
		l = newLRU[T](c.perPartition)
		c.parts[p] = l
	}
	return l
}

// Get returns the key's state: cached, else decoded from the table (ctx.Value),
// else nil.
func (c *StateCache[T]) Get(ctx goka.Context) *T {
	l := c.part(ctx.Partition())
	if v, ok := l.get(ctx.Key()); ok {
		return v
	}
	v, _ := ctx.Value().(*T)
	if v != nil {
		l.put(ctx.Key(), v)
	}
	return v
}

// Set writes v to the table and caches it.
func (c *StateCache[T]) Set(ctx goka.Context, v *T) {
	ctx.SetValue(v)
	c.part(ctx.Partition()).put(ctx.Key(), v)
}

// Delete removes the key from the table and the cache.
func (c *StateCache[T]) Delete(ctx goka.Context) {
	ctx.Delete()
	c.part(ctx.Partition()).remove(ctx.Key())
}

// Reset drops everything; goka calls it on every new assignment.
func (c *StateCache[T]) Reset(goka.Assignment) {
	c.mu.Lock()
	c.parts = map[int32]*lru[T]{}
	c.mu.Unlock()
}

// Len is the number of cached keys.
func (c *StateCache[T]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.parts {
		n += l.len()
	}
	return n
}

type entry[T any] struct {
	key string
	val *T
}

// lru is a bounded least-recently-used map; one per partition.
type lru[T any] struct {
	mu    sync.Mutex
	cap   int
	order *list.List
	items map[string]*list.Element
}

func newLRU[T any](capacity int) *lru[T] {
	return &lru[T]{cap: capacity, order: list.New(), items: map[string]*list.Element{}}
}

func (l *lru[T]) get(k string) (*T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.items[k]
	if !ok {
		return nil, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*entry[T]).val, true
}

func (l *lru[T]) put(k string, v *T) {
	if l.cap <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.items[k]; ok {
		e.Value.(*entry[T]).val = v
		l.order.MoveToFront(e)
		return
	}
	l.items[k] = l.order.PushFront(&entry[T]{key: k, val: v})
	for l.order.Len() > l.cap {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.items, last.Value.(*entry[T]).key)
	}
}

func (l *lru[T]) remove(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.items[k]; ok {
		l.order.Remove(e)
		delete(l.items, k)
	}
}

func (l *lru[T]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}
