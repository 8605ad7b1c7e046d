package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/livefeed/livefeed/bench"
)

const benchUsage = `usage: livefeed bench pipeline [flags]

Measures the whole pipeline (processors, views, index, HTTP API) on an
embedded kfake cluster, or on real Kafka with --brokers, in three phases:

  throughput  pre-produce --events simulated events, start the processors,
              time how fast both groups work off the backlog
  freshness   under simulated background traffic, produce a new live stream
              and poll /v1/recommendations until it appears (--samples times)
  query       load --streams live streams and --users users with taste
              vectors, then time --requests recommendation requests
              sequentially and over --clients concurrent clients

Every run uses its own topic prefix (bench-<run id>-<phase>-); on --brokers
its topics and groups are deleted afterwards, and with --data the run's
subdirectory, unless --keep.
`

// runBench runs `livefeed bench pipeline`.
func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "pipeline" {
		fmt.Fprint(os.Stderr, benchUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New("usage: livefeed bench pipeline [flags]")
	}
	f := newFlags("bench pipeline", true, false)
	// Bench defaults differ from the servers': a temporary data dir, any
	// free local port, and quiet logs (the report is the output). The
	// environment (LIVEFEED_DATA, ...) still overrides them in parse.
	for name, def := range map[string]string{"data": "", "http": "127.0.0.1:0", "log-level": "warn"} {
		fl := f.fs.Lookup(name)
		if fl == nil {
			continue
		}
		if err := fl.Value.Set(def); err != nil {
			return err
		}
		fl.DefValue = def
	}
	if fl := f.fs.Lookup("data"); fl != nil {
		fl.Usage = "parent of the run's data directory (local state, generated model); empty: a temporary directory"
	}
	var (
		cfg      bench.Config
		jsonPath string
		phases   string
		timeout  time.Duration
	)
	f.fs.Usage = func() {
		fmt.Fprint(f.fs.Output(), benchUsage+"\nFlags:\n")
		f.fs.PrintDefaults()
	}
	f.fs.BoolVar(&cfg.Quick, "quick", false, "smaller run (CI smoke test): 20k events, 50 samples, 2k streams, 500 requests")
	f.fs.IntVar(&cfg.Events, "events", 0, "throughput: events to pre-produce (default 200000, quick 20000)")
	f.fs.Float64Var(&cfg.SimRate, "sim-rate", 0, "throughput: simulated rate the backlog's event times are spaced for (default 200)")
	f.fs.IntVar(&cfg.Samples, "samples", 0, "freshness: samples (default 200, quick 50)")
	f.fs.Float64Var(&cfg.BackgroundRate, "background-rate", 0, "freshness: background traffic in events/s (default 200)")
	f.fs.DurationVar(&cfg.PollInterval, "poll-interval", 0, "freshness: poll interval (default 1ms)")
	f.fs.IntVar(&cfg.Streams, "streams", 0, "query: live streams (default 10000, quick 2000)")
	f.fs.IntVar(&cfg.Users, "users", 0, "query: users with taste vectors (default 100, quick 50)")
	f.fs.IntVar(&cfg.Requests, "requests", 0, "query: requests per run (default 5000, quick 500)")
	f.fs.IntVar(&cfg.Clients, "clients", 0, "query: concurrent clients of the second run (default 2)")
	f.fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the simulators and the synthetic catalog")
	f.fs.StringVar(&phases, "phases", strings.Join(bench.Phases(), ","), "phases to run, comma separated")
	f.fs.BoolVar(&cfg.Keep, "keep", false, "keep the run's topics and consumer groups on --brokers and its --data subdirectory")
	f.fs.StringVar(&jsonPath, "json", "", "also write the results as JSON to this file")
	f.fs.DurationVar(&timeout, "timeout", 15*time.Minute, "abort the run after this long")
	var cpuProfile string
	f.fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := f.parse(args[1:], false); err != nil {
		return err
	}
	if cpuProfile != "" {
		stop, err := bench.StartCPUProfile(cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	cfg.App = f.cfg
	cfg.HTTPAddr = f.cfg.HTTPAddr
	for _, p := range strings.Split(phases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Phases = append(cfg.Phases, p)
		}
	}
	cfg.Progress = os.Stderr
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		err = writeReport(rep, jsonPath, err)
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// benchReport is what both bench commands print and save.
type benchReport interface {
	WriteText(w io.Writer) error
	WriteJSON(path string) error
}

// writeReport prints rep and, with a path, saves it as JSON; the first error
// (the run's, then the writes') is returned.
func writeReport(rep benchReport, jsonPath string, err error) error {
	if werr := rep.WriteText(os.Stdout); werr != nil && err == nil {
		err = werr
	}
	if jsonPath != "" {
		if werr := rep.WriteJSON(jsonPath); werr != nil && err == nil {
			err = werr
		} else if werr == nil {
			fmt.Fprintln(os.Stderr, "bench: wrote", jsonPath)
		}
	}
	return err
}
