package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livefeed/livefeed/bench"
	"github.com/livefeed/livefeed/broker"
)

const benchRecoveryUsage = `usage: livefeed bench recovery [flags]

Measures recovery speed (issue 6): fills the livestream table topic of a
fresh topic prefix with --keys encoded states (built by the livestream
processor's Updater, with --dim-float random embeddings), then runs each
case in a fresh child process of this binary and reports the time to ready,
peak RSS (VmHWM), heap and local state on disk:

  processor-cold         processors with no local state (goleveldb filled from the changelog)
  processor-warm         processors restarting on that local state
  serving-memory         serving replica, memory views, index built from Kafka
  serving-snapshot-cold  serving with an empty --snapshot-dir (goleveldb view); writes the snapshot on stop
  serving-snapshot-warm  serving restarting on that view state and index snapshot

Without --brokers an embedded kfake cluster runs in this (parent) process.
`

// runBenchRecovery runs `livefeed bench recovery`.
func runBenchRecovery(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "recovery" {
		args = args[1:]
	}
	fs := flag.NewFlagSet("bench recovery", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchRecoveryUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	var (
		cfg                           bench.RecoveryConfig
		brokers, cases, jsonPath, dir string
		child, childPrefix, childDir  string
		quick                         bool
		timeout                       time.Duration
	)
	fs.StringVar(&brokers, "brokers", os.Getenv("LIVEFEED_BROKERS"), "Kafka brokers, comma separated (empty: embedded kfake cluster in this process)")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "partitions of every topic")
	fs.IntVar(&cfg.Keys, "keys", 1_000_000, "livestream states in the table")
	fs.BoolVar(&quick, "quick", false, "100,000 keys (overrides --keys)")
	fs.IntVar(&cfg.Dim, "dim", 384, "embedding length of each state (0: no embeddings, nothing indexed)")
	fs.Float64Var(&cfg.LiveFraction, "live-fraction", 1, "share of the streams that are live (indexed); the rest have ended")
	fs.BoolVar(&cfg.Quantize, "index-quantize", false, "int8-quantized serving index")
	fs.StringVar(&cases, "cases", "", "comma-separated cases (default all, in order)")
	fs.StringVar(&cfg.Prefix, "prefix", "", "topic prefix of a table filled by an earlier --keep run (skips the fill; --keys must match)")
	fs.StringVar(&dir, "dir", "", "parent of the cases' local state (default a temporary directory)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the topics and the local state")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	fs.DurationVar(&cfg.Timeout, "case-timeout", 10*time.Minute, "abort a case after this long")
	fs.DurationVar(&timeout, "timeout", time.Hour, "abort the run after this long")
	fs.StringVar(&cfg.CPUProfileDir, "cpuprofile-dir", "", "write a CPU profile <case>.pprof of each case's child process to this directory")
	fs.StringVar(&child, "child", "", "internal: run this case in this process")
	fs.StringVar(&childPrefix, "child-prefix", "", "internal")
	fs.StringVar(&childDir, "child-dir", "", "internal")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if quick {
		cfg.Keys = 100_000
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	for _, c := range strings.Split(cases, ",") {
		if c = strings.TrimSpace(c); c != "" {
			cfg.Cases = append(cfg.Cases, c)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if child != "" {
		return bench.RecoveryChild(ctx, cfg, child, childPrefix, childDir, os.Stdout)
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		d, err := os.MkdirTemp(dir, "recovery-")
		if err != nil {
			return err
		}
		cfg.Dir = d
	}
	var logDir string
	if len(cfg.Brokers) == 0 {
		d, err := os.MkdirTemp("", "livefeed-recovery-kfake-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		logDir = d
	}
	addrs, exe, stop, err := benchCluster(cfg.Brokers, logDir)
	if err != nil {
		return err
	}
	defer stop()
	cfg.Brokers, cfg.Exe = addrs, exe
	cfg.Args = []string{"bench", "recovery", "--brokers=" + strings.Join(cfg.Brokers, ","),
		fmt.Sprintf("--partitions=%d", cfg.Partitions), fmt.Sprintf("--keys=%d", cfg.Keys),
		fmt.Sprintf("--dim=%d", cfg.Dim), fmt.Sprintf("--index-quantize=%v", cfg.Quantize), "--cpuprofile-dir=" + cfg.CPUProfileDir}
	cfg.Progress = os.Stderr
	rep, err := bench.RunRecovery(ctx, cfg)
	if rep != nil {
		if werr := rep.WriteText(os.Stdout); werr != nil && err == nil {
			err = werr
		}
		if jsonPath != "" {
			js, jerr := json.MarshalIndent(rep, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(jsonPath, append(js, '\n'), 0o644)
			}
			if jerr != nil && err == nil {
				err = jerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("bench recovery: %w", err)
	}
	return nil
}

// benchCluster is what a bench that runs this binary as subprocesses needs:
// the brokers (an embedded cluster logging under dir when none are given;
// stop closes it) and this binary's path.
func benchCluster(brokers []string, dir string) (addrs []string, exe string, stop func(), err error) {
	stop = func() {}
	if len(brokers) == 0 {
		e, err := broker.StartEmbedded("127.0.0.1:0", filepath.Join(dir, "kafka"))
		if err != nil {
			return nil, "", nil, fmt.Errorf("starting the embedded cluster: %w", err)
		}
		brokers, stop = e.Addrs(), e.Close
	}
	if exe, err = os.Executable(); err != nil {
		stop()
		return nil, "", nil, fmt.Errorf("finding this binary: %w", err)
	}
	return brokers, exe, stop, nil
}
