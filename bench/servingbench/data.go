package servingbench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"

	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/livefeed/livefeed/serving/index/vec"
)

// Catalogue is a synthetic set of live streams: clustered unit vectors
// (topics, each with sub-topics, each item near its sub-topic) and
// attributes, some following the vectors' topics and some not.
type Catalogue struct {
	N, Dim  int
	Vectors []float32 // N·Dim, contiguous
	Items   []index.Item
	Topic   []int32 // item → topic
	Queries []float32
	NQ      int
}

// Vector returns item i's vector.
func (c *Catalogue) Vector(i int) []float32 { return c.Vectors[i*c.Dim : (i+1)*c.Dim : (i+1)*c.Dim] }

// Query returns query i.
func (c *Catalogue) Query(i int) []float32 { return c.Queries[i*c.Dim : (i+1)*c.Dim : (i+1)*c.Dim] }

// Shape of the synthetic data.
const (
	topics       = 64
	subPerTopic  = 16
	subSpread    = 0.55 // sub-topic centre = topic centre + this·noise/√dim·…
	itemSpread   = 0.60
	languages    = 10
	sellers      = 1000
	maxViewers   = 1000
	categoryMod  = 10 // category = topic mod 10: correlated with the vectors
	genChunkSize = 4096
)

// Generate builds a catalogue of n items and nq queries of dimension dim
// from seed, on up to workers goroutines (the result does not depend on
// workers).
func Generate(n, nq, dim int, seed uint64, workers int) *Catalogue {
	rng := rand.New(rand.NewPCG(seed, 0xca7))
	centres := make([][]float32, topics*subPerTopic)
	for t := range topics {
		tc := gaussUnit(rng, dim, nil, 0)
		for s := range subPerTopic {
			centres[t*subPerTopic+s] = gaussUnit(rng, dim, tc, subSpread)
		}
	}
	c := &Catalogue{N: n, Dim: dim, NQ: nq, Vectors: make([]float32, n*dim), Items: make([]index.Item, n),
		Topic: make([]int32, n), Queries: make([]float32, nq*dim)}
	chunks := (n + genChunkSize - 1) / genChunkSize
	var wg sync.WaitGroup
	next := make(chan int, chunks)
	for i := range chunks {
		next <- i
	}
	close(next)
	for range max(1, workers) {
		wg.Go(func() {
			for ch := range next {
				r := rand.New(rand.NewPCG(seed, uint64(ch)+1))
				for i := ch * genChunkSize; i < min(n, (ch+1)*genChunkSize); i++ {
					sub := r.IntN(len(centres))
					topic := sub / subPerTopic
					v := c.Vector(i)
					fillGaussUnit(r, v, centres[sub], itemSpread)
					c.Topic[i] = int32(topic)
					c.Items[i] = index.Item{
						ID:         itemID(i),
						SellerID:   "s-" + strconv.Itoa(r.IntN(sellers)),
						Category:   fmt.Sprintf("cat-%02d", topic%categoryMod),
						Language:   fmt.Sprintf("l%d", r.IntN(languages)),
						Status:     events.StatusLive,
						ViewersNow: r.IntN(maxViewers),
						Vector:     v,
					}
				}
			}
		})
	}
	wg.Wait()
	qr := rand.New(rand.NewPCG(seed, 0x9e37))
	for i := range nq {
		fillGaussUnit(qr, c.Query(i), centres[qr.IntN(len(centres))], itemSpread)
	}
	return c
}

func itemID(i int) string { return fmt.Sprintf("ls-%07d", i) }

// itemIndex inverts itemID.
func itemIndex(id string) int {
	i, err := strconv.Atoi(id[3:])
	if err != nil {
		return -1
	}
	return i
}

func gaussUnit(rng *rand.Rand, dim int, around []float32, spread float64) []float32 {
	v := make([]float32, dim)
	fillGaussUnit(rng, v, around, spread)
	return v
}

// fillGaussUnit sets v to around + spread·g (g a Gaussian of expected norm
// 1), normalised; without around, a random direction.
func fillGaussUnit(rng *rand.Rand, v, around []float32, spread float64) {
	s := 1 / math.Sqrt(float64(len(v)))
	if around != nil {
		s *= spread
	}
	for j := range v {
		v[j] = float32(rng.NormFloat64() * s)
		if around != nil {
			v[j] += around[j]
		}
	}
	n := float32(math.Sqrt(float64(vec.Dot(v, v))))
	for j := range v {
		v[j] /= n
	}
}

// Case is one filter of the benchmark.
type Case struct {
	Name  string
	Kind  string // what it exercises
	F     *index.Filter
	Match func(it *index.Item, topic int32) bool
}

func f64(x float64) *float64 { return &x }

// Cases are the benchmark's filters: selectivities 100/50/10/1/0.1 %
// (uncorrelated attributes), a two-attribute AND and a filter correlated
// with the vectors.
func Cases() []Case {
	viewersAtLeast := func(v int) func(*index.Item, int32) bool {
		return func(it *index.Item, _ int32) bool { return it.ViewersNow >= v }
	}
	return []Case{
		{"100%", "no filter", &index.Filter{}, func(*index.Item, int32) bool { return true }},
		{"50%", "viewers_now ≥ 500", &index.Filter{Ranges: []index.Range{{Field: index.AttrViewersNow, Min: f64(500)}}}, viewersAtLeast(500)},
		{"10%", "language = l3", &index.Filter{Languages: []string{"l3"}}, func(it *index.Item, _ int32) bool { return it.Language == "l3" }},
		{"1%", "viewers_now ≥ 990", &index.Filter{Ranges: []index.Range{{Field: index.AttrViewersNow, Min: f64(990)}}}, viewersAtLeast(990)},
		{"0.1%", "viewers_now ≥ 999", &index.Filter{Ranges: []index.Range{{Field: index.AttrViewersNow, Min: f64(999)}}}, viewersAtLeast(999)},
		{"AND 1%", "language = l3 AND viewers_now ≥ 900", &index.Filter{Languages: []string{"l3"},
			Ranges: []index.Range{{Field: index.AttrViewersNow, Min: f64(900)}}},
			func(it *index.Item, _ int32) bool { return it.Language == "l3" && it.ViewersNow >= 900 }},
		{"corr 10%", "category = cat-03 (follows the vectors' topics)", &index.Filter{Categories: []string{"cat-03"}},
			func(it *index.Item, _ int32) bool { return it.Category == "cat-03" }},
	}
}
