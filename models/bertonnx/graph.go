// Package bertonnx writes a BERT encoder as an ONNX model (opset 17) that
// hugot's pure-Go backend (onnx-gomlx) runs: inputs input_ids,
// attention_mask and token_type_ids (int64, [batch, seq]), output
// last_hidden_state (float32, [batch, seq, hidden]), built only from ops
// onnx-gomlx has (Gather, MatMul, Add, Mul, Sub, Div, Softmax, Erf,
// LayerNormalization, Reshape, Transpose, Slice, Shape, Cast, Unsqueeze,
// Constant, Identity): no fused or com.microsoft ops, GELU from Erf, pooling
// left to hugot.
//
// The weights come from a Weights function: package testmodel draws random
// ones; Convert reads a HuggingFace/sentence-transformers checkpoint
// (model.safetensors), so a real model needs neither PyTorch nor an ONNX
// exporter.
package bertonnx

import (
	"errors"
	"fmt"
	"math"
)

// Config is the shape of the encoder (HuggingFace BertConfig names).
type Config struct {
	VocabSize     int
	Hidden        int // hidden_size; a multiple of Heads
	Layers        int // num_hidden_layers
	Heads         int // num_attention_heads
	Intermediate  int // intermediate_size (feed-forward width)
	MaxPositions  int // max_position_embeddings
	TypeVocabSize int // type_vocab_size (token types; BERT: 2)
	LayerNormEps  float32

	// Written into the ONNX model's producer_name and producer_version.
	ProducerName, ProducerVersion string
}

func (c Config) validate() error {
	switch {
	case c.VocabSize <= 0 || c.Hidden <= 0 || c.Layers <= 0 || c.Heads <= 0 ||
		c.Intermediate <= 0 || c.MaxPositions <= 0 || c.TypeVocabSize <= 0:
		return fmt.Errorf("bertonnx: all sizes must be positive, got %+v", c)
	case c.Hidden%c.Heads != 0:
		return fmt.Errorf("bertonnx: hidden size %d is not a multiple of %d heads", c.Hidden, c.Heads)
	case !(c.LayerNormEps > 0):
		return fmt.Errorf("bertonnx: layer norm epsilon must be positive, got %g", c.LayerNormEps)
	}
	return nil
}

// ParamKind is the role of a parameter, for generators of random weights.
type ParamKind int

const (
	Embedding ParamKind = iota // a lookup table, [rows, hidden]
	Linear                     // a projection's weight, [in, out]
	Bias                       // a projection's bias, [out]
	NormScale                  // a LayerNorm's weight (gamma), [hidden]
	NormShift                  // a LayerNorm's bias (beta), [hidden]
)

// Param describes one weight the graph asks for.
type Param struct {
	// Name is the HuggingFace BertModel state-dict name, e.g.
	// "embeddings.word_embeddings.weight" or
	// "encoder.layer.0.attention.self.query.weight".
	Name string
	// Dims is the shape of the values to return, row-major. A Linear weight
	// is [in, out]: the transpose of PyTorch's nn.Linear.weight.
	Dims []int64
	Kind ParamKind
	// FanIn is the input width of a Linear weight, 0 otherwise.
	FanIn int
}

// Size is the number of values Dims holds.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Dims {
		n *= int(d)
	}
	return n
}

// Weights returns the values of p, len p.Size(). It is called once per
// parameter, in a fixed order: the embeddings (word, position, token type,
// LayerNorm), then layer by layer query, key, value, attention output,
// attention LayerNorm, intermediate, output, output LayerNorm; each weight
// before its bias, each LayerNorm weight before its bias.
type Weights func(p Param) ([]float32, error)

// Build returns the ONNX model (serialised ModelProto) of the encoder.
func Build(cfg Config, weights Weights) ([]byte, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g, err := buildGraph(cfg, weights)
	if err != nil {
		return nil, err
	}
	return marshalModel(g, cfg.ProducerName, cfg.ProducerVersion), nil
}

