package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/livefeed/livefeed/bench"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const benchFailoverUsage = `usage: livefeed bench failover [flags] [-- process flags]

Scale-out and failover (issue 6): runs --replicas 'livefeed process'
replicas of this binary on a fresh topic prefix, feeds them simulated
traffic at --rate events/s and every --interval kills one at random with
SIGKILL, --kills times. For each kill it reports, from the signal:

  detected  the coordinator noticed (the group left Stable)
  settled   the group is Stable again without the dead replica
  flowing   every partition the dead replica owned advanced on another
            (its changelog grew or a commit on its input moved)

and, after restarting the replica on its data directory (every
--wipe-every-th kill on an empty one), the rejoin: rebalance start,
settled with it, every partition flowing, and the stall (group left Stable
→ all its partitions flowing). Flags after -- go to every replica, e.g.
-- --session-timeout=6s --heartbeat-interval=1s.

Without --brokers an embedded kfake cluster runs in this (parent) process.
`

// runBenchFailover runs `livefeed bench failover`.
func runBenchFailover(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench failover", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchFailoverUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	var (
		cfg               bench.FailoverConfig
		brokers, jsonPath string
		dir               string
		keep              bool
		timeout           time.Duration
	)
	fs.StringVar(&brokers, "brokers", os.Getenv("LIVEFEED_BROKERS"), "Kafka brokers, comma separated (empty: embedded kfake cluster in this process)")
	fs.IntVar(&cfg.Replicas, "replicas", 3, "process replicas")
	fs.IntVar(&cfg.Partitions, "partitions", 6, "partitions of every topic")
	fs.Float64Var(&cfg.Rate, "rate", 300, "simulated events per second")
	fs.IntVar(&cfg.Kills, "kills", 5, "kill -9s")
	fs.DurationVar(&cfg.Interval, "interval", 9*time.Second, "time between the end of one rejoin and the next kill")
	fs.IntVar(&cfg.WipeEvery, "wipe-every", 3, "restart every n-th killed replica with an empty data directory (0: never)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the simulator and of the choice of victims")
	fs.DurationVar(&cfg.FlowTimeout, "flow-timeout", 90*time.Second, "fail when partitions do not flow this long after a kill or restart")
	fs.StringVar(&dir, "dir", "", "parent of the replicas' data and logs (default a temporary directory, removed unless --keep)")
	fs.BoolVar(&keep, "keep", false, "keep the topics, groups, data and logs")
	fs.StringVar(&jsonPath, "json", "", "also write the report as JSON to this file")
	fs.DurationVar(&timeout, "timeout", 20*time.Minute, "abort the run after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Args = fs.Args()
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if dir == "" {
		d, err := os.MkdirTemp("", "livefeed-failover-")
		if err != nil {
			return err
		}
		if !keep {
			defer os.RemoveAll(d)
		}
		dir = d
	}
	cfg.Dir = dir
	addrs, exe, stop, err := benchCluster(cfg.Brokers, dir)
	if err != nil {
		return err
	}
	defer stop()
	cfg.Brokers, cfg.Exe = addrs, exe
	cfg.Prefix = fmt.Sprintf("failover-%d-", time.Now().UnixNano())
	cfg.Progress = os.Stderr
	if !keep {
		defer func() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench failover: cleanup:", err)
				return
			}
			defer cl.Close()
			dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer dcancel()
			if err := bench.DeletePrefix(dctx, kadm.NewClient(cl), cfg.Prefix); err != nil {
				fmt.Fprintln(os.Stderr, "bench failover: cleanup:", err)
			}
		}()
	}
	rep, err := bench.RunFailover(ctx, cfg)
	if rep != nil {
		err = writeReport(rep, jsonPath, err)
	}
	if err != nil {
		if keep {
			fmt.Fprintln(os.Stderr, "bench failover: replica logs in", dir)
		}
		return fmt.Errorf("bench failover: %w", err)
	}
	return nil
}
