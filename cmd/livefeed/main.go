// Command livefeed turns live-shopping event streams into fresh features and
// embeddings and serves "which live streams should this user see now?".
//
//	livefeed demo                      everything in one process on an embedded broker
//	livefeed process  --brokers=...    the processors (a Kafka consumer group per goka group)
//	livefeed serve    --brokers=...    views, index and the HTTP API
//	livefeed simulate --brokers=...    simulated marketplace traffic
//	livefeed topics create --brokers=...
//	livefeed bench pipeline [--brokers=...]
//	livefeed embed    --brokers=...    the embedding worker alone (with process --no-embedding-worker)
//	livefeed models testmodel DIR      write the small generated test model
//	livefeed models pull NAME          download an ONNX model from Hugging Face
//	livefeed version                   module version, VCS revision and time, Go version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/internal/buildinfo"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/user"
	"github.com/livefeed/livefeed/serving/drift"
	"github.com/livefeed/livefeed/serving/index"
	"golang.org/x/sync/errgroup"
)

const usage = `livefeed — fresh features and embeddings from live-shopping events, served as filtered k-NN.

Usage: livefeed <command> [flags]

Commands:
  demo              embedded Kafka-protocol broker + topics + processors + serving + simulator, one process
  process           run the processors against --brokers (scale out by running more replicas)
  serve             run views, index and the HTTP API against --brokers
  simulate          produce simulated marketplace traffic to --brokers
  topics create     create every topic livefeed needs on --brokers
  features compute  recompute every feature from an event log (JSONL) without Kafka
  features training-set  point-in-time features for each row of a labels file, from an event log
  bench pipeline    measure processor throughput, data freshness and query latency (embedded or --brokers)
  bench serving     filtered k-NN: recall, latency, QPS and memory vs exact search, faiss and hnswlib
  bench recovery    processor and serving restart time and peak RSS on a 1M-key table (embedded or --brokers)
  bench load        open-loop HTTP load on a running server: latency percentiles, errors, RSS, ingest rate, lag
  bench failover    kill -9 process replicas under load: time until their partitions flow again on the others
  bench plot        draw the benches' JSON reports (docs/bench) as SVG charts
  embed             run only the embedding worker against --brokers (pair with process --no-embedding-worker)
  models testmodel DIR   write the small generated BERT-style test model to DIR
  models pull NAME       download an ONNX sentence-embedding model from Hugging Face (then --model DIR)
  version           the build: module version, VCS revision and time, Go version

Run 'livefeed <command> -h' for its flags. Every flag can also be set as an
environment variable LIVEFEED_<FLAG> (dashes become underscores), e.g.
LIVEFEED_BROKERS=127.0.0.1:9092; the command line wins. Values are parsed as
strictly as flags: a bad one (LIVEFEED_PARTITIONS=eight, a duration without
its unit) stops the command with an error naming it.

process, serve and embed need an embedding model: --model DIR (a real model,
deploy/models/fetch.sh all-minilm-l6-v2), or --model test for the generated
random-weight test model (noise: tests and trials only), or --no-embeddings.
demo and bench pipeline default to --model test.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { // ends with the process
		<-ctx.Done()
		// A second signal ends the process at once (Go's default action).
		stop()
		// The components stop within a few seconds whatever the brokers'
		// state (README "Losing the broker"); this bounds what they miss.
		// Exiting commits nothing: offsets are committed only for
		// messages whose writes were acknowledged.
		time.Sleep(shutdownBound)
		fmt.Fprintf(os.Stderr, "livefeed: still stopping %v after the signal; exiting\n", shutdownBound)
		os.Exit(1)
	}()
	err := run(ctx, os.Args[1], os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "livefeed:", err)
		os.Exit(1)
	}
}

// shutdownBound is how long after SIGTERM or SIGINT the process exits at
// the latest.
const shutdownBound = 10 * time.Second

func run(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "demo":
		return runDemo(ctx, args)
	case "process":
		return runProcess(ctx, args)
	case "serve":
		return runServe(ctx, args)
	case "simulate":
		return runSimulate(ctx, args)
	case "topics":
		if len(args) == 0 || args[0] != "create" {
			return errors.New("usage: livefeed topics create [flags]")
		}
		return runTopicsCreate(ctx, args[1:])
	case "bench":
		if len(args) > 0 && args[0] == "serving" {
			return runBenchServing(ctx, args[1:])
		}
		if len(args) > 0 && args[0] == "load" {
			return runBenchLoad(ctx, args[1:])
		}
		if len(args) > 0 && args[0] == "recovery" {
			return runBenchRecovery(ctx, args[1:])
		}
		if len(args) > 0 && args[0] == "failover" {
			return runBenchFailover(ctx, args[1:])
		}
		if len(args) > 0 && args[0] == "plot" {
			return runBenchPlot(args[1:])
		}
		return runBench(ctx, args)
	case "features":
		return runFeatures(ctx, args)
	case "models":
		return runModels(args)
	case "embed":
		return runEmbed(ctx, args)
	case "version", "--version":
		if len(args) > 0 {
			return errors.New("usage: livefeed version")
		}
		fmt.Print(buildinfo.Read())
		return nil
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

type flags struct {
	fs       *flag.FlagSet
	cfg      app.Config
	logLevel string
	kafka    kafkaFlags
	// tasteWeights is --taste-weights, parsed by parse.
	tasteWeights string
	// fromEnv: the flags set from LIVEFEED_<FLAG> (flag → variable).
	fromEnv map[string]string
	// needModel: the command runs on real traffic (process, serve, embed,
	// features compute), so --model must be named unless --no-embeddings.
	needModel bool
	// noModel: the command embeds nothing (simulate, topics create).
	noModel bool
}

// source names where a flag's value came from, for errors: --name or its
// environment variable.
func (f *flags) source(name string) string {
	if v, ok := f.fromEnv[name]; ok {
		return v
	}
	return "--" + name
}

// newFlags declares the flags shared by all commands; sim adds the
// simulator's, embedded allows an empty --brokers.
func newFlags(name string, embedded, sim bool) *flags {
	f := &flags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c := &f.cfg
	brokersHelp := "Kafka brokers, comma separated"
	if embedded {
		brokersHelp += " (empty: embedded in-process cluster)"
	}
	f.fs.StringVar(&c.Brokers, "brokers", "", brokersHelp)
	f.fs.StringVar(&c.DataDir, "data", "data", "data directory: local state, embedded broker log, generated model")
	f.fs.StringVar(&c.HTTPAddr, "http", ":8080", "HTTP listen address")
	f.fs.IntVar(&c.Partitions, "partitions", 8, "partitions of every topic")
	f.fs.IntVar(&c.Replication, "replication", 1, "replication factor of every topic livefeed creates (3 on a 3-broker cluster with min.insync.replicas=2: one broker down loses nothing)")
	f.fs.StringVar(&c.TopicPrefix, "topic-prefix", "", "prefix of every topic and group name")
	f.fs.StringVar(&c.FeaturesFile, "features", "", "feature-definition file (YAML); empty: the built-in defaults (features/defaults.yaml)")
	// demo and bench pipeline (the embedded commands) default to the
	// generated test model; the others must name one (parse).
	modelDef, modelHelp := "", "embedding model dir (model.onnx, tokenizer.json, config.json; deploy/models/fetch.sh fetches one), or \"test\": the generated random-weight test model, whose vectors are noise; required unless --no-embeddings"
	if embedded {
		modelDef, modelHelp = app.TestModel, "embedding model dir (model.onnx, tokenizer.json, config.json; deploy/models/fetch.sh fetches one), or \"test\": the generated random-weight test model, whose vectors are noise"
	}
	f.fs.StringVar(&c.ModelDir, "model", modelDef, modelHelp)
	f.fs.StringVar(&c.EmbedBackend, "embed-backend", "go", "embedding backend: go (pure Go) or ort (ONNX Runtime; build with -tags ORT)")
	f.fs.StringVar(&c.ORTLibDir, "ort-lib", os.Getenv("LIVEFEED_ORT_LIB_DIR"), "directory of libonnxruntime.so for --embed-backend ort")
	f.fs.BoolVar(&c.NoEmbeddings, "no-embeddings", false, "disable content embeddings and text search")
	f.fs.DurationVar(&c.TasteHalfLife, "taste-half-life", 24*time.Hour, "half-life of user tastes")
	f.fs.StringVar(&f.tasteWeights, "taste-weights", user.DefaultWeights().String(), "how much each signal kind moves a user's taste, kind=weight comma separated (kinds left out keep their default)")
	f.fs.DurationVar(&c.SellerContentHalfLife, "seller-content-half-life", 7*24*time.Hour, "half-life of a stream's content in its seller's embedding")
	f.fs.DurationVar(&c.SellerBuyerHalfLife, "seller-buyer-half-life", 30*24*time.Hour, "half-life of a buyer's taste in the seller's embedding")
	f.fs.Float64Var(&c.SellerBuyerWeight, "seller-buyer-weight", 0.3, "share of the buyers' tastes in a seller's embedding, 0..1 (negative: content only)")
	f.fs.Float64Var(&c.AudienceWeight, "audience-weight", 0.3, "share of the viewers' tastes in a stream's served vector, 0..1 (negative: content only)")
	f.fs.DurationVar(&c.AudienceHalfLife, "audience-half-life", 30*time.Minute, "half-life of a viewer in a stream's audience embedding")
	f.fs.IntVar(&c.EmbedBatch, "embed-batch", 32, "embedding worker: most stream texts per model call")
	f.fs.DurationVar(&c.EmbedDelay, "embed-delay", 20*time.Millisecond, "embedding worker: longest wait for a batch to fill")
	f.fs.BoolVar(&c.NoEmbeddingWorker, "no-embedding-worker", false, "process: do not run the embedding worker (run livefeed embed instead)")
	f.fs.DurationVar(&c.FlushInterval, "state-flush-interval", 100*time.Millisecond, "how long a processor keeps a changed state in its write-behind cache before writing it to its table (negative: write every change at once)")
	f.fs.DurationVar(&c.FutureSkew, "future-skew", time.Hour, "how far ahead of the processor's clock an event time may be; later events go to the dead-letter topic as \"future\" (negative: no check)")
	f.fs.TextVar(&c.Misrouted, "misrouted", pipeline.Reroute, "what a processor does with a record in a partition its key does not map to (a producer not using Kafka's default murmur2 partitioner): reroute (to the right partition, counted) or dead-letter (reason \"misrouted\")")
	f.fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.fs.BoolVar(&c.Pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on the --http listener (processors: metrics; serving: API)")
	f.kafka.declare(f.fs, &c.Kafka)
	if embedded {
		f.fs.StringVar(&c.EmbeddedAddr, "embedded-addr", "127.0.0.1:0", "listen address of the embedded broker")
	}
	if sim {
		f.fs.Float64Var(&c.SimRate, "rate", 200, "simulated events per second (0: as fast as possible)")
		f.fs.Int64Var(&c.SimSeed, "seed", 1, "simulator seed")
		f.fs.IntVar(&c.SimLimit, "limit", 0, "stop after this many events (0: never)")
		f.fs.Float64Var(&c.SimBadFraction, "bad-fraction", 0.001, "share of deliberately malformed events")
		f.fs.Func("drop-field", "act as a changed producer: leave out a field, topic.field or topic.type.field (e.g. auctions.bid.amount); repeatable (feature monitoring drills)", func(v string) error {
			if strings.Count(v, ".") < 1 || strings.Count(v, ".") > 2 {
				return fmt.Errorf("want topic.field or topic.type.field, got %q", v)
			}
			c.SimChange.DropFields = append(c.SimChange.DropFields, v)
			return nil
		})
		f.fs.Func("rename-category", "act as a changed producer: rename a category in livestream events, old=new; repeatable", func(v string) error {
			from, to, ok := strings.Cut(v, "=")
			if !ok || from == "" || to == "" {
				return fmt.Errorf("want old=new, got %q", v)
			}
			if c.SimChange.RenameCategories == nil {
				c.SimChange.RenameCategories = map[string]string{}
			}
			c.SimChange.RenameCategories[from] = to
			return nil
		})
	}
	return f
}

// servingFlags declares the serving API's flags (demo, serve). The token's
// flag has no environment default, so --help never prints it.
func (f *flags) servingFlags() {
	c := &f.cfg
	f.fs.StringVar(&c.QueriesFile, "queries", "", "named-query file (YAML); empty: the built-in serving/queries.yaml")
	f.fs.StringVar(&c.APIToken, "api-token", "", "bearer token the /v1 API requires (empty: $LIVEFEED_API_TOKEN; unset: no auth); prefer the environment, flags show in ps")
	f.fs.StringVar(&c.ServingSnapshot.Dir, "snapshot-dir", "", "serving index snapshot + local livestream view state, for restarts in seconds (empty: off)")
	f.fs.DurationVar(&c.ServingSnapshot.Every, "snapshot-every", 10*time.Minute, "period of index snapshots while serving (with --snapshot-dir; 0: only on shutdown)")
	f.fs.DurationVar(&c.StaleAfter, "stale-after", 5*time.Second, "report a serving view \"stale\" in /readyz when it is staler than this (negative: never)")
	f.fs.DurationVar(&c.MaxStaleness, "max-staleness", 0, "/readyz answers 503 while a serving view is staler than this (0: stay ready and serve the last state, e.g. through a broker outage)")
	f.fs.StringVar(&c.Drift.ReferenceFile, "feature-reference", "", "feature monitoring: compare the served feature distributions with this reference file ('livefeed features reference --out FILE'); empty: the first full window after the start")
	f.fs.DurationVar(&c.Drift.Interval, "drift-interval", drift.DefaultInterval, "feature monitoring: how often the served feature values are sampled (negative: never)")
	f.fs.DurationVar(&c.Drift.Window, "drift-window", drift.DefaultWindow, "feature monitoring: the rolling window compared with the reference")
	f.fs.DurationVar(&c.Drift.ReferenceAfter, "drift-reference-after", 0, "feature monitoring: the automatic reference is the first full window starting this long after the start (let an empty pipeline's windows fill; POST /v1/features/reference captures one at any time)")
	f.fs.Func("user-partitions", "how serving replicas hold the user table: \"all\" (every replica, in memory) or \"shared\" (split among the replicas through a consumer group, on disk; a user held elsewhere is asked of its replica; default all)", func(v string) error {
		switch v {
		case "all", "shared":
			c.ServingUsers.Shared = v == "shared"
			return nil
		}
		return fmt.Errorf("want all or shared, got %q", v)
	})
	f.fs.StringVar(&c.ServingUsers.Dir, "user-dir", "", "with --user-partitions=shared: the replica's user partitions (goleveldb; empty: DATA/serving-users)")
	f.fs.StringVar(&c.ServingUsers.Advertise, "advertise", "", "with --user-partitions=shared: the base URL other replicas reach this one at (empty: http://HOSTNAME:PORT of --http)")
	f.fs.IntVar(&c.ServingUsers.Standbys, "user-standbys", 0, "with --user-partitions=shared: standby copies of each user partition on another replica (0 or 1; 1: failover without a restore)")
	f.fs.IntVar(&c.ServingUsers.CacheBytes, "user-cache-bytes", 64<<20, "with --user-partitions=shared: block cache of the local user partitions")
	f.fs.BoolVar(&c.ServingSnapshot.Index.Quantize, "index-quantize", false, "int8-quantized serving index with float32 rescoring (build with GOEXPERIMENT=simd for its AVX2 kernel)")
	f.fs.StringVar(&c.ServingSnapshot.Index.FloatsDir, "index-floats-dir", "", "with --index-quantize: keep the float32 rescoring vectors in an unlinked file in this directory, read with pread, instead of the heap (empty: in the heap)")
	f.fs.Func("index-sub-graphs", "comma-separated attributes whose values get their own graph links, searched by filters on one value: category, language (empty: none)", func(v string) error {
		c.ServingSnapshot.Index.SubGraphs = nil
		for a := range strings.SplitSeq(v, ",") {
			if a = strings.TrimSpace(a); a == "" {
				continue
			}
			if a != index.SubGraphCategory && a != index.SubGraphLanguage {
				return fmt.Errorf("want category and/or language, got %q", a)
			}
			c.ServingSnapshot.Index.SubGraphs = append(c.ServingSnapshot.Index.SubGraphs, a)
		}
		return nil
	})
}

func (f *flags) parse(args []string, needBrokers bool) error {
	if err := f.fs.Parse(args); err != nil {
		return explainFlagError(f.fs, err)
	}
	fromEnv, err := applyEnv(f.fs)
	if err != nil {
		return err
	}
	f.fromEnv = fromEnv
	if f.noModel {
		f.cfg.NoEmbeddings = true
	}
	if f.fs.Lookup("api-token") != nil && f.cfg.APIToken == "" {
		f.cfg.APIToken = os.Getenv("LIVEFEED_API_TOKEN")
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", f.fs.Args())
	}
	if err := f.kafka.resolve(f.fs, &f.cfg.Kafka); err != nil {
		return err
	}
	w, err := user.ParseWeights(f.tasteWeights)
	if err != nil {
		return fmt.Errorf("%s: %w", f.source("taste-weights"), err)
	}
	f.cfg.TasteWeights = w
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("%s=%q: want debug, info, warn or error", f.source("log-level"), f.logLevel)
	}
	f.cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(f.cfg.Logger)
	warnUnknownEnv(f.fs, f.cfg.Logger)
	if needBrokers && f.cfg.Brokers == "" {
		return errors.New("--brokers (or LIVEFEED_BROKERS) is required")
	}
	if f.needModel && !f.cfg.NoEmbeddings && f.cfg.ModelDir == "" {
		return fmt.Errorf("livefeed %s needs an embedding model: --model DIR (or LIVEFEED_MODEL=DIR; deploy/models/fetch.sh all-minilm-l6-v2 fetches one), "+
			"--model test for the generated random-weight test model (its vectors are noise: tests and trials only), or --no-embeddings", f.fs.Name())
	}
	return nil
}

// openApp parses the flags, assembles the app and makes sure every topic
// exists. The caller closes the app.
func openApp(ctx context.Context, f *flags, args []string, needBrokers bool) (*app.App, error) {
	if err := f.parse(args, needBrokers); err != nil {
		return nil, err
	}
	a, err := app.New(ctx, f.cfg)
	if err != nil {
		return nil, err
	}
	if err := a.CreateTopics(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func runDemo(ctx context.Context, args []string) error {
	f := newFlags("demo", true, true)
	f.servingFlags()
	a, err := openApp(ctx, f, args, false)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", f.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.cfg.HTTPAddr, err)
	}
	svc, err := a.NewServing()
	if err != nil {
		ln.Close()
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	ready := make(chan struct{})
	g.Go(func() error { return a.RunProcessors(gctx, ready) })
	g.Go(func() error { return a.Serve(gctx, svc, ln) })
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-ready:
		}
		url := "http://" + displayAddr(ln.Addr())
		fmt.Printf(`
