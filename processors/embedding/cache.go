package embedding

import (
	"container/list"
	"sync"
)

// Cache is a bounded LRU of vectors by text hash: a repeated title (a status
// change, a re-run stream, a restart replaying the topic) costs no model
// call. Vectors are shared, never modified. It is safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used; values are *entry
	items map[string]*list.Element
}

type entry struct {
	hash string
	vec  []float32
}

// NewCache keeps at most max vectors (at least 1).
func NewCache(size int) *Cache {
	return &Cache{max: max(size, 1), order: list.New(), items: map[string]*list.Element{}}
}

// Get returns the vector of a text hash.
func (c *Cache) Get(hash string) ([]float32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[hash]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*entry).vec, true
}

// Put stores a vector, evicting the least recently used beyond the bound.
func (c *Cache) Put(hash string, vec []float32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[hash]; ok {
		el.Value.(*entry).vec = vec
		c.order.MoveToFront(el)
		return
	}
	c.items[hash] = c.order.PushFront(&entry{hash: hash, vec: vec})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*entry).hash)
	}
}

// Len is the number of cached vectors.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
