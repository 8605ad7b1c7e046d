package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/livefeed/livefeed/serving/drift"
)

// features reference writes a file that serving's monitor loads: every
// default feature of the log's entities, with bins and counts that agree.
func TestFeaturesReferenceFromLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := filepath.Join(dir, "events.jsonl")
	out := filepath.Join(dir, "reference.json")
	for _, args := range [][]string{
		{"simulate", "--out", log, "--limit", "3000", "--data", dir},
		{"features", "reference", "--events", log, "--out", out, "--data", dir, "--bins", "8"},
	} {
		if err := run(ctx, args[0], args[1:]); err != nil {
			t.Fatalf("livefeed %v: %v", args, err)
		}
	}
	ref, err := drift.LoadReference(out)
	if err != nil {
		t.Fatal(err)
	}
	byEntity := map[string]int{}
	for _, f := range ref.Features {
		byEntity[f.Entity]++
		var n float64
		for _, c := range f.Counts {
			n += c
		}
		if f.Count == 0 || int(n)+f.Nulls != f.Count || len(f.Edges) > 8 {
			t.Errorf("%s/%s: count %d, nulls %d, binned %v over %d edges", f.Entity, f.Feature, f.Count, f.Nulls, n, len(f.Edges))
		}
	}
	if byEntity["livestream"] < 15 || byEntity["user"] < 5 || byEntity["seller"] < 5 {
		t.Fatalf("features per entity: %v", byEntity)
	}
	// Serving accepts it.
	if _, err := drift.New(nil, drift.Options{ReferenceFile: out}); err != nil {
		t.Fatalf("the monitor rejects the file: %v", err)
	}
	if err := run(ctx, "features", []string{"reference", "--out", out}); err == nil {
		t.Fatal("a reference without --events or --url accepted")
	}
	_ = os.Remove(out)
}
