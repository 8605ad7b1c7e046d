//go:build ORT

package models_test

import (
	"os"
	"testing"

	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/models/testmodel"
)

// With -tags ORT and LIVEFEED_ORT_LIB_DIR (eval "$(deploy/models/ort.sh)"):
// the ONNX Runtime backend gives the pure-Go backend's vectors, on the
// generated test model and, with LIVEFEED_MODEL_DIR, on the real one.
func TestHugotORTMatchesGo(t *testing.T) {
	lib := os.Getenv("LIVEFEED_ORT_LIB_DIR")
	if lib == "" {
		t.Skip("LIVEFEED_ORT_LIB_DIR is not set: eval \"$(deploy/models/ort.sh)\" provides libonnxruntime.so")
	}
	dirs := map[string]string{"test model": ""}
	if d := os.Getenv(realModelEnv); d != "" {
		dirs["real model"] = d
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			if dir == "" {
				dir = hugotWriteModel(t, testmodel.DefaultOptions())
			}
			goE := hugotNewEmbedder(t, models.HugotConfig{ModelDir: dir})
			ortE := hugotNewEmbedder(t, models.HugotConfig{ModelDir: dir, Backend: models.BackendORT, ORTLibraryDir: lib})
			if goE.Dim() != ortE.Dim() || goE.Version() != ortE.Version() {
				t.Fatalf("go: dim %d version %s; ort: dim %d version %s", goE.Dim(), goE.Version(), ortE.Dim(), ortE.Version())
			}
			want := hugotEmbed(t, goE, hugotCorpus...)
			got := hugotEmbed(t, ortE, hugotCorpus...)
			var worst float64
			for i := range want {
				d := hugotMaxAbsDiff(got[i], want[i])
				worst = max(worst, d)
				if d > 1e-4 {
					t.Errorf("text %d (%q): ort and go differ by %g", i, hugotCorpus[i], d)
				}
			}
			t.Logf("largest ort/go difference %.2g", worst)
			if err := ortE.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
