package models_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/models/testmodel"
)

// hugotWriteModel generates a test model into a fresh temporary directory.
func hugotWriteModel(t testing.TB, opt testmodel.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "testmodel")
	if err := testmodel.Write(dir, opt); err != nil {
		t.Fatal(err)
	}
	return dir
}

func hugotNewEmbedder(t testing.TB, cfg models.HugotConfig) *models.HugotEmbedder {
	t.Helper()
	if cfg.ModelDir == "" {
		cfg.ModelDir = hugotWriteModel(t, testmodel.DefaultOptions())
	}
	e, err := models.NewHugotEmbedder(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func hugotEmbed(t testing.TB, e models.Embedder, texts ...string) [][]float32 {
	t.Helper()
	vecs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != len(texts) {
		t.Fatalf("got %d vectors for %d texts", len(vecs), len(texts))
	}
	return vecs
}

func hugotCosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func hugotMaxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

var hugotCorpus = []string{
	"pokemon booster box",
	"Pokemon trading cards, PSA 10 graded charizard",
	"vintage sneakers",
	"Air Jordan 1 retro high, size 10, brand new in box",
	"Rolex Submariner automatic watch with steel bracelet",
	"vintage Louis Vuitton handbag, authentic leather",
	"Marvel comics: Spiderman issue 1, variant cover",
	"Morgan silver dollar 1921 proof coin",
	"gold necklace with pearl pendant",
	"Funko pop vinyl figure mystery box",
	"live auction tonight: sports cards breaks, basketball and football",
	"LeBron rookie auto patch /99",
	"Nintendo video games bundle",
	"a", "the the the", "!!!",
	"sealed magic the gathering booster case, 6 boxes",
	"yugioh first edition holo",
	"free shipping on all deals today",
	"Topps chrome baseball hobby box",
	"Panini prizm football blaster",
	"Seiko quartz chronograph, black dial",
	"Chanel classic bag, black leather, gold chain",
	"designer streetwear hoodie, supreme",
	"lego set complete with original box",
	"antique gold coins bullion lot",
	"diamond earrings and ring",
	"Yeezy sneakers size 9",
	"Pokémon mega booster bundle — Japanese",
	"anime figures and plush toys",
	"DC comics Batman graded CGC 9.8",
	"Omega watch vintage 1960",
	"new Nike Dunk low",
	"one piece card game booster box",
	"giveaway every night at 8",
	"Hermès Birkin 30 in gold",
	"brand new iPhone in box",
	"records and vinyl collection",
	"hockey cards, upper deck young guns",
	"mystery pack rip live",
}

func TestHugotEmbedDimNormDeterminism(t *testing.T) {
	opt := testmodel.DefaultOptions()
	dir := hugotWriteModel(t, opt)
	e := hugotNewEmbedder(t, models.HugotConfig{ModelDir: dir})
	if e.Dim() != opt.Hidden {
		t.Fatalf("Dim() = %d, want %d", e.Dim(), opt.Hidden)
	}
	if v := e.Version(); !strings.HasPrefix(v, "testmodel-") || len(v) != len("testmodel-")+12 {
		t.Errorf("Version() = %q, want testmodel-<12 hex digits>", v)
	}
	first := hugotEmbed(t, e, hugotCorpus...)
	for i, v := range first {
		if len(v) != e.Dim() {
			t.Fatalf("vector %d has length %d", i, len(v))
		}
		if n := math.Sqrt(hugotCosine(v, v)); math.Abs(n-1) > 1e-5 {
			t.Errorf("vector %d (%q) has norm %v", i, hugotCorpus[i], n)
		}
	}
	// Same embedder, again.
	second := hugotEmbed(t, e, hugotCorpus...)
	for i := range first {
		if d := hugotMaxAbsDiff(first[i], second[i]); d != 0 {
			t.Errorf("text %d: second call differs by %g", i, d)
		}
	}
	// Another embedder on the same files: same vectors, same version.
	other := hugotNewEmbedder(t, models.HugotConfig{ModelDir: dir})
	if other.Version() != e.Version() {
		t.Errorf("versions differ for the same files: %q vs %q", other.Version(), e.Version())
	}
	third := hugotEmbed(t, other, hugotCorpus...)
	for i := range first {
		if d := hugotMaxAbsDiff(first[i], third[i]); d > 1e-6 {
			t.Errorf("text %d: another embedder differs by %g", i, d)
		}
	}
	// A different model has a different version.
	opt.Seed = 2
	if v := hugotNewEmbedder(t, models.HugotConfig{ModelDir: hugotWriteModel(t, opt)}).Version(); v == e.Version() {
		t.Errorf("different weights, same version %q", v)
	}
}

func TestHugotBatchEqualsOneByOne(t *testing.T) {
	// MaxBatch 16: 41 texts run as chunks of 16, 16, 8 and 1.
	e := hugotNewEmbedder(t, models.HugotConfig{MaxBatch: 16})
	texts := append([]string{strings.Repeat("pokemon booster box ", 20)}, hugotCorpus...)
	batch := hugotEmbed(t, e, texts...)
	for i, text := range texts {
		one := hugotEmbed(t, e, text)[0]
		if d := hugotMaxAbsDiff(batch[i], one); d > 1e-5 {
			t.Errorf("text %d (%q): batch and single differ by %g", i, text, d)
		}
	}
}

func TestHugotSharedWordsAreNearer(t *testing.T) {
	for seed := int64(1); seed <= 5; seed++ {
		opt := testmodel.DefaultOptions()
		opt.Seed = seed
		e := hugotNewEmbedder(t, models.HugotConfig{ModelDir: hugotWriteModel(t, opt)})
		v := hugotEmbed(t, e, "pokemon booster box", "pokemon trading cards", "vintage sneakers",
			"rolex submariner watch", "vintage rolex watch")
		near, far := hugotCosine(v[0], v[1]), hugotCosine(v[0], v[2])
		if near <= far {
			t.Errorf("seed %d: cos(booster box, trading cards) = %.3f, not above cos(booster box, sneakers) = %.3f",
				seed, near, far)
		}
		if a, b := hugotCosine(v[3], v[4]), hugotCosine(v[3], v[1]); a <= b {
			t.Errorf("seed %d: cos(rolex, vintage rolex) = %.3f, not above cos(rolex, trading cards) = %.3f", seed, a, b)
		}
		t.Logf("seed %d: near %.3f far %.3f", seed, near, far)
	}
}

func TestHugotAccentsAndCase(t *testing.T) {
	e := hugotNewEmbedder(t, models.HugotConfig{})
	v := hugotEmbed(t, e, "Pokémon Booster Box", "pokemon booster box", "POKEMON BOOSTER BOX", "Hermès", "hermes", "xyzzy")
	for i := 1; i <= 2; i++ {
		if d := hugotMaxAbsDiff(v[0], v[i]); d > 1e-6 {
			t.Errorf("accented/cased variant %d differs by %g", i, d)
		}
	}
	if d := hugotMaxAbsDiff(v[3], v[4]); d > 1e-6 {
		t.Errorf("Hermès vs hermes differ by %g", d)
	}
	// An unknown word ([UNK]) is not the same as an accented known word.
	if d := hugotMaxAbsDiff(v[3], v[5]); d < 1e-3 {
		t.Errorf("Hermès embeds like an unknown word")
	}
}

func TestHugotOddTexts(t *testing.T) {
	e := hugotNewEmbedder(t, models.HugotConfig{})
	texts := []string{
		"bad utf-8 \xff\xfe box",
		"日本語のテキスト",
		"emoji 🙂🔥 only",
		strings.Repeat("x", 5000),           // one very long word: [UNK]
		strings.Repeat("pokemon ", 100_000), // 800 KB: clipped before tokenizing
		"tabs\tand\nnewlines\r\n",
		"\u200b zero width",
	}
	start := time.Now()
	v := hugotEmbed(t, e, texts...)
	if time.Since(start) > 10*time.Second {
		t.Errorf("odd texts took %v", time.Since(start))
	}
	for i := range v {
		if n := math.Sqrt(hugotCosine(v[i], v[i])); math.Abs(n-1) > 1e-5 {
			t.Errorf("text %d: norm %v", i, n)
		}
	}
}

func TestHugotTruncation(t *testing.T) {
	e := hugotNewEmbedder(t, models.HugotConfig{MaxSeqLen: 8})
	if e.MaxSeqLen() != 8 {
		t.Fatalf("MaxSeqLen() = %d", e.MaxSeqLen())
	}
	// 8 tokens: [CLS] and the first 7 words; the tails differ.
	head := "pokemon booster box sealed graded psa gem "
	v := hugotEmbed(t, e, head+"mint rookie auto patch", head+"vintage rolex watch gold", "pokemon booster box")
	if d := hugotMaxAbsDiff(v[0], v[1]); d > 1e-6 {
		t.Errorf("texts equal in their first 7 words differ by %g after truncation to 8 tokens", d)
	}
	if d := hugotMaxAbsDiff(v[0], v[2]); d < 1e-3 {
		t.Errorf("truncation went too far")
	}
	// max_position_embeddings caps MaxSeqLen.
	opt := testmodel.DefaultOptions()
	opt.MaxPositions = 16
	small := hugotNewEmbedder(t, models.HugotConfig{ModelDir: hugotWriteModel(t, opt), MaxSeqLen: 128})
	if small.MaxSeqLen() != 16 {
		t.Errorf("MaxSeqLen() = %d, want 16 (max_position_embeddings)", small.MaxSeqLen())
	}
	hugotEmbed(t, small, strings.Repeat("box ", 100))
}

func TestHugotEmptyInput(t *testing.T) {
	e := hugotNewEmbedder(t, models.HugotConfig{})
	for _, texts := range [][]string{nil, {}, {""}, {"box", " \t\n"}} {
		v, err := e.Embed(context.Background(), texts)
		if !errors.Is(err, models.ErrEmptyText) {
			t.Errorf("Embed(%q) = %v, %v; want ErrEmptyText", texts, v, err)
		}
	}
	hugotEmbed(t, e, "still works")
}

func TestHugotCancellation(t *testing.T) {
	e := hugotNewEmbedder(t, models.HugotConfig{MaxBatch: 8})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, []string{"box"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
	// Cancelled after the first chunk of 8.
	cc := &hugotCancelAfter{Context: context.Background(), n: 1}
	if _, err := e.Embed(cc, hugotCorpus); !errors.Is(err, context.Canceled) {
		t.Errorf("context cancelled between chunks: err = %v", err)
	}
	if cc.calls.Load() != 2 {
		t.Errorf("ctx.Err() called %d times, want 2 (stopped after the first chunk)", cc.calls.Load())
	}
	hugotEmbed(t, e, "still works")
}

// hugotCancelAfter reports Canceled from its (n+1)-th call to Err on.
type hugotCancelAfter struct {
	context.Context
	n     int64
	calls atomic.Int64
}

func (c *hugotCancelAfter) Err() error {
	if c.calls.Add(1) > c.n {
		return context.Canceled
	}
	return nil
}

func TestHugotConcurrentCallers(t *testing.T) {
	e := hugotNewEmbedder(t, models.HugotConfig{})
	want := hugotEmbed(t, e, hugotCorpus...)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3 {
				i := (g*3 + k) % len(hugotCorpus)
				got, err := e.Embed(context.Background(), hugotCorpus[i:])
				if err != nil {
					errs <- err
					return
				}
				for j := range got {
					if d := hugotMaxAbsDiff(got[j], want[i+j]); d > 1e-5 {
						errs <- fmt.Errorf("text %d differs by %g under concurrency", i+j, d)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestHugotClose(t *testing.T) {
	e, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: hugotWriteModel(t, testmodel.DefaultOptions())})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.Embed(context.Background(), []string{"box"}); !errors.Is(err, models.ErrEmbedderClosed) {
		t.Errorf("Embed after Close: %v", err)
	}
}

func TestHugotBadModelDir(t *testing.T) {
	good := hugotWriteModel(t, testmodel.DefaultOptions())
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(good, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	onnxBytes, tokBytes := read(testmodel.ModelFile), read(testmodel.TokenizerFile)

	// dir builds a model directory from name -> content.
	dir := func(files map[string][]byte) string {
		d := t.TempDir()
		for name, content := range files {
			p := filepath.Join(d, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	noUnk := strings.Replace(string(tokBytes), `"[UNK]": 1,`, `"[UNK-GONE]": 1,`, 1)
	if noUnk == string(tokBytes) {
		t.Fatal("could not remove [UNK] from the vocabulary")
	}
	notBert := strings.ReplaceAll(string(onnxBytes), "input_ids", "input_idz")
	// Same length, so the protobuf stays valid; onnx-gomlx has no Elu.
	unsupported := strings.ReplaceAll(string(onnxBytes), "Erf", "Elu")

	cases := map[string]string{
		"missing":             filepath.Join(t.TempDir(), "nope"),
		"a file":              filepath.Join(dir(map[string][]byte{"f": []byte("x")}), "f"),
		"empty":               t.TempDir(),
		"no tokenizer":        dir(map[string][]byte{"model.onnx": onnxBytes}),
		"no onnx":             dir(map[string][]byte{"tokenizer.json": tokBytes}),
		"two onnx":            dir(map[string][]byte{"model.onnx": onnxBytes, "sub/other.onnx": onnxBytes, "tokenizer.json": tokBytes}),
		"tokenizer not json":  dir(map[string][]byte{"model.onnx": onnxBytes, "tokenizer.json": []byte("{not json")}),
		"tokenizer shape":     dir(map[string][]byte{"model.onnx": onnxBytes, "tokenizer.json": []byte(`{"model": {"type": "WordPiece"}, "normalizer": {"type": 7}}`)}),
		"tokenizer no [UNK]":  dir(map[string][]byte{"model.onnx": onnxBytes, "tokenizer.json": []byte(noUnk)}),
		"onnx garbage":        dir(map[string][]byte{"model.onnx": []byte("this is not a protobuf"), "tokenizer.json": tokBytes}),
		"onnx truncated":      dir(map[string][]byte{"model.onnx": onnxBytes[:len(onnxBytes)/2], "tokenizer.json": tokBytes}),
		"onnx wrong inputs":   dir(map[string][]byte{"model.onnx": []byte(notBert), "tokenizer.json": tokBytes}),
		"onnx unsupported op": dir(map[string][]byte{"model.onnx": []byte(unsupported), "tokenizer.json": tokBytes}),
		"config not json":     dir(map[string][]byte{"model.onnx": onnxBytes, "tokenizer.json": tokBytes, "config.json": []byte("[")}),
		"config bad position": dir(map[string][]byte{"model.onnx": onnxBytes, "tokenizer.json": tokBytes, "config.json": []byte(`{"max_position_embeddings": "x"}`)}),
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			e, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: d})
			if err == nil {
				e.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "loading model "+d) {
				t.Errorf("error %q does not name the model dir", err)
			}
			t.Log(err)
		})
	}
	if _, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{}); err == nil {
		t.Error("empty ModelDir: no error")
	}
	if _, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: good, MaxSeqLen: 1}); err == nil {
		t.Error("MaxSeqLen 1: no error")
	}
}

func TestHugotBackendChoice(t *testing.T) {
	dir := hugotWriteModel(t, testmodel.DefaultOptions())
	e := hugotNewEmbedder(t, models.HugotConfig{ModelDir: dir, Backend: models.BackendGo})
	hugotEmbed(t, e, "explicit go backend")
	if _, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: dir, Backend: "tpu"}); err == nil ||
		!strings.Contains(err.Error(), `unknown backend "tpu"`) {
		t.Errorf("unknown backend: err = %v", err)
	}
	if !models.ORTAvailable {
		_, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: dir, Backend: models.BackendORT})
		if err == nil || !strings.Contains(err.Error(), "-tags ORT") {
			t.Errorf("ort backend without the ORT build tag: err = %v", err)
		}
	}
}

