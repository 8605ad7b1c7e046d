package bertonnx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files written by Convert.
const (
	ModelFile     = "model.onnx"
	TokenizerFile = "tokenizer.json"
	ConfigFile    = "config.json"
)

// ConverterVersion is written into the converted model's producer_version;
// bump it when Convert's output changes for the same input.
const ConverterVersion = "1"

// Converted describes what Convert wrote.
type Converted struct {
	Config     Config
	Params     int    // number of weights (floats) in the ONNX model
	Prefix     string // state-dict prefix stripped from the checkpoint's names ("" or "bert.")
	Pooling    string // "mean" (from 1_Pooling/config.json), or "" if the model has no modules.json
	Normalized bool   // the sentence-transformers pipeline ends with Normalize
	Tokenizer  string // what was changed in tokenizer.json
}

// Convert turns a HuggingFace BERT checkpoint (a sentence-transformers model
// directory: config.json, model.safetensors, tokenizer.json, and optionally
// modules.json with a mean-pooling module) into a model directory for
// models.NewHugotEmbedder: model.onnx, tokenizer.json and config.json in dst.
//
// The sentence-transformers pipeline must be Transformer → mean Pooling
// (→ Normalize): hugot mean-pools last_hidden_state with the attention mask
// and the embedder L2-normalises, so that is what it reproduces; CLS pooling
// or Dense layers are refused. tokenizer.json is adjusted for hugot's Go
// tokenizer: fixed padding and truncation are removed (the embedder truncates
// and hugot pads per batch), and a lowercasing BertNormalizer is split into
// NFD, BertNormalizer and StripAccents, without which sugarme/tokenizer maps
// accented words to [UNK].
func Convert(src, dst string) (Converted, error) {
	var out Converted
	cfgBytes, err := os.ReadFile(filepath.Join(src, ConfigFile))
	if err != nil {
		return out, fmt.Errorf("bertonnx: %w", err)
	}
	out.Config, err = parseBertConfig(cfgBytes)
	if err != nil {
		return out, fmt.Errorf("bertonnx: %s: %w", ConfigFile, err)
	}
	out.Pooling, out.Normalized, err = checkPipeline(src)
	if err != nil {
		return out, fmt.Errorf("bertonnx: %w", err)
	}
	tokBytes, err := os.ReadFile(filepath.Join(src, TokenizerFile))
	if err != nil {
		return out, fmt.Errorf("bertonnx: %w", err)
	}
	tokBytes, out.Tokenizer, err = adaptTokenizer(tokBytes)
	if err != nil {
		return out, fmt.Errorf("bertonnx: %s: %w", TokenizerFile, err)
	}

	st, err := ReadSafetensors(filepath.Join(src, "model.safetensors"))
	if err != nil {
		return out, fmt.Errorf("bertonnx: %w", err)
	}
	for _, prefix := range []string{"", "bert."} {
		if _, ok := st.Shape(prefix + "embeddings.word_embeddings.weight"); ok {
			out.Prefix = prefix
			break
		}
	}
	used := map[string]bool{}
	weights := func(p Param) ([]float32, error) {
		name := out.Prefix + p.Name
		values, shape, err := st.Float32(name)
		if err != nil {
			return nil, err
		}
		used[name] = true
		want := p.Dims
		if p.Kind == Linear { // PyTorch stores nn.Linear.weight as [out, in]
			want = []int64{p.Dims[1], p.Dims[0]}
		}
		if !equalDims(shape, want) {
			return nil, fmt.Errorf("shape %v, want %v", shape, want)
		}
		if p.Kind == Linear {
			values = transpose(values, int(want[0]), int(want[1]))
		}
		out.Params += len(values)
		return values, nil
	}
	out.Config.ProducerName = "livefeed-bertonnx"
	out.Config.ProducerVersion = ConverterVersion
	model, err := Build(out.Config, weights)
	if err != nil {
		return out, err
	}
	// Weights the graph did not use would be silently dropped: only buffers
	// (position_ids) and a pooler (not part of last_hidden_state) may be.
	for _, name := range st.Names() {
		rest := strings.TrimPrefix(name, out.Prefix)
		if used[name] || rest == "embeddings.position_ids" || strings.HasPrefix(rest, "pooler.") {
			continue
		}
		return out, fmt.Errorf("bertonnx: checkpoint tensor %s is not part of a BERT encoder", name)
	}

	if err := os.MkdirAll(dst, 0o755); err != nil {
		return out, fmt.Errorf("bertonnx: %w", err)
	}
	// The model last, so a complete model.onnx implies the rest.
	for _, f := range []struct {
		name string
		data []byte
	}{{ConfigFile, cfgBytes}, {TokenizerFile, tokBytes}, {ModelFile, model}} {
		if err := WriteFileAtomic(filepath.Join(dst, f.name), f.data); err != nil {
			return out, fmt.Errorf("bertonnx: %w", err)
		}
	}
	return out, nil
}

