package index

import (
	"slices"
	"time"

	"github.com/livefeed/livefeed/models"
)

// Partitions is the number of shards (one per table partition seen).
func (ix *Index) Partitions() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.shards)
}

// CandidatesPerPartition is the most hits one partition contributes to
// SearchCandidates' total: all of them (at least k), since one search
// covers every partition.
func (ix *Index) CandidatesPerPartition(k, total int) int {
	return max(k, total)
}

// SearchCandidates is Search for re-ranking: the max(k, total) most
// similar hits, most similar first, from one search for that many (so the
// first k are Search's top k; a quantized index rescores max(total,
// k·Rescore) candidates, not total·Rescore: the tail's order matters less).
func (ix *Index) SearchCandidates(vec []float32, k, total int, f *Filter, now time.Time) ([]Hit, Stats) {
	q := models.Normalized(vec)
	if f == nil {
		f = &Filter{}
	}
	cf := compileFilter(f, ix.feats, now)
	return ix.searchVec(q, k, total, f, cf)
}

// Dims returns the dimensions of the vectors the index holds, ascending:
// one while every stream's vector comes from one model, two while a new
// model's vectors replace an old one's. Empty while no stream has a vector.
func (ix *Index) Dims() []int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var dims []int
	for _, vg := range ix.graphs {
		if vg.g.Live() > 0 && !slices.Contains(dims, vg.g.Dim()) {
			dims = append(dims, vg.g.Dim())
		}
	}
	slices.Sort(dims)
	return dims
}
