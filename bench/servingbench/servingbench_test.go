package servingbench

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestSmallRun(t *testing.T) {
	cfg := Config{N: 3000, Dim: 16, Partitions: 4, Queries: 40, Seed: 3}
	// The peers run only where python3 has them (they take a few seconds).
	if exec.Command("python3", "-c", "import faiss, hnswlib, numpy").Run() == nil && !testing.Short() {
		cfg.Peers, cfg.PeerQueries, cfg.TempDir = true, 20, t.TempDir()
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) < len(Cases()) {
		t.Fatalf("%d rows", len(rep.Rows))
	}
	engines := map[string]bool{}
	for _, r := range rep.Rows {
		engines[r.Engine] = true
		if r.Engine == "livefeed" && r.Recall < 0.95 {
			t.Errorf("%s: livefeed recall %.3f", r.Case, r.Recall)
		}
		if r.Engine != "livefeed" && r.Case == "100%" && r.Recall < 0.9 {
			t.Errorf("%s: %s recall %.3f: the peers' data or ids are misread", r.Case, r.Engine, r.Recall)
		}
	}
	if cfg.Peers && (!engines["faiss"] || !engines["hnswlib"]) {
		t.Fatalf("peers missing: %v, note %q", engines, rep.PeerNote)
	}
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "corr 10%") {
		t.Fatalf("report:\n%s", buf.String())
	}
	t.Log("\n" + buf.String())
}

func TestNPYRoundTripHeader(t *testing.T) {
	dir := t.TempDir()
	if err := writeFloat32NPY(dir+"/a.npy", []float32{1, 2, 3, 4, 5, 6}, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := readInt64NPY(dir + "/a.npy"); err == nil || !strings.Contains(err.Error(), "<i8") {
		t.Fatalf("float32 file read as int64: %v", err)
	}
}
