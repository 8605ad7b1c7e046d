package bertonnx_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/onnx-gomlx/onnx"

	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/models/bertonnx"
	"github.com/livefeed/livefeed/models/testmodel"
)

// tinyConfig is a small BERT; its vocabulary is testmodel's.
func tinyConfig(t *testing.T) bertonnx.Config {
	t.Helper()
	return bertonnx.Config{
		VocabSize: len(testmodel.Vocabulary()), Hidden: 32, Layers: 2, Heads: 4, Intermediate: 48,
		MaxPositions: 64, TypeVocabSize: 2, LayerNormEps: 1e-12,
		ProducerName: "livefeed-bertonnx", ProducerVersion: bertonnx.ConverterVersion,
	}
}

// pseudoWeights gives every parameter distinct, deterministic values, with
// scales that keep a BERT numerically tame.
func pseudoWeights(p bertonnx.Param) ([]float32, error) {
	n := p.Size()
	out := make([]float32, n)
	var seed uint32 = 2166136261
	for _, c := range []byte(p.Name) {
		seed = (seed ^ uint32(c)) * 16777619
	}
	scale := float32(0.02)
	switch p.Kind {
	case bertonnx.Embedding:
		scale = 1
	case bertonnx.Linear:
		scale = float32(0.5 / math.Sqrt(float64(p.FanIn)))
	case bertonnx.NormScale:
		for i := range out {
			out[i] = 1 + 0.1*float32(math.Sin(float64(seed%1000)+float64(i)))
		}
		return out, nil
	}
	for i := range out {
		seed = seed*1664525 + 1013904223
		out[i] = scale * (float32(seed>>8)/(1<<24)*2 - 1) * 1.7
	}
	return out, nil
}

// checkpoint is a sentence-transformers directory holding the weights of
// pseudoWeights in PyTorch layout (nn.Linear as [out, in]), with prefix on
// every name and extra tensors added.
type checkpoint struct {
	prefix  string
	extra   map[string][]float32
	pooling map[string]bool // 1_Pooling/config.json; nil: no modules.json
	config  map[string]any  // overrides of config.json
	dtype   string          // F32 (default) or BF16
}

