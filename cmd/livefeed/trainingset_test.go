package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// `livefeed features training-set` end to end: a simulated log, labels
// from its impressions, a training set as CSV and as Parquet.
func TestTrainingSetCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	log := filepath.Join(dir, "events.jsonl")
	if err := run(ctx, "simulate", []string{"--out", log, "--limit", "2000", "--data", dir}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var labels strings.Builder
	labels.WriteString("user_id,livestream_id,ts,clicked\n")
	rows := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var rec struct {
			Value struct {
				EventTime    string `json:"event_time"`
				LivestreamID string `json:"livestream_id"`
				UserID       string `json:"user_id"`
			} `json:"value"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Value.UserID != "" && rows < 50 {
			fmt.Fprintf(&labels, "%s,%s,%s,%d\n", rec.Value.UserID, rec.Value.LivestreamID, rec.Value.EventTime, rows%2)
			rows++
		}
	}
	labelsPath := filepath.Join(dir, "impressions.csv")
	if err := os.WriteFile(labelsPath, []byte(labels.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{"train.csv", "train.parquet"} {
		path := filepath.Join(dir, out)
		args := []string{"training-set", "--labels", labelsPath, "--events", log, "--out", path, "--model", "test", "--embeddings", "--data", dir}
		if err := run(ctx, "features", args); err != nil {
			t.Fatalf("livefeed features %v: %v", args, err)
		}
		switch filepath.Ext(out) {
		case ".csv":
			data, _ := os.ReadFile(path)
			recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, col := range []string{"ts", "user_id", "livestream_id", "clicked", "bids_5m", "user_bids_7d", "taste_embedding", "content_embedding"} {
				if !slices.Contains(recs[0], col) {
					t.Errorf("%s: no column %s in %v", out, col, recs[0])
				}
			}
			if slices.Contains(recs[0], "seller_gmv_24h") {
				t.Errorf("%s: seller features without a seller_id column", out)
			}
			if len(recs) != rows+1 {
				t.Errorf("%s: %d rows, want %d", out, len(recs)-1, rows)
			}
		case ".parquet":
			pf, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := pf.Stat()
			file, err := parquet.OpenFile(pf, info.Size())
			if err != nil {
				t.Fatal(err)
			}
			if file.NumRows() != int64(rows) {
				t.Errorf("%s: %d rows, want %d", out, file.NumRows(), rows)
			}
			pf.Close()
		}
	}
	if err := run(ctx, "features", []string{"training-set", "--labels", labelsPath, "--events", log, "--out", filepath.Join(dir, "x.csv"), "--no-embeddings", "--select", "seller_gmv_24h", "--data", dir}); err == nil ||
		!strings.Contains(err.Error(), "seller_id") {
		t.Errorf("a seller feature without a seller_id column: %v, want an error naming seller_id", err)
	}
}
