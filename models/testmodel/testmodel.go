// Package testmodel generates a small but real BERT-style sentence encoder:
// an ONNX model (opset 17) with random weights, a HuggingFace tokenizer.json
// (BERT WordPiece) and a config.json, loadable by hugot's pure-Go backend.
// The graph is package bertonnx's, the one real checkpoints are converted to.
//
// The weights are random, so the model knows nothing about language; but the
// word embeddings are large (std 1) next to the transformer branches, so after
// mean pooling a text is close to the texts that share its words. That is
// enough for ranking tests and for a demo without downloading a model.
//
// The output is deterministic: the same Options give byte-identical files.
package testmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/livefeed/livefeed/models/bertonnx"
)

// File names written by Write.
const (
	ModelFile     = "model.onnx"
	TokenizerFile = "tokenizer.json"
	ConfigFile    = "config.json"
)

// generatorVersion is written into the ONNX producer_version and config.json;
// bump it when the generated graph or vocabulary changes.
const generatorVersion = "1"

// Options shape the generated model.
type Options struct {
	Seed         int64 // seed of the weight generator
	Hidden       int   // hidden size; a multiple of Heads
	Layers       int   // transformer layers
	Heads        int   // attention heads
	MaxPositions int   // max_position_embeddings: longest token sequence
}

// DefaultOptions: hidden 64, 2 layers, 4 heads, 512 positions. About 650 KB
// on disk; loads in well under a second.
func DefaultOptions() Options {
	return Options{Seed: 1, Hidden: 64, Layers: 2, Heads: 4, MaxPositions: 512}
}

func (o Options) validate() error {
	switch {
	case o.Hidden <= 0 || o.Layers <= 0 || o.Heads <= 0 || o.MaxPositions <= 0:
		return fmt.Errorf("testmodel: Hidden, Layers, Heads and MaxPositions must be positive, got %+v", o)
	case o.Hidden%o.Heads != 0:
		return fmt.Errorf("testmodel: Hidden (%d) must be a multiple of Heads (%d)", o.Hidden, o.Heads)
	case o.MaxPositions < 3:
		return fmt.Errorf("testmodel: MaxPositions must be at least 3 ([CLS] word [SEP]), got %d", o.MaxPositions)
	}
	return nil
}

// Files returns the contents of model.onnx, tokenizer.json and config.json.
func Files(opt Options) (map[string][]byte, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	vocab := Vocabulary()
	seen := make(map[string]bool, len(vocab))
	for _, w := range vocab {
		if seen[w] {
			return nil, fmt.Errorf("testmodel: duplicate vocabulary entry %q", w)
		}
		seen[w] = true
	}
	tok, err := tokenizerJSON(vocab)
	if err != nil {
		return nil, err
	}
	cfg, err := configJSON(opt, len(vocab))
	if err != nil {
		return nil, err
	}
	model, err := bertonnx.Build(opt.bertConfig(len(vocab)), randomWeights(&rng{state: uint64(opt.Seed)}))
	if err != nil {
		return nil, fmt.Errorf("testmodel: %w", err)
	}
	return map[string][]byte{
		ModelFile:     model,
		TokenizerFile: tok,
		ConfigFile:    cfg,
	}, nil
}

// Write generates the model into dir (created if needed), replacing the three
// files if they exist. Each file is written to a temporary name and renamed,
// so a reader never sees a half-written file.
func Write(dir string, opt Options) error {
	files, err := Files(opt)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	// Fixed order: the model last, so a complete model.onnx implies the rest.
	for _, name := range []string{ConfigFile, TokenizerFile, ModelFile} {
		if err := bertonnx.WriteFileAtomic(filepath.Join(dir, name), files[name]); err != nil {
			return fmt.Errorf("testmodel: %w", err)
		}
	}
	return nil
}

// Exists reports whether dir holds the three files Write produces.
func Exists(dir string) bool {
	for _, name := range []string{ConfigFile, TokenizerFile, ModelFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
			return false
		}
	}
	return true
}

// Ensure generates the model with opt into dir unless dir already holds one
// (see Exists; an existing model is not checked against opt).
func Ensure(dir string, opt Options) error {
	if Exists(dir) {
		return nil
	}
	return Write(dir, opt)
}

// --- tokenizer.json ---------------------------------------------------------

type addedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type typed struct {
	Type string `json:"type"`
}

type bertNormalizer struct {
	Type               string `json:"type"`
	CleanText          bool   `json:"clean_text"`
	HandleChineseChars bool   `json:"handle_chinese_chars"`
	StripAccents       bool   `json:"strip_accents"`
	Lowercase          bool   `json:"lowercase"`
}

type sequenceNormalizer struct {
	Type        string `json:"type"`
	Normalizers []any  `json:"normalizers"`
}

type templatePiece struct {
	SpecialToken *templateRef `json:"SpecialToken,omitempty"`
	Sequence     *templateRef `json:"Sequence,omitempty"`
}

type templateRef struct {
	ID     string `json:"id"`
	TypeID int    `json:"type_id"`
}

type templateSpecial struct {
	ID     string   `json:"id"`
	IDs    []int    `json:"ids"`
	Tokens []string `json:"tokens"`
}

type templateProcessing struct {
	Type          string                     `json:"type"`
	Single        []templatePiece            `json:"single"`
	Pair          []templatePiece            `json:"pair"`
	SpecialTokens map[string]templateSpecial `json:"special_tokens"` // encoding/json sorts keys
}

type wordPieceDecoder struct {
	Type    string `json:"type"`
	Prefix  string `json:"prefix"`
	Cleanup bool   `json:"cleanup"`
}

