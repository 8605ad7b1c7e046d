package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The data scientist's commands run end to end: write a log, validate and
// explain the default features, recompute them offline.
func TestFeatureCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := filepath.Join(dir, "events.jsonl")
	defaults := filepath.Join("..", "..", "features", "defaults.yaml")
	stdout := os.Stdout
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	os.Stdout = devnull
	defer func() { os.Stdout = stdout }()
	for _, args := range [][]string{
		{"simulate", "--out", log, "--limit", "500", "--data", dir},
		{"features", "validate", defaults},
		{"features", "explain", defaults, "--partitions", "4"},
		{"features", "compute", "--events", log, "--no-embeddings", "--data", dir, "--features", defaults},
	} {
		if err := run(ctx, args[0], args[1:]); err != nil {
			t.Fatalf("livefeed %v: %v", args, err)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("features:\n  - name: x\n    sources: [chat]\n    aggregation: cnt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, "features", []string{"validate", bad}); err == nil {
		t.Fatal("an invalid features file validated")
	}
}
