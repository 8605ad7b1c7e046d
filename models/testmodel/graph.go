package testmodel

import (
	"fmt"
	"math"
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

// builder accumulates the nodes and initializers of the graph.
type builder struct {
	g   graph
	rng *rng
	seq int
}

func (b *builder) fresh(prefix string) string {
	b.seq++
	return fmt.Sprintf("%s_%d", prefix, b.seq)
}

// op appends a node with one output and returns the output name.
func (b *builder) op(opType string, inputs []string, attrs ...attribute) string {
	out := b.fresh(opType)
	b.g.nodes = append(b.g.nodes, node{
		name: "node_" + out, opType: opType, inputs: inputs, outputs: []string{out}, attrs: attrs,
	})
	return out
}

// weight adds a float32 initializer.
func (b *builder) weight(name string, dims []int64, values []float32) string {
	b.g.initializers = append(b.g.initializers, floatTensor(name, dims, values))
	return name
}

// constFloat adds a Constant node holding a float32 scalar.
func (b *builder) constFloat(v float32) string {
	return b.op("Constant", nil, tensorAttr("value", floatTensor("", nil, []float32{v})))
}

// constInts adds a Constant node holding a 1-D int64 tensor (shapes, axes).
func (b *builder) constInts(v ...int64) string {
	return b.op("Constant", nil, tensorAttr("value", int64Tensor("", []int64{int64(len(v))}, v)))
}

// linear is x·W + bias with W shaped [in, out] (the layout of a PyTorch
// export, after its transpose is folded into the initializer).
func (b *builder) linear(x, name string, in, out int, std float64) string {
	w := b.weight(name+".weight", []int64{int64(in), int64(out)}, b.rng.normals(in*out, std))
	bias := b.weight(name+".bias", []int64{int64(out)}, constant(out, 0))
	return b.op("Add", []string{b.op("MatMul", []string{x, w}), bias})
}

func (b *builder) layerNorm(x, name string, hidden int) string {
	gamma := b.weight(name+".weight", []int64{int64(hidden)}, constant(hidden, 1))
	beta := b.weight(name+".bias", []int64{int64(hidden)}, constant(hidden, 0))
	return b.op("LayerNormalization", []string{x, gamma, beta},
		intAttr("axis", -1), floatAttr("epsilon", layerNormEps))
}

// gelu is the exact GELU, 0.5·x·(1 + erf(x/√2)), from Div, Erf, Add and Mul
// (onnx-gomlx has no Gelu op).
func (b *builder) gelu(x string) string {
	e := b.op("Erf", []string{b.op("Div", []string{x, b.constFloat(float32(math.Sqrt2))})})
	onePlus := b.op("Add", []string{e, b.constFloat(1)})
	return b.op("Mul", []string{b.op("Mul", []string{x, onePlus}), b.constFloat(0.5)})
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

// buildGraph builds a BERT encoder with the inputs and output hugot expects.
func buildGraph(opt Options, vocabSize int, r *rng) graph {
	h, heads := opt.Hidden, opt.Heads
	headDim := h / heads
	inter := 4 * h
	b := &builder{rng: r}
	b.g.name = "bert"

	batchSeq := []dim{{param: "batch_size"}, {param: "sequence_length"}}
	for _, in := range []string{"input_ids", "attention_mask", "token_type_ids"} {
		b.g.inputs = append(b.g.inputs, valueInfo{name: in, elemType: dtInt64, shape: batchSeq})
	}
	b.g.outputs = []valueInfo{{
		name: "last_hidden_state", elemType: dtFloat,
		shape: []dim{{param: "batch_size"}, {param: "sequence_length"}, {value: int64(h)}},
	}}

	// Embeddings: word + position + token type, then LayerNorm.
	wordEmb := b.weight("embeddings.word_embeddings.weight", []int64{int64(vocabSize), int64(h)},
		r.normals(vocabSize*h, wordStd))
	posEmb := b.weight("embeddings.position_embeddings.weight", []int64{int64(opt.MaxPositions), int64(h)},
		r.normals(opt.MaxPositions*h, posStd))
	typeEmb := b.weight("embeddings.token_type_embeddings.weight", []int64{2, int64(h)},
		r.normals(2*h, typeStd))

	words := b.op("Gather", []string{wordEmb, "input_ids"}, intAttr("axis", 0))
	types := b.op("Gather", []string{typeEmb, "token_type_ids"}, intAttr("axis", 0))
	// Positions 0..seq-1: slice the table up to the sequence length.
	seqLen := b.op("Shape", []string{"input_ids"}, intAttr("start", 1), intAttr("end", 2))
	positions := b.op("Slice", []string{posEmb, b.constInts(0), seqLen, b.constInts(0)})
	x := b.op("Add", []string{b.op("Add", []string{words, types}), positions})
	x = b.layerNorm(x, "embeddings.LayerNorm", h)

	// Additive attention mask, [batch, 1, 1, seq]: 0 for tokens, -10000 for padding.
	mask := b.op("Cast", []string{"attention_mask"}, intAttr("to", dtFloat))
	mask = b.op("Unsqueeze", []string{mask, b.constInts(1, 2)})
	mask = b.op("Mul", []string{b.op("Sub", []string{b.constFloat(1), mask}), b.constFloat(-10000)})

	projStd := branchGain / math.Sqrt(float64(h))
	outStd := branchGain / math.Sqrt(float64(inter))
	splitHeads := b.constInts(0, 0, int64(heads), int64(headDim))
	mergeHeads := b.constInts(0, 0, int64(h))
	scale := b.constFloat(float32(1 / math.Sqrt(float64(headDim))))

	for l := range opt.Layers {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		// [batch, seq, hidden] -> [batch, heads, seq, headDim]
		heads := func(name string, perm ...int64) string {
			y := b.linear(x, p+"attention.self."+name, h, h, projStd)
			y = b.op("Reshape", []string{y, splitHeads})
			return b.op("Transpose", []string{y}, intsAttr("perm", perm...))
		}
		q := heads("query", 0, 2, 1, 3)
		k := heads("key", 0, 2, 3, 1) // already transposed: [batch, heads, headDim, seq]
		v := heads("value", 0, 2, 1, 3)

		scores := b.op("Mul", []string{b.op("MatMul", []string{q, k}), scale})
		probs := b.op("Softmax", []string{b.op("Add", []string{scores, mask})}, intAttr("axis", -1))
		ctx := b.op("MatMul", []string{probs, v})
		ctx = b.op("Transpose", []string{ctx}, intsAttr("perm", 0, 2, 1, 3))
		ctx = b.op("Reshape", []string{ctx, mergeHeads})
		attn := b.linear(ctx, p+"attention.output.dense", h, h, projStd)
		x = b.layerNorm(b.op("Add", []string{attn, x}), p+"attention.output.LayerNorm", h)

		ff := b.gelu(b.linear(x, p+"intermediate.dense", h, inter, projStd))
		ff = b.linear(ff, p+"output.dense", inter, h, outStd)
		x = b.layerNorm(b.op("Add", []string{ff, x}), p+"output.LayerNorm", h)
	}

	// Name the final tensor after the graph output.
	b.g.nodes = append(b.g.nodes, node{
		name: "node_output", opType: "Identity", inputs: []string{x}, outputs: []string{"last_hidden_state"},
	})
	return b.g
}