// orderedVocab marshals as a JSON object in id order (token -> id).
type orderedVocab []string

func (v orderedVocab) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, w := range v {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(w)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.WriteString(strconv.Itoa(i))
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

type wordPieceModel struct {
	Type                    string       `json:"type"`
	UnkToken                string       `json:"unk_token"`
	ContinuingSubwordPrefix string       `json:"continuing_subword_prefix"`
	MaxInputCharsPerWord    int          `json:"max_input_chars_per_word"`
	Vocab                   orderedVocab `json:"vocab"`
}

type tokenizerFile struct {
	Version       string             `json:"version"`
	Truncation    any                `json:"truncation"`
	Padding       any                `json:"padding"`
	AddedTokens   []addedToken       `json:"added_tokens"`
	Normalizer    sequenceNormalizer `json:"normalizer"`
	PreTokenizer  typed              `json:"pre_tokenizer"`
	PostProcessor templateProcessing `json:"post_processor"`
	Decoder       wordPieceDecoder   `json:"decoder"`
	Model         wordPieceModel     `json:"model"`
}

func tokenizerJSON(vocab []string) ([]byte, error) {
	id := func(tok string) int {
		for i, w := range vocab {
			if w == tok {
				return i
			}
		}
		panic("testmodel: special token missing from vocabulary: " + tok)
	}
	var added []addedToken
	for _, t := range specialTokens {
		added = append(added, addedToken{ID: id(t), Content: t, Special: true})
	}
	special := func(tok string, typeID int) templatePiece {
		return templatePiece{SpecialToken: &templateRef{ID: tok, TypeID: typeID}}
	}
	seq := func(name string, typeID int) templatePiece {
		return templatePiece{Sequence: &templateRef{ID: name, TypeID: typeID}}
	}
	tf := tokenizerFile{
		Version:     "1.0",
		AddedTokens: added,
		// sugarme/tokenizer leaves accented letters unknown unless accents are
		// stripped by a separate NFD + StripAccents around a BertNormalizer
		// that does not strip them itself.
		Normalizer: sequenceNormalizer{Type: "Sequence", Normalizers: []any{
			typed{Type: "NFD"},
			bertNormalizer{Type: "BertNormalizer", CleanText: true, HandleChineseChars: true, StripAccents: false, Lowercase: true},
			typed{Type: "StripAccents"},
		}},
		PreTokenizer: typed{Type: "BertPreTokenizer"},
		PostProcessor: templateProcessing{
			Type:   "TemplateProcessing",
			Single: []templatePiece{special(ClsToken, 0), seq("A", 0), special(SepToken, 0)},
			Pair: []templatePiece{special(ClsToken, 0), seq("A", 0), special(SepToken, 0),
				seq("B", 1), special(SepToken, 1)},
			SpecialTokens: map[string]templateSpecial{
				ClsToken: {ID: ClsToken, IDs: []int{id(ClsToken)}, Tokens: []string{ClsToken}},
				SepToken: {ID: SepToken, IDs: []int{id(SepToken)}, Tokens: []string{SepToken}},
			},
		},
		Decoder: wordPieceDecoder{Type: "WordPiece", Prefix: "##", Cleanup: true},
		Model: wordPieceModel{
			Type: "WordPiece", UnkToken: UnkToken, ContinuingSubwordPrefix: "##",
			MaxInputCharsPerWord: 100, Vocab: vocab,
		},
	}
	out, err := json.MarshalIndent(tf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("testmodel: tokenizer.json: %w", err)
	}
	return append(out, '\n'), nil
}

// --- config.json ------------------------------------------------------------

type bertConfig struct {
	Architectures             []string `json:"architectures"`
	ModelType                 string   `json:"model_type"`
	VocabSize                 int      `json:"vocab_size"`
	HiddenSize                int      `json:"hidden_size"`
	NumHiddenLayers           int      `json:"num_hidden_layers"`
	NumAttentionHeads         int      `json:"num_attention_heads"`
	IntermediateSize          int      `json:"intermediate_size"`
	HiddenAct                 string   `json:"hidden_act"`
	MaxPositionEmbeddings     int      `json:"max_position_embeddings"`
	TypeVocabSize             int      `json:"type_vocab_size"`
	LayerNormEps              float64  `json:"layer_norm_eps"`
	PadTokenID                int      `json:"pad_token_id"`
	HiddenDropoutProb         float64  `json:"hidden_dropout_prob"`
	AttentionProbsDropoutProb float64  `json:"attention_probs_dropout_prob"`
	TorchDtype                string   `json:"torch_dtype"`
	Generator                 string   `json:"livefeed_generator"`
	Seed                      int64    `json:"livefeed_seed"`
}

func configJSON(opt Options, vocabSize int) ([]byte, error) {
	// No eos_token_id: hugot would switch to left padding for "generative" inputs.
	cfg := bertConfig{
		Architectures:         []string{"BertModel"},
		ModelType:             "bert",
		VocabSize:             vocabSize,
		HiddenSize:            opt.Hidden,
		NumHiddenLayers:       opt.Layers,
		NumAttentionHeads:     opt.Heads,
		IntermediateSize:      4 * opt.Hidden,
		HiddenAct:             "gelu",
		MaxPositionEmbeddings: opt.MaxPositions,
		TypeVocabSize:         2,
		LayerNormEps:          layerNormEps,
		TorchDtype:            "float32",
		Generator:             "livefeed-testmodel/" + generatorVersion,
		Seed:                  opt.Seed,
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("testmodel: config.json: %w", err)
	}
	return append(out, '\n'), nil
}
