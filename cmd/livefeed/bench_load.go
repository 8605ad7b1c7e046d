package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/livefeed/livefeed/bench"
)

const benchLoadUsage = `usage: livefeed bench load --url http://HOST:PORT [flags]

Open-loop HTTP load on a running livefeed server (demo or serve): requests to
/v1/recommendations (and a share to the for_you named query) are scheduled by
the clock at --rate, whatever the responses do, over at most --conns
keep-alive connections; a request's latency runs from its scheduled time, so
a slow server shows as latency, not as a lower rate. Requests that find the
backlog full are dropped and counted. Alongside, every second: the server's
RSS (process_resident_memory_bytes from its /metrics, and VmRSS of
--server-pid), the processors' livefeed_processor_events_total from
--proc-metrics, and with --brokers the consumer lag of the groups starting
with --group-prefix.
`

// runBenchLoad runs `livefeed bench load`.
func runBenchLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench load", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchLoadUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	var (
		cfg                  bench.LoadConfig
		procMetrics, brokers string
		categories           string
	)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the server")
	fs.Float64Var(&cfg.Rate, "rate", 1000, "requests per second (open loop)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "length of the run")
	fs.IntVar(&cfg.Conns, "conns", 64, "most keep-alive connections (= requests in flight)")
	fs.IntVar(&cfg.Backlog, "backlog", 0, "scheduled requests that may wait for a connection before more are dropped (default 4*conns)")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "timeout of one request")
	fs.DurationVar(&cfg.LateAfter, "late-after", 10*time.Millisecond, "a request starting this long after its schedule counts as late")
	fs.IntVar(&cfg.Users, "users", 110_000, "simulator user population the user ids come from (simulate sizes it as 11 per event/s: 110000 at --rate 10000)")
	fs.StringVar(&categories, "categories", "", "categories to filter by, comma separated (default: the simulator's catalogue)")
	fs.IntVar(&cfg.K, "k", 20, "results per request")
	fs.Float64Var(&cfg.CategoryShare, "category-share", 0.5, "share of requests with a category filter")
	fs.Float64Var(&cfg.MinViewersShare, "min-viewers-share", 0.2, "share of requests with min_viewers")
	fs.Float64Var(&cfg.ForYouShare, "for-you-share", 0.1, "share of requests sent to /v1/queries/for_you")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the request mix")
	fs.StringVar(&cfg.ServerMetrics, "server-metrics", "", "server /metrics URL for its RSS (default: --url + /metrics)")
	fs.StringVar(&procMetrics, "proc-metrics", "", "processor /metrics URLs, comma separated (livefeed_processor_events_total; demo: the same as the server's)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "also sample VmRSS of this pid from /proc")
	fs.StringVar(&brokers, "brokers", "", "Kafka brokers, comma separated, to sample consumer lag (plaintext)")
	fs.StringVar(&cfg.GroupPrefix, "group-prefix", "", "consumer groups whose lag is summed (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench load: unexpected arguments %q", fs.Args())
	}
	cfg.Token = os.Getenv("LIVEFEED_API_TOKEN")
	if categories != "" {
		cfg.Categories = splitComma(categories)
	}
	cfg.ProcMetrics = splitComma(procMetrics)
	cfg.Brokers = splitComma(brokers)
	res, err := bench.RunLoad(ctx, cfg)
	if err != nil {
		return err
	}
	bench.WriteLoadReport(os.Stdout, res)
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
