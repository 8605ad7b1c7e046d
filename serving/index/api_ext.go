package index

import (
	"slices"
	"time"

	"github.com/livefeed/livefeed/models"
)

// Partitions is the number of shards (one per table partition seen).
func (ix *Index) Partitions() int { return len(ix.snapshotShards()) }

// CandidatesPerPartition is how many hits SearchCandidates asks of each
// partition for k results out of total candidates: at least k (so the
// global top k is exact), else twice a partition's even share of total.
func (ix *Index) CandidatesPerPartition(k, total int) int {
	n := max(1, ix.Partitions())
	return max(k, (2*total+n-1)/n)
}

// SearchCandidates is Search for re-ranking: up to total hits, most similar
// first, where each partition contributes at most CandidatesPerPartition(k,
// total) of its own best. Every partition searches for at least k, so the
// first k are as good as Search's top k; the rest are the best of each
// partition's share (keys spread over partitions by hash, so a partition
// holds about 1/n of any top list), which costs a search for that share per
// partition instead of for total.
func (ix *Index) SearchCandidates(vec []float32, k, total int, f *Filter, now time.Time) ([]Hit, Stats) {
	q := models.Normalized(vec)
	if f == nil {
		f = &Filter{}
	}
	cf := compileFilter(f, ix.feats, now)
	per := ix.CandidatesPerPartition(k, total)
	return ix.run(total, func(s *shard) shardResult { return ix.searchShard(s, q, per, f, cf) })
}

// Dims returns the dimensions of the vectors the index holds, ascending:
// one while every stream's vector comes from one model, two while a new
// model's vectors replace an old one's. Empty while no stream has a vector.
func (ix *Index) Dims() []int {
	var dims []int
	for _, s := range ix.snapshotShards() {
		s.mu.RLock()
		for _, vg := range s.graphs {
			if vg.g.Live() > 0 && !slices.Contains(dims, vg.g.Dim()) {
				dims = append(dims, vg.g.Dim())
			}
		}
		s.mu.RUnlock()
	}
	slices.Sort(dims)
	return dims
}
