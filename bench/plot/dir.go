package plot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/livefeed/livefeed/bench"
)

// The charts a directory of reports is drawn into.
const (
	RecallQPSFile  = "serving-recall-qps.svg"
	ThroughputFile = "pipeline-throughput.svg"
	LatencyFile    = "pipeline-latency.svg"
)

// Inputs are the reports found in a directory.
type Inputs struct {
	Pipelines []Pipeline
	Serving   []Serving
}

// ReadDir reads the reports in dir by their names: pipeline*.json are
// `bench pipeline` reports (shown in name order, under their file names),
// serving*.json `bench serving` reports (merged into one recall/QPS chart).
func ReadDir(dir string) (Inputs, error) {
	var in Inputs
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return in, err
	}
	for _, path := range names { // Glob sorts
		base := strings.TrimSuffix(filepath.Base(path), ".json")
		b, err := os.ReadFile(path)
		if err != nil {
			return in, err
		}
		switch {
		case strings.HasPrefix(base, "pipeline"):
			var r bench.Report
			if err := json.Unmarshal(b, &r); err != nil {
				return in, fmt.Errorf("decoding %s: %w", path, err)
			}
			in.Pipelines = append(in.Pipelines, Pipeline{Name: base, Report: &r})
		case strings.HasPrefix(base, "serving"):
			var r Serving
			if err := json.Unmarshal(b, &r); err != nil {
				return in, fmt.Errorf("decoding %s: %w", path, err)
			}
			in.Serving = append(in.Serving, r)
		}
	}
	if len(in.Pipelines)+len(in.Serving) == 0 {
		return in, fmt.Errorf("no pipeline*.json or serving*.json report in %s", dir)
	}
	return in, nil
}

// WriteDir draws every chart its inputs allow into dir and returns the
// files written. A chart without data (no serving report, say) is skipped;
// any other error is returned after the charts that could be drawn.
func WriteDir(dir string, in Inputs) ([]string, error) {
	type chart struct {
		file string
		draw func() ([]byte, error)
		has  bool
	}
	charts := []chart{
		{RecallQPSFile, func() ([]byte, error) { return RecallQPS(in.Serving) }, len(in.Serving) > 0},
		{ThroughputFile, func() ([]byte, error) { return Throughput(in.Pipelines) }, len(in.Pipelines) > 0},
		{LatencyFile, func() ([]byte, error) { return Latency(in.Pipelines) }, len(in.Pipelines) > 0},
	}
	var (
		written []string
		errs    []error
	)
	for _, ch := range charts {
		if !ch.has {
			continue
		}
		b, err := ch.draw()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		path := filepath.Join(dir, ch.file)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			errs = append(errs, err)
			continue
		}
		written = append(written, path)
	}
	return written, errors.Join(errs...)
}