livefeed demo is running: brokers %s, simulator at %g events/s.

  console %s/   (open it in a browser)
  API     %s
  try     curl '%s/v1/recommendations?user_id=u-0001&k=5'
          curl '%s/v1/recommendations?user_id=u-0001&k=5&category=trading-cards&min_viewers=2'
          curl -X POST %s/v1/search -d '{"text":"vintage sneakers","k":5}'
          curl '%s/v1/queries/for_you?user_id=u-0001&explain=true'    (named queries: %s/v1/queries)
  docs    %s/openapi.json
  metrics %s/metrics

Ctrl-C stops it; a second run continues where this one stopped (data in %s).
`, strings.Join(a.Brokers(), ","), f.cfg.SimRate, url, url, url, url, url, url, url, url, url, f.cfg.DataDir)
		_, err := a.Simulate(gctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("simulator: %w", err)
		}
		return nil
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if tcp.IP.IsUnspecified() {
		return "localhost:" + strconv.Itoa(tcp.Port)
	}
	return tcp.String()
}

func runProcess(ctx context.Context, args []string) error {
	f := newFlags("process", false, false)
	f.needModel = true
	clientID := f.fs.String("client-id", "", "Kafka client id of this replica, shown as the member's client id in the consumer groups (e.g. the pod name; empty: livefeed)")
	session := f.fs.Duration("session-timeout", 0, "consumer-group session timeout: how long a dead replica keeps its partitions (0: 6s, the least Kafka accepts by default: group.min.session.timeout.ms)")
	heartbeat := f.fs.Duration("heartbeat-interval", 0, "consumer-group heartbeat interval, at most a third of the session timeout (0: 1s)")
	a, err := openApp(ctx, f, args, true)
	if err != nil {
		return err
	}
	defer a.Close()
	if *clientID != "" {
		a.Broker.ClientID = *clientID
	}
	if *session > 0 {
		a.Broker.SessionTimeout = *session
	}
	if *heartbeat > 0 {
		a.Broker.HeartbeatInterval = *heartbeat
	}
	if err := a.Broker.Validate(); err != nil {
		return fmt.Errorf("invalid kafka configuration: %w", err)
	}
	ln, err := net.Listen("tcp", f.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.cfg.HTTPAddr, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.RunProcessors(gctx, nil) })
	g.Go(func() error { return a.ServeMetrics(gctx, ln) })
	return ignoreCanceled(g.Wait())
}

func runServe(ctx context.Context, args []string) error {
	f := newFlags("serve", false, false)
	f.needModel = true
	f.servingFlags()
	a, err := openApp(ctx, f, args, true)
	if err != nil {
		return err
	}
	defer a.Close()
	svc, err := a.NewServing()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.cfg.HTTPAddr, err)
	}
	f.cfg.Logger.Info("serving", "addr", ln.Addr().String())
	return ignoreCanceled(a.Serve(ctx, svc, ln))
}

func runSimulate(ctx context.Context, args []string) error {
	f := newFlags("simulate", false, true)
	f.noModel = true // the simulator embeds nothing
	var out string
	f.fs.StringVar(&out, "out", "", "write the events to this JSONL file (records {topic, key, value}) instead of Kafka; needs --limit")
	if hasFlag(args, "out") {
		if err := f.parse(args, false); err != nil {
			return err
		}
		if err := app.WriteLog(ctx, f.cfg, out); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %d events to %s\n", f.cfg.SimLimit, out)
		return nil
	}
	a, err := openApp(ctx, f, args, true)
	if err != nil {
		return err
	}
	defer a.Close()
	start := time.Now()
	st, err := a.Simulate(ctx)
	f.cfg.Logger.Info("simulation done", "stats", st, "took", time.Since(start).Round(time.Millisecond))
	return ignoreCanceled(err)
}

func runTopicsCreate(ctx context.Context, args []string) error {
	f := newFlags("topics create", false, false)
	f.noModel = true // no model needed to create topics
	a, err := openApp(ctx, f, args, true)
	if err != nil {
		return err
	}
	defer a.Close()
	for _, t := range a.Topology.Topics() {
		fmt.Printf("%s\tpartitions=%d\tcompacted=%v\n", t.Name, t.Partitions, t.Compacted)
	}
	return nil
}

// hasFlag reports whether args set the flag name (-name, --name, =value).
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