// builder accumulates the nodes and initializers of the graph.
type builder struct {
	g       graph
	weights Weights
	err     error // the first error from weights
	seq     int
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

// weight adds a float32 initializer with the values weights gives for p.
func (b *builder) weight(p Param) string {
	if b.err != nil {
		return p.Name
	}
	values, err := b.weights(p)
	switch {
	case err != nil:
		b.err = fmt.Errorf("bertonnx: weight %s: %w", p.Name, err)
	case len(values) != p.Size():
		b.err = fmt.Errorf("bertonnx: weight %s: got %d values, want %d for shape %v", p.Name, len(values), p.Size(), p.Dims)
	default:
		b.g.initializers = append(b.g.initializers, floatTensor(p.Name, p.Dims, values))
	}
	return p.Name
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
func (b *builder) linear(x, name string, in, out int) string {
	w := b.weight(Param{Name: name + ".weight", Dims: []int64{int64(in), int64(out)}, Kind: Linear, FanIn: in})
	bias := b.weight(Param{Name: name + ".bias", Dims: []int64{int64(out)}, Kind: Bias})
	return b.op("Add", []string{b.op("MatMul", []string{x, w}), bias})
}

func (b *builder) layerNorm(x, name string, hidden int, eps float32) string {
	gamma := b.weight(Param{Name: name + ".weight", Dims: []int64{int64(hidden)}, Kind: NormScale})
	beta := b.weight(Param{Name: name + ".bias", Dims: []int64{int64(hidden)}, Kind: NormShift})
	return b.op("LayerNormalization", []string{x, gamma, beta},
		intAttr("axis", -1), floatAttr("epsilon", eps))
}

// gelu is the exact GELU, 0.5·x·(1 + erf(x/√2)), from Div, Erf, Add and Mul
// (onnx-gomlx has no Gelu op).
func (b *builder) gelu(x string) string {
	e := b.op("Erf", []string{b.op("Div", []string{x, b.constFloat(float32(math.Sqrt2))})})
	onePlus := b.op("Add", []string{e, b.constFloat(1)})
	return b.op("Mul", []string{b.op("Mul", []string{x, onePlus}), b.constFloat(0.5)})
}

// buildGraph builds a BERT encoder with the inputs and output hugot expects.
func buildGraph(cfg Config, weights Weights) (graph, error) {
	if weights == nil {
		return graph{}, errors.New("bertonnx: no weights")
	}
	h, heads := cfg.Hidden, cfg.Heads
	headDim := h / heads
	b := &builder{weights: weights}
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
	table := func(name string, rows int) string {
		return b.weight(Param{Name: "embeddings." + name + ".weight", Dims: []int64{int64(rows), int64(h)}, Kind: Embedding})
	}
	wordEmb := table("word_embeddings", cfg.VocabSize)
	posEmb := table("position_embeddings", cfg.MaxPositions)
	typeEmb := table("token_type_embeddings", cfg.TypeVocabSize)

	words := b.op("Gather", []string{wordEmb, "input_ids"}, intAttr("axis", 0))
	types := b.op("Gather", []string{typeEmb, "token_type_ids"}, intAttr("axis", 0))
	// Positions 0..seq-1: slice the table up to the sequence length.
	seqLen := b.op("Shape", []string{"input_ids"}, intAttr("start", 1), intAttr("end", 2))
	positions := b.op("Slice", []string{posEmb, b.constInts(0), seqLen, b.constInts(0)})
	x := b.op("Add", []string{b.op("Add", []string{words, types}), positions})
	x = b.layerNorm(x, "embeddings.LayerNorm", h, cfg.LayerNormEps)

	// Additive attention mask, [batch, 1, 1, seq]: 0 for tokens, -10000 for
	// padding (exp underflows to 0 in float32, as with PyTorch's finfo.min).
	mask := b.op("Cast", []string{"attention_mask"}, intAttr("to", dtFloat))
	mask = b.op("Unsqueeze", []string{mask, b.constInts(1, 2)})
	mask = b.op("Mul", []string{b.op("Sub", []string{b.constFloat(1), mask}), b.constFloat(-10000)})

	splitHeads := b.constInts(0, 0, int64(heads), int64(headDim))
	mergeHeads := b.constInts(0, 0, int64(h))
	scale := b.constFloat(float32(1 / math.Sqrt(float64(headDim))))

	for l := range cfg.Layers {
		p := fmt.Sprintf("encoder.layer.%d.", l)
		// [batch, seq, hidden] -> [batch, heads, seq, headDim]
		heads := func(name string, perm ...int64) string {
			y := b.linear(x, p+"attention.self."+name, h, h)
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
		attn := b.linear(ctx, p+"attention.output.dense", h, h)
		x = b.layerNorm(b.op("Add", []string{attn, x}), p+"attention.output.LayerNorm", h, cfg.LayerNormEps)

		ff := b.gelu(b.linear(x, p+"intermediate.dense", h, cfg.Intermediate))
		ff = b.linear(ff, p+"output.dense", cfg.Intermediate, h)
		x = b.layerNorm(b.op("Add", []string{ff, x}), p+"output.LayerNorm", h, cfg.LayerNormEps)
	}

	// Name the final tensor after the graph output.
	b.g.nodes = append(b.g.nodes, node{
		name: "node_output", opType: "Identity", inputs: []string{x}, outputs: []string{"last_hidden_state"},
	})
	if b.err != nil {
		return graph{}, b.err
	}
	return b.g, nil
}
