package testmodel_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/onnx-gomlx/onnx"
	"github.com/sugarme/tokenizer/pretrained"

	"github.com/livefeed/livefeed/models/testmodel"
)

var fileNames = []string{testmodel.ModelFile, testmodel.TokenizerFile, testmodel.ConfigFile}

func TestWriteIsDeterministic(t *testing.T) {
	opt := testmodel.DefaultOptions()
	a, b := t.TempDir(), t.TempDir()
	if err := testmodel.Write(a, opt); err != nil {
		t.Fatal(err)
	}
	if err := testmodel.Write(b, opt); err != nil {
		t.Fatal(err)
	}
	for _, name := range fileNames {
		fa, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		fb, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(fa) == 0 || !bytes.Equal(fa, fb) {
			t.Errorf("%s differs between two writes with the same options (%d vs %d bytes)", name, len(fa), len(fb))
		}
	}
	entries, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(fileNames) {
		t.Errorf("Write left %d entries, want %d (temporary files left behind?)", len(entries), len(fileNames))
	}
}

func TestSeedChangesWeightsOnly(t *testing.T) {
	opt := testmodel.DefaultOptions()
	a, err := testmodel.Files(opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Seed++
	b, err := testmodel.Files(opt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[testmodel.ModelFile], b[testmodel.ModelFile]) {
		t.Error("model.onnx identical for different seeds")
	}
	if len(a[testmodel.ModelFile]) != len(b[testmodel.ModelFile]) {
		t.Error("model.onnx size depends on the seed")
	}
	if !bytes.Equal(a[testmodel.TokenizerFile], b[testmodel.TokenizerFile]) {
		t.Error("tokenizer.json depends on the seed")
	}
}

func TestOptionsValidation(t *testing.T) {
	bad := []testmodel.Options{
		{Seed: 1, Hidden: 64, Layers: 2, Heads: 5, MaxPositions: 128}, // 64 % 5 != 0
		{Seed: 1, Hidden: 0, Layers: 2, Heads: 4, MaxPositions: 128},
		{Seed: 1, Hidden: 64, Layers: 0, Heads: 4, MaxPositions: 128},
		{Seed: 1, Hidden: 64, Layers: 2, Heads: 4, MaxPositions: 2},
	}
	for _, opt := range bad {
		if err := testmodel.Write(t.TempDir(), opt); err == nil {
			t.Errorf("Write(%+v) succeeded, want an error", opt)
		}
	}
}

func TestVocabulary(t *testing.T) {
	v := testmodel.Vocabulary()
	want := []string{testmodel.PadToken, testmodel.UnkToken, testmodel.ClsToken, testmodel.SepToken, testmodel.MaskToken}
	if !slices.Equal(v[:5], want) {
		t.Errorf("special tokens = %q, want %q", v[:5], want)
	}
	if len(v) < 250 || len(v) > 500 {
		t.Errorf("vocabulary has %d entries, want about 300", len(v))
	}
	seen := map[string]bool{}
	for _, w := range v {
		if seen[w] {
			t.Errorf("duplicate %q", w)
		}
		seen[w] = true
		if w != strings.ToLower(w) && !strings.HasPrefix(w, "[") {
			t.Errorf("%q is not lowercase: the normalizer lowercases, it would never match", w)
		}
	}
	for _, w := range []string{"pokemon", "booster", "box", "trading", "cards", "sneakers", "jordan",
		"vintage", "watches", "rolex", "handbags", "comics", "coins", "jewelry", "funko", "sports",
		"basketball", "football", "graded", "psa"} {
		if !seen[w] {
			t.Errorf("vocabulary lacks %q", w)
		}
	}
}

func TestTokenizer(t *testing.T) {
	files, err := testmodel.Files(testmodel.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	tk, err := pretrained.FromReader(bytes.NewReader(files[testmodel.TokenizerFile]))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{
		"Pokémon Booster BOX!":      {"[CLS]", "pokemon", "booster", "box", "!", "[SEP]"},
		"Vintage Rolex, 1999":       {"[CLS]", "vintage", "rolex", ",", "1", "##9", "##9", "##9", "[SEP]"},
		"Hermès handbags":           {"[CLS]", "hermes", "handbags", "[SEP]"},
		"boosters qwzx":             {"[CLS]", "booster", "##s", "[UNK]", "[SEP]"},
		"":                          {"[CLS]", "[SEP]"},
		"PSA 10 graded Charizard 🙂": {"[CLS]", "psa", "10", "graded", "charizard", "[UNK]", "[SEP]"},
	}
	for text, want := range cases {
		enc, err := tk.EncodeSingle(text, true)
		if err != nil {
			t.Errorf("EncodeSingle(%q): %v", text, err)
			continue
		}
		if !slices.Equal(enc.Tokens, want) {
			t.Errorf("EncodeSingle(%q) = %q, want %q", text, enc.Tokens, want)
		}
		for i, m := range enc.AttentionMask {
			if m != 1 || enc.TypeIds[i] != 0 {
				t.Errorf("EncodeSingle(%q): mask %v, type ids %v", text, enc.AttentionMask, enc.TypeIds)
				break
			}
		}
	}
}

func TestONNXParses(t *testing.T) {
	opt := testmodel.DefaultOptions()
	files, err := testmodel.Files(opt)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Parse(files[testmodel.ModelFile])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"input_ids", "attention_mask", "token_type_ids"}; !slices.Equal(m.InputsNames, want) {
		t.Errorf("inputs %q, want %q", m.InputsNames, want)
	}
	if !slices.Equal(m.OutputsNames, []string{"last_hidden_state"}) {
		t.Errorf("outputs %q", m.OutputsNames)
	}
	if d := m.OutputsShapes[0].Dimensions; len(d) != 3 || d[2] != opt.Hidden {
		t.Errorf("output shape %v, want [batch, seq, %d]", m.OutputsShapes[0], opt.Hidden)
	}
}

func TestEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "model")
	if testmodel.Exists(dir) {
		t.Fatal("Exists before Ensure")
	}
	if err := testmodel.Ensure(dir, testmodel.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if !testmodel.Exists(dir) {
		t.Fatal("not Exists after Ensure")
	}
	// An existing model is kept as is.
	marker := []byte("not rewritten")
	if err := os.WriteFile(filepath.Join(dir, testmodel.ConfigFile), marker, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := testmodel.Ensure(dir, testmodel.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, testmodel.ConfigFile)); !bytes.Equal(got, marker) {
		t.Error("Ensure rewrote an existing model")
	}
	// A missing file is regenerated.
	if err := os.Remove(filepath.Join(dir, testmodel.TokenizerFile)); err != nil {
		t.Fatal(err)
	}
	if err := testmodel.Ensure(dir, testmodel.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if !testmodel.Exists(dir) {
		t.Error("Ensure did not complete a partial model")
	}
}
