package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/models/testmodel"
	"github.com/prometheus/client_golang/prometheus"
)

// TestModel as Config.ModelDir (`--model test`) selects the small generated
// random-weight test model (models/testmodel): its vectors are noise, fit
// for tests and the demo, never for ranking real traffic. A directory named
// "test" is given as ./test.
const TestModel = "test"

// usesTestModel: cfg runs the generated test model (ModelDir "test", or
// empty: the library's default for tests and the demo; the binary's
// process, serve and embed refuse an empty one).
func usesTestModel(cfg Config) bool {
	return cfg.ModelDir == "" || cfg.ModelDir == TestModel
}

// modelLabel names cfg's model in the livefeed_embedding_model_info metric:
// "test" for the generated model, else the model directory ("custom" for
// an Embedder given in Config).
func modelLabel(cfg Config) string {
	switch {
	case cfg.Embedder != nil && cfg.ModelDir == "":
		return "custom"
	case usesTestModel(cfg):
		return TestModel
	default:
		return cfg.ModelDir
	}
}

// loadEmbedder loads cfg's model, generating the test model into
// DataDir/models/livefeed-test when it is the one asked for. The test model
// is announced at warn level at every start.
func loadEmbedder(ctx context.Context, cfg Config) (*models.HugotEmbedder, error) {
	dir := cfg.ModelDir
	if usesTestModel(cfg) {
		dir = filepath.Join(cfg.DataDir, "models", "livefeed-test")
		cfg.Logger.Warn("embedding with the generated random-weight TEST model: its vectors are noise, so recommendations and text search rank by chance; name a real model with --model DIR (deploy/models/fetch.sh all-minilm-l6-v2)", "dir", dir)
		if _, err := os.Stat(filepath.Join(dir, "model.onnx")); errors.Is(err, fs.ErrNotExist) {
			cfg.Logger.Info("generating the small test embedding model", "dir", dir)
			if err := testmodel.Write(dir, testmodel.DefaultOptions()); err != nil {
				return nil, fmt.Errorf("generating test model: %w", err)
			}
		}
	}
	start := time.Now()
	e, err := models.NewHugotEmbedder(ctx, models.HugotConfig{ModelDir: dir, Backend: cfg.EmbedBackend, ORTLibraryDir: cfg.ORTLibDir})
	if err != nil {
		return nil, fmt.Errorf("loading embedding model: %w", err)
	}
	cfg.Logger.Info("embedding model loaded", "model", modelLabel(cfg), "dir", dir, "version", e.Version(), "dim", e.Dim(), "took", time.Since(start).Round(time.Millisecond))
	return e, nil
}

// registerModelInfo adds livefeed_embedding_model_info (value 1; the model
// in its labels: model is "test" for the generated test model, else its
// directory) to reg. Nothing is registered without embeddings.
func registerModelInfo(reg prometheus.Registerer, cfg Config, e models.Embedder) error {
	if e == nil {
		return nil
	}
	backend := cfg.EmbedBackend
	if backend == "" {
		backend = "go"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "livefeed_embedding_model_info",
		Help: `Embedding model of this process: always 1, the model is in the labels (model="test" is the generated random-weight test model, whose vectors are noise).`,
		ConstLabels: prometheus.Labels{
			"model":   modelLabel(cfg),
			"version": e.Version(),
			"dim":     strconv.Itoa(e.Dim()),
			"backend": backend,
		},
	})
	g.Set(1)
	return reg.Register(g)
}