func TestHugotEnsureTestModel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "model")
	got, err := models.EnsureTestModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got != dir {
		t.Errorf("EnsureTestModel returned %q, want %q", got, dir)
	}
	st, err := os.Stat(filepath.Join(dir, testmodel.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.EnsureTestModel(dir); err != nil {
		t.Fatal(err)
	}
	st2, err := os.Stat(filepath.Join(dir, testmodel.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if !st2.ModTime().Equal(st.ModTime()) {
		t.Error("second EnsureTestModel rewrote the model")
	}
	start := time.Now()
	e := hugotNewEmbedder(t, models.HugotConfig{ModelDir: dir})
	t.Logf("model %d bytes, loaded (with warm-up) in %v, version %s", st.Size(), time.Since(start), e.Version())
	hugotEmbed(t, e, "it loads")
}

func BenchmarkHugotEmbed(b *testing.B) {
	e := hugotNewEmbedder(b, models.HugotConfig{})
	for _, size := range []int{1, 32} {
		texts := make([]string, size)
		for i := range texts {
			texts[i] = hugotCorpus[i%len(hugotCorpus)]
		}
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			hugotEmbed(b, e, texts...) // compile this shape outside the timing
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Embed(context.Background(), texts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "sentences/s")
		})
	}
}

func BenchmarkHugotLoad(b *testing.B) {
	dir := hugotWriteModel(b, testmodel.DefaultOptions())
	for b.Loop() {
		e, err := models.NewHugotEmbedder(context.Background(), models.HugotConfig{ModelDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		e.Close()
	}
}
