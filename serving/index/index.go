// Package index is serving's in-memory index of livestreams: one shard per
// table partition, kept current from the goka view's update callback, with
// exact filtered cosine k-NN (vectors are unit length, so cosine = dot).
// A query scans every shard in parallel and merges their top-k.
package index

import (
	"runtime"
	"sync"
	"time"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/tables"
)

// Item is one indexed livestream: its vector and the attributes filters and
// scores read.
type Item struct {
	ID         string
	SellerID   string
	Title      string
	Category   string
	Language   string
	Status     events.Status
	LiveSince  time.Time
	ViewersNow int
	Vector     []float32 // unit length; nil if the stream has no embedding yet
	Features   features.State
}

// ItemFrom builds an index item from a livestream table value.
func ItemFrom(st *tables.Livestream) *Item {
	var vec []float32
	if len(st.Embedding) > 0 {
		vec = models.Normalized(st.Embedding)
	}
	return &Item{
		ID: st.LivestreamID, SellerID: st.SellerID, Title: st.Title, Category: st.Category,
		Language: st.Language, Status: st.Status, LiveSince: st.LiveSince,
		ViewersNow: st.ViewersNow(), Vector: vec, Features: st.Features,
	}
}

type shard struct {
	mu    sync.RWMutex
	items []*Item
	pos   map[string]int
}

// Index holds one shard per partition.
type Index struct {
	mu     sync.RWMutex
	shards []*shard
	feats  *features.Set
}

// New returns an empty index. feats evaluates windowed features for filters
// and scores.
func New(partitions int, feats *features.Set) *Index {
	ix := &Index{feats: feats}
	ix.grow(partitions)
	return ix
}

func (ix *Index) grow(n int) {
	for len(ix.shards) < n {
		ix.shards = append(ix.shards, &shard{pos: map[string]int{}})
	}
}

func (ix *Index) shard(partition int32) *shard {
	ix.mu.RLock()
	if int(partition) < len(ix.shards) {
		s := ix.shards[partition]
		ix.mu.RUnlock()
		return s
	}
	ix.mu.RUnlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.grow(int(partition) + 1)
	return ix.shards[partition]
}

// Upsert puts the item in the partition's shard; an ended stream leaves the
// index instead.
func (ix *Index) Upsert(partition int32, it *Item) {
	if it.Status == events.StatusEnded {
		ix.Delete(partition, it.ID)
		return
	}
	s := ix.shard(partition)
	s.mu.Lock()
	if i, ok := s.pos[it.ID]; ok {
		s.items[i] = it
	} else {
		s.pos[it.ID] = len(s.items)
		s.items = append(s.items, it)
	}
	s.mu.Unlock()
}

// Delete removes a stream from the partition's shard.
func (ix *Index) Delete(partition int32, id string) {
	s := ix.shard(partition)
	s.mu.Lock()
	if i, ok := s.pos[id]; ok {
		last := len(s.items) - 1
		s.items[i] = s.items[last]
		s.pos[s.items[i].ID] = i
		s.items[last] = nil
		s.items = s.items[:last]
		delete(s.pos, id)
	}
	s.mu.Unlock()
}

// Len is the number of indexed streams.
func (ix *Index) Len() int {
	n := 0
	for _, s := range ix.snapshotShards() {
		s.mu.RLock()
		n += len(s.items)
		s.mu.RUnlock()
	}
	return n
}

func (ix *Index) snapshotShards() []*shard {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return append([]*shard(nil), ix.shards...)
}

// forEachShard runs fn on every shard, in parallel on up to GOMAXPROCS
// goroutines, each owned and awaited here.
func (ix *Index) forEachShard(fn func(i int, s *shard)) {
	shards := ix.snapshotShards()
	workers := runtime.GOMAXPROCS(0)
	if workers > len(shards) {
		workers = len(shards)
	}
	if workers <= 1 {
		for i, s := range shards {
			fn(i, s)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, len(shards))
	for i := range shards {
		next <- i
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i, shards[i])
			}
		})
	}
	wg.Wait()
}