func (c checkpoint) write(t *testing.T, cfg bertonnx.Config) string {
	t.Helper()
	dir := t.TempDir()
	type entry struct {
		name  string
		shape []int64
		data  []float32
	}
	var entries []entry
	// bertonnx.Build asks for every parameter; record them in PyTorch layout.
	_, err := bertonnx.Build(cfg, func(p bertonnx.Param) ([]float32, error) {
		v, _ := pseudoWeights(p)
		shape := slices.Clone(p.Dims)
		if p.Kind == bertonnx.Linear {
			in, out := int(p.Dims[0]), int(p.Dims[1])
			tr := make([]float32, len(v))
			for r := range in {
				for k := range out {
					tr[k*in+r] = v[r*out+k]
				}
			}
			v, shape = tr, []int64{p.Dims[1], p.Dims[0]}
		}
		entries = append(entries, entry{c.prefix + p.Name, shape, v})
		return v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range c.extra {
		entries = append(entries, entry{name, []int64{int64(len(v))}, v})
	}
	dtype := cmpOr(c.dtype, "F32")
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, e := range entries {
		start := len(data)
		for _, x := range e.data {
			if dtype == "BF16" {
				data = binary.LittleEndian.AppendUint16(data, uint16(math.Float32bits(x)>>16))
			} else {
				data = binary.LittleEndian.AppendUint32(data, math.Float32bits(x))
			}
		}
		header[e.name] = map[string]any{"dtype": dtype, "shape": e.shape, "data_offsets": []int{start, len(data)}}
	}
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	st := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	st = append(append(st, hb...), data...)
	writeFile(t, dir, "model.safetensors", st)

	conf := map[string]any{
		"architectures": []string{"BertModel"}, "model_type": "bert", "vocab_size": cfg.VocabSize,
		"hidden_size": cfg.Hidden, "num_hidden_layers": cfg.Layers, "num_attention_heads": cfg.Heads,
		"intermediate_size": cfg.Intermediate, "max_position_embeddings": cfg.MaxPositions,
		"type_vocab_size": cfg.TypeVocabSize, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
		"position_embedding_type": "absolute",
	}
	for k, v := range c.config {
		conf[k] = v
	}
	writeJSON(t, dir, "config.json", conf)

	// testmodel's tokenizer.json, given HuggingFace's form: one lowercasing
	// BertNormalizer and fixed padding and truncation.
	files, err := testmodel.Files(testmodel.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	if err := json.Unmarshal(files[testmodel.TokenizerFile], &tok); err != nil {
		t.Fatal(err)
	}
	tok["normalizer"] = map[string]any{"type": "BertNormalizer", "clean_text": true,
		"handle_chinese_chars": true, "strip_accents": nil, "lowercase": true}
	tok["truncation"] = map[string]any{"max_length": 128, "strategy": "LongestFirst", "stride": 0}
	tok["padding"] = map[string]any{"strategy": map[string]any{"Fixed": 128}, "direction": "Right",
		"pad_to_multiple_of": nil, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}
	writeJSON(t, dir, "tokenizer.json", tok)

	if c.pooling != nil {
		writeJSON(t, dir, "modules.json", []map[string]any{
			{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
			{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
			{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
		})
		pc := map[string]any{"word_embedding_dimension": cfg.Hidden}
		for k, v := range c.pooling {
			pc["pooling_mode_"+k] = v
		}
		writeJSON(t, dir, "1_Pooling/config.json", pc)
	}
	return dir
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func writeFile(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, dir, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, name, b)
}

var meanPooling = map[string]bool{"mean_tokens": true, "cls_token": false, "max_tokens": false}

// Converting a checkpoint gives exactly the model Build writes from the same
// weights: names, prefix and the nn.Linear transpose are right.
func TestConvertEqualsBuild(t *testing.T) {
	cfg := tinyConfig(t)
	want, err := bertonnx.Build(cfg, pseudoWeights)
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"", "bert."} {
		src := checkpoint{prefix: prefix, pooling: meanPooling, extra: map[string][]float32{
			prefix + "embeddings.position_ids": {0, 1, 2}, // a buffer, ignored
			prefix + "pooler.dense.bias":       {1, 2},    // the pooler, ignored
		}}.write(t, cfg)
		dst := filepath.Join(t.TempDir(), "out")
		c, err := bertonnx.Convert(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dst, bertonnx.ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("prefix %q: converted model.onnx (%d bytes) differs from Build's (%d bytes)", prefix, len(got), len(want))
		}
		if c.Prefix != prefix || c.Pooling != "mean" || !c.Normalized {
			t.Errorf("prefix %q: Converted = %+v", prefix, c)
		}
		if _, err := onnx.Parse(got); err != nil {
			t.Fatal(err)
		}
	}
}

// The converted directory loads in the embedder; accents and case do not
// change a vector (the normalizer was split for sugarme's tokenizer); the
// fixed padding is gone (a short text is not padded to 128).
func TestConvertedModelEmbeds(t *testing.T) {
	cfg := tinyConfig(t)
	src := checkpoint{pooling: meanPooling}.write(t, cfg)
	dst := filepath.Join(t.TempDir(), "out")
	c, err := bertonnx.Convert(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Tokenizer, "padding removed") || !strings.Contains(c.Tokenizer, "NFD") {
		t.Errorf("tokenizer changes: %q", c.Tokenizer)
	}
	e, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: dst})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Dim() != cfg.Hidden {
		t.Errorf("Dim() = %d, want %d", e.Dim(), cfg.Hidden)
	}
	v, err := e.Embed(context.Background(), []string{"Pokémon Booster Box", "pokemon booster box", "vintage rolex watch"})
	if err != nil {
		t.Fatal(err)
	}
	var diff, dot float64
	for i := range v[0] {
		diff = max(diff, math.Abs(float64(v[0][i]-v[1][i])))
		dot += float64(v[0][i]) * float64(v[2][i])
	}
	if diff > 1e-6 {
		t.Errorf("accented/cased text differs by %g", diff)
	}
	if dot > 0.9999 {
		t.Errorf("different texts embed alike (cosine %g)", dot)
	}
}

// Half-precision checkpoints are widened: BF16 of the same weights gives the
// F32 model within BF16 rounding.
func TestConvertBF16(t *testing.T) {
	cfg := tinyConfig(t)
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := bertonnx.Convert(checkpoint{pooling: meanPooling, dtype: "BF16"}.write(t, cfg), dst); err != nil {
		t.Fatal(err)
	}
	e, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: dst})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
}

func TestConvertRefuses(t *testing.T) {
	cfg := tinyConfig(t)
	cases := map[string]checkpoint{
		"cls pooling":    {pooling: map[string]bool{"cls_token": true, "mean_tokens": false}},
		"no mean":        {pooling: map[string]bool{"mean_tokens": false}},
		"relu":           {pooling: meanPooling, config: map[string]any{"hidden_act": "relu"}},
		"not bert":       {pooling: meanPooling, config: map[string]any{"model_type": "roberta"}},
		"relative pos":   {pooling: meanPooling, config: map[string]any{"position_embedding_type": "relative_key"}},
		"wrong hidden":   {pooling: meanPooling, config: map[string]any{"hidden_size": 64}},
		"unknown tensor": {pooling: meanPooling, extra: map[string][]float32{"classifier.weight": {1}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := bertonnx.Convert(c.write(t, cfg), filepath.Join(t.TempDir(), "out"))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
		})
	}
	// A plain BERT without modules.json is accepted (hugot mean-pools).
	if _, err := bertonnx.Convert(checkpoint{}.write(t, cfg), filepath.Join(t.TempDir(), "out")); err != nil {
		t.Errorf("plain BERT: %v", err)
	}
}

func TestParseSafetensorsRejectsBadFiles(t *testing.T) {
	header := func(h string) []byte {
		return append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), h...)
	}
	cases := map[string][]byte{
		"short":          {1, 2, 3},
		"header too big": binary.LittleEndian.AppendUint64(nil, 1<<40),
		"not json":       header("{nope"),
		"out of range":   header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`),
		"size mismatch":  append(header(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`), make([]byte, 8)...),
		"negative dim":   append(header(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`), make([]byte, 8)...),
	}
	for name, b := range cases {
		if _, err := bertonnx.ParseSafetensors(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ok := append(header(`{"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}`),
		0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c, 1, 0, 0, 0, 0, 0, 0, 0)
	st, err := bertonnx.ParseSafetensors(ok)
	if err != nil {
		t.Fatal(err)
	}
	v, shape, err := st.Float32("a")
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, -2, float32(math.Ldexp(1, -24)), float32(math.Inf(1))}
	if !slices.Equal(v, want) || !slices.Equal(shape, []int64{4}) {
		t.Errorf("F16 a = %v %v, want %v [4]", v, shape, want)
	}
	if _, _, err := st.Float32("b"); err == nil {
		t.Error("I64 read as float32")
	}
	if !slices.Equal(st.Names(), []string{"a", "b"}) {
		t.Errorf("Names() = %v", st.Names())
	}
}