func equalDims(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// transpose returns the [cols, rows] transpose of a row-major [rows, cols].
func transpose(v []float32, rows, cols int) []float32 {
	out := make([]float32, len(v))
	for r := range rows {
		for c := range cols {
			out[c*rows+r] = v[r*cols+c]
		}
	}
	return out
}

// hfBertConfig is the part of a HuggingFace BertConfig Convert reads.
type hfBertConfig struct {
	ModelType             string   `json:"model_type"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	IntermediateSize      int      `json:"intermediate_size"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	TypeVocabSize         int      `json:"type_vocab_size"`
	LayerNormEps          *float64 `json:"layer_norm_eps"`
	HiddenAct             string   `json:"hidden_act"`
	PositionEmbeddingType string   `json:"position_embedding_type"`
}

func parseBertConfig(b []byte) (Config, error) {
	var hc hfBertConfig
	if err := json.Unmarshal(b, &hc); err != nil {
		return Config{}, err
	}
	switch {
	case hc.ModelType != "bert":
		return Config{}, fmt.Errorf("model_type %q, want \"bert\"", hc.ModelType)
	case hc.HiddenAct != "gelu":
		return Config{}, fmt.Errorf("hidden_act %q, want \"gelu\" (exact, erf-based)", hc.HiddenAct)
	case hc.PositionEmbeddingType != "" && hc.PositionEmbeddingType != "absolute":
		return Config{}, fmt.Errorf("position_embedding_type %q, want \"absolute\"", hc.PositionEmbeddingType)
	}
	cfg := Config{
		VocabSize:     hc.VocabSize,
		Hidden:        hc.HiddenSize,
		Layers:        hc.NumHiddenLayers,
		Heads:         hc.NumAttentionHeads,
		Intermediate:  hc.IntermediateSize,
		MaxPositions:  hc.MaxPositionEmbeddings,
		TypeVocabSize: hc.TypeVocabSize,
		LayerNormEps:  1e-12, // BertConfig's default
	}
	if hc.LayerNormEps != nil {
		cfg.LayerNormEps = float32(*hc.LayerNormEps)
	}
	return cfg, cfg.validate()
}

// checkPipeline reads a sentence-transformers modules.json, if there is one,
// and accepts Transformer → Pooling (mean only) → optional Normalize.
func checkPipeline(src string) (pooling string, normalized bool, err error) {
	b, err := os.ReadFile(filepath.Join(src, "modules.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var modules []struct {
		Path string `json:"path"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(b, &modules); err != nil {
		return "", false, fmt.Errorf("modules.json: %w", err)
	}
	for _, m := range modules {
		kind := m.Type[strings.LastIndex(m.Type, ".")+1:]
		switch kind {
		case "Transformer":
		case "Normalize":
			normalized = true
		case "Pooling":
			pb, err := os.ReadFile(filepath.Join(src, m.Path, "config.json"))
			if err != nil {
				return "", false, fmt.Errorf("pooling config: %w", err)
			}
			var pc map[string]any
			if err := json.Unmarshal(pb, &pc); err != nil {
				return "", false, fmt.Errorf("pooling config: %w", err)
			}
			for k, v := range pc {
				on, _ := v.(bool)
				if strings.HasPrefix(k, "pooling_mode_") && on && k != "pooling_mode_mean_tokens" {
					return "", false, fmt.Errorf("pooling %s: hugot only mean-pools", strings.TrimPrefix(k, "pooling_mode_"))
				}
			}
			if on, _ := pc["pooling_mode_mean_tokens"].(bool); !on {
				return "", false, errors.New("pooling is not mean pooling: hugot only mean-pools")
			}
			pooling = "mean"
		default:
			return "", false, fmt.Errorf("sentence-transformers module %s is not supported (only Transformer, mean Pooling, Normalize)", m.Type)
		}
	}
	if pooling == "" {
		return "", false, errors.New("modules.json has no Pooling module")
	}
	return pooling, normalized, nil
}

// adaptTokenizer removes fixed truncation and padding and splits a
// lowercasing (so accent-stripping) BertNormalizer into NFD, BertNormalizer
// without accent stripping, and StripAccents.
func adaptTokenizer(b []byte) ([]byte, string, error) {
	var tf map[string]json.RawMessage
	if err := json.Unmarshal(b, &tf); err != nil {
		return nil, "", err
	}
	var changes []string
	for _, key := range []string{"truncation", "padding"} {
		if v, ok := tf[key]; ok && string(bytes.TrimSpace(v)) != "null" {
			tf[key] = json.RawMessage("null")
			changes = append(changes, key+" removed")
		}
	}
	var norm struct {
		Type               string `json:"type"`
		CleanText          bool   `json:"clean_text"`
		HandleChineseChars bool   `json:"handle_chinese_chars"`
		StripAccents       *bool  `json:"strip_accents"`
		Lowercase          bool   `json:"lowercase"`
	}
	if raw, ok := tf["normalizer"]; ok {
		if err := json.Unmarshal(raw, &norm); err != nil {
			return nil, "", fmt.Errorf("normalizer: %w", err)
		}
	}
	// HuggingFace strips accents when strip_accents is true, or null and
	// lowercase is on.
	if norm.Type == "BertNormalizer" && (norm.StripAccents != nil && *norm.StripAccents ||
		norm.StripAccents == nil && norm.Lowercase) {
		seq := map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "NFD"},
			map[string]any{"type": "BertNormalizer", "clean_text": norm.CleanText,
				"handle_chinese_chars": norm.HandleChineseChars, "strip_accents": false, "lowercase": norm.Lowercase},
			map[string]any{"type": "StripAccents"},
		}}
		raw, err := json.Marshal(seq)
		if err != nil {
			return nil, "", err
		}
		tf["normalizer"] = raw
		changes = append(changes, "normalizer split into NFD, BertNormalizer, StripAccents")
	}
	out, err := json.Marshal(tf)
	if err != nil {
		return nil, "", err
	}
	if len(changes) == 0 {
		return out, "unchanged", nil
	}
	return out, strings.Join(changes, "; "), nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so a reader never sees a half-written model file.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
