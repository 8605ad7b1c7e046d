package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/livefeed/livefeed/bench/plot"
)

const benchPlotUsage = `usage: livefeed bench plot [flags]

Draws the benchmarks' JSON reports in --dir as SVG charts beside them:
  pipeline*.json  (bench pipeline --json)  → ` + plot.ThroughputFile + `, ` + plot.LatencyFile + `
  serving*.json   (bench serving --json)   → ` + plot.RecallQPSFile + `
Serving reports are merged into one chart (runs at several --peer-ef add
points to the peers' curves). BENCHMARKS.md shows the charts of docs/bench.
`

// runBenchPlot runs `livefeed bench plot`.
func runBenchPlot(args []string) error {
	fs := flag.NewFlagSet("bench plot", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchPlotUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	dir := fs.String("dir", "docs/bench", "directory of the JSON reports")
	out := fs.String("out", "", "directory the SVG files are written to (default: --dir)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench plot: unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		*out = *dir
	}
	in, err := plot.ReadDir(*dir)
	if err != nil {
		return fmt.Errorf("bench plot: %w", err)
	}
	written, err := plot.WriteDir(*out, in)
	for _, p := range written {
		fmt.Fprintln(os.Stderr, "bench plot: wrote", p)
	}
	if err != nil {
		return fmt.Errorf("bench plot: %w", err)
	}
	return nil
}
