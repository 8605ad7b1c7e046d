package testmodel

import (
	"math"
	"strings"

	"github.com/livefeed/livefeed/models/bertonnx"
)

// rng is a SplitMix64 generator: tiny, fast and, unlike math/rand, its output
// is fixed by this code alone, so a seed gives the same bytes on every Go
// version and architecture.
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a float64 in [0, 1).
func (r *rng) uniform() float64 { return float64(r.next()>>11) / (1 << 53) }

// normal returns an approximately standard normal value (Irwin–Hall: the sum
// of 12 uniforms minus 6 has mean 0 and variance 1). Only additions are used,
// so the result is bit-exact everywhere.
func (r *rng) normal() float64 {
	s := 0.0
	for range 12 {
		s += r.uniform()
	}
	return s - 6
}

func (r *rng) normals(n int, std float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.normal() * std)
	}
	return out
}

func constant(n int, v float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = v
	}
	return out
}

const layerNormEps = 1e-12

// Standard deviations of the initial weights. Word embeddings have std 1 and
// every projection is scaled by 1/√fan_in times branchGain < 1, so the
// residual stream (token identity) dominates: the pooled output behaves
// roughly like a bag of words, and texts that share words are nearer.
const (
	wordStd    = 1.0
	posStd     = 0.02
	typeStd    = 0.02
	branchGain = 0.5
)

// bertConfig is the encoder's shape for opt.
func (o Options) bertConfig(vocabSize int) bertonnx.Config {
	return bertonnx.Config{
		VocabSize:       vocabSize,
		Hidden:          o.Hidden,
		Layers:          o.Layers,
		Heads:           o.Heads,
		Intermediate:    4 * o.Hidden,
		MaxPositions:    o.MaxPositions,
		TypeVocabSize:   2,
		LayerNormEps:    layerNormEps,
		ProducerName:    "livefeed-testmodel",
		ProducerVersion: generatorVersion,
	}
}

// randomWeights draws the parameters from r in the order bertonnx.Build asks
// for them: embeddings normal (std by table), projections normal with std
// branchGain/√fan_in, biases and LayerNorm shifts 0, LayerNorm scales 1.
func randomWeights(r *rng) bertonnx.Weights {
	return func(p bertonnx.Param) ([]float32, error) {
		n := p.Size()
		switch p.Kind {
		case bertonnx.Embedding:
			std := wordStd
			switch {
			case strings.Contains(p.Name, "position_embeddings"):
				std = posStd
			case strings.Contains(p.Name, "token_type_embeddings"):
				std = typeStd
			}
			return r.normals(n, std), nil
		case bertonnx.Linear:
			return r.normals(n, branchGain/math.Sqrt(float64(p.FanIn))), nil
		case bertonnx.NormScale:
			return constant(n, 1), nil
		default: // Bias, NormShift
			return constant(n, 0), nil
		}
	}
}
