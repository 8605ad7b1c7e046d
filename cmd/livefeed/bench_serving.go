package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/livefeed/livefeed/bench"
	"github.com/livefeed/livefeed/bench/servingbench"
)

const benchServingUsage = `usage: livefeed bench serving [flags]

Measures the serving index in process: a synthetic catalogue of clustered
vectors with attributes (some following the vectors, some not), filters of
selectivity 100/50/10/1/0.1 %, a two-attribute AND and a filter correlated
with the vectors. Prints recall@k against exact search, p50/p99 latency of
sequential queries, throughput of concurrent clients, build time and memory.
With python3 and faiss-cpu, hnswlib, numpy installed (pip install faiss-cpu
hnswlib numpy), faiss IndexHNSWFlat and hnswlib run on the same data in the
same run (post-filter with over-fetch, and faiss with IDSelectorBitmap).
`

// runBenchServing runs `livefeed bench serving`.
func runBenchServing(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "serving" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("bench serving", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchServingUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	var (
		cfg                 servingbench.Config
		big                 bool
		noPeers             bool
		cases, jsonPath, cp string
		efSweep, subGraphs  string
		sweeps              string
		timeout             time.Duration
	)
	fs.IntVar(&cfg.N, "n", 100_000, "catalogue size")
	fs.BoolVar(&big, "big", false, "catalogue of 1,000,000 (overrides --n; build takes minutes on 2 cores)")
	fs.IntVar(&cfg.Dim, "dim", 384, "vector dimension")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "index partitions")
	fs.IntVar(&cfg.Queries, "queries", 500, "queries per filter")
	fs.IntVar(&cfg.K, "k", 10, "results per query")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the catalogue, queries and graphs")
	fs.IntVar(&cfg.Clients, "clients", 0, "concurrent clients of the throughput run (default GOMAXPROCS)")
	fs.IntVar(&cfg.Options.M, "m", 0, "HNSW M (default 16)")
	fs.IntVar(&cfg.Options.EfConstruction, "ef-construction", 0, "HNSW efConstruction (default 100)")
	fs.IntVar(&cfg.Options.EfSearch, "ef-search", 0, "livefeed efSearch (default 80)")
	fs.IntVar(&cfg.Options.ExactThreshold, "exact-threshold", 0, "scan exactly when the filtered set is estimated at most this per partition holding some (default 2000; -1: never)")
	fs.IntVar(&cfg.Options.FarExactThreshold, "far-exact-threshold", 0, "scan exactly a filtered set lying away from the query when at most this per partition (default 16000; -1: never)")
	fs.Float64Var(&cfg.Options.ExpandBelow, "expand-below", 0, "ACORN-style expansion below this selectivity (default 0.4)")
	fs.BoolVar(&cfg.Options.NoPrefetch, "no-prefetch", false, "do not touch a batch's vectors before scoring them")
	fs.StringVar(&cfg.Quantize, "quantize", "off", "livefeed variants: off (float32), on (int8 + float32 rescoring), both, all (both + int8 without floats)")
	fs.BoolVar(&cfg.Snapshot, "snapshot", false, "also measure writing each variant's index to a snapshot and restoring it")
	fs.StringVar(&cfg.FloatsDir, "floats-dir", "", "int8 variant: keep the float32 rescoring vectors in a mapped file in this directory, and measure what a rescoring read costs")
	fs.StringVar(&cfg.IndexFile, "index-file", "", "restore the (first) livefeed variant's index from this snapshot if it exists, else build it and save it there (same --n, --seed, --partitions and graph options)")
	fs.BoolVar(&cfg.NoUpdates, "no-updates", false, "skip the write-side measurement (updates, queries under updates)")
	fs.StringVar(&cases, "cases", "", "comma-separated filter names to run (default all: 100%,50%,10%,1%,0.1%,AND 1%,corr 10%)")
	fs.BoolVar(&noPeers, "no-peers", false, "skip faiss and hnswlib")
	fs.StringVar(&subGraphs, "sub-graphs", "", "comma-separated attributes whose values get sub-graphs searched by filters on one value: category, language")
	fs.StringVar(&sweeps, "sweep", "", "search-time options to re-measure every filter with, without rebuilding: sweeps separated by ';', each key=value,... (keys: ef, rescore, upper-ef, scan-seeds, scan-limit, far-factor, far-exact-threshold, exact-threshold, expand-below, seeds, far-visit, large-graph, large-ef)")
	fs.IntVar(&cfg.Options.UpperEf, "upper-ef", 0, "livefeed: candidate list of a graph search's level 1 (entry points of level 0); 0: greedy")
	fs.IntVar(&cfg.Options.Rescore, "rescore", 0, "livefeed int8: candidates rescored per result (default 4)")
	fs.IntVar(&cfg.Options.FarFactor, "far-factor", 0, "livefeed: list multiplier of searches of a filtered set away from the query (default 4)")
	fs.IntVar(&cfg.Options.ScanSeeds, "scan-seeds", 0, "livefeed: entry points of a sub-graph search of a set away from the query, from its upper levels (default 0: far plans of the whole graph)")
	fs.StringVar(&efSweep, "ef-sweep", "", "comma-separated efSearch values to re-measure every filter at (after the main run)")
	fs.StringVar(&cfg.Python, "python", "python3", "python interpreter for the peers")
	fs.IntVar(&cfg.PeerQueries, "peer-queries", 0, "queries per filter for the peers (default min(queries, 200))")
	fs.IntVar(&cfg.PeerEf, "peer-ef", 64, "peers' efSearch (raised to the over-fetch when larger)")
	fs.Float64Var(&cfg.Overfetch, "overfetch", 2, "peers' post-filter over-fetch: ask for overfetch·k/selectivity")
	fs.StringVar(&jsonPath, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&cp, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.DurationVar(&timeout, "timeout", 2*time.Hour, "abort the run after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if big {
		cfg.N = 1_000_000
	}
	cfg.Peers = !noPeers
	for _, c := range strings.Split(cases, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cfg.Cases = append(cfg.Cases, c)
		}
	}
	for _, a := range strings.Split(subGraphs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if a != "category" && a != "language" {
				return fmt.Errorf("--sub-graphs: %q is not category or language", a)
			}
			cfg.Options.SubGraphs = append(cfg.Options.SubGraphs, a)
		}
	}
	for _, e := range strings.Split(efSweep, ",") {
		if e = strings.TrimSpace(e); e != "" {
			ef, err := strconv.Atoi(e)
			if err != nil || ef < 1 {
				return fmt.Errorf("--ef-sweep: %q is not a positive integer", e)
			}
			cfg.EfSweep = append(cfg.EfSweep, ef)
		}
	}
	sw, err := servingbench.ParseSweeps(sweeps)
	if err != nil {
		return fmt.Errorf("--sweep: %w", err)
	}
	cfg.Sweeps = sw
	cfg.Progress = os.Stderr
	if cp != "" {
		stop, err := bench.StartCPUProfile(cp)
		if err != nil {
			return err
		}
		defer stop()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep, err := servingbench.Run(ctx, cfg)
	if rep != nil {
		err = writeReport(rep, jsonPath, err)
	}
	if err != nil {
		return fmt.Errorf("bench serving: %w", err)
	}
	return nil
}
