// Package app assembles livefeed's parts the way the binary runs them: the
// Kafka connection (embedded kfake or real brokers), topics, the embedding
// model, the processors, serving over HTTP and the simulator. cmd/livefeed
// and the end-to-end tests share it.
package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/broker/kgoka"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/internal/buildinfo"
	"github.com/livefeed/livefeed/models"
	"github.com/livefeed/livefeed/processors/backfill"
	"github.com/livefeed/livefeed/processors/embedding"
	"github.com/livefeed/livefeed/processors/entity"
	"github.com/livefeed/livefeed/processors/livestream"
	"github.com/livefeed/livefeed/processors/pipeline"
	"github.com/livefeed/livefeed/processors/user"
	"github.com/livefeed/livefeed/serving"
	"github.com/livefeed/livefeed/serving/drift"
	"github.com/livefeed/livefeed/simulate"
	"github.com/livefeed/livefeed/topologies"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is the binary's configuration. Flags and LIVEFEED_* environment
// variables fill it; Defaults documents and fills the defaults.
type Config struct {
	// Brokers are real Kafka brokers (comma separated); empty runs an
	// embedded in-process cluster (demo only).
	Brokers string
	// EmbeddedAddr is where the embedded cluster listens. Default
	// 127.0.0.1:0 (any free port).
	EmbeddedAddr string
	// DataDir holds the embedded cluster's log, the processors' local state
	// and the generated test model. Default ./data.
	DataDir string
	// HTTPAddr is the serving address. Default :8080.
	HTTPAddr string
	// Partitions of every topic. Default 8.
	Partitions int
	// Replication is the replication factor of every topic livefeed
	// creates. Default 1; 3 on a 3-broker cluster with
	// min.insync.replicas=2, so one broker down loses nothing.
	Replication int
	// TopicPrefix is prepended to every topic and group name. Default "".
	TopicPrefix string
	// ModelDir is a sentence-embedding model directory (model.onnx,
	// tokenizer.json, config.json). TestModel ("test") or empty: the small
	// generated random-weight test model in DataDir/models/livefeed-test,
	// logged at warn level at every start (cmd/livefeed's process, serve
	// and embed refuse an empty one).
	ModelDir string
	// EmbedBackend is "go" (pure Go, default) or "ort" (ONNX Runtime; the
	// binary must be built with -tags ORT, see deploy/models/ort.sh).
	EmbedBackend string
	// ORTLibDir holds libonnxruntime.so for the "ort" backend.
	ORTLibDir string
	// NoEmbeddings disables content embeddings (and text search).
	NoEmbeddings bool
	// Embedder, if set, is used instead of loading a model (tests); the
	// caller closes it.
	Embedder models.Embedder
	// EmbedBatch and EmbedDelay bound the embedding worker's micro-batches
	// (processors/embedding). Default 32 records / 20ms.
	EmbedBatch int
	EmbedDelay time.Duration
	// EmbedCache is how many vectors the worker caches by text. Default 10000.
	EmbedCache int
	// NoEmbeddingWorker: RunProcessors does not run the embedding worker
	// (`livefeed embed` runs it, as a separate deployment).
	NoEmbeddingWorker bool
	// AudienceWeight is the audience's share of a stream's served vector,
	// in [0, 1] (processors/livestream Blend). Default 0.3; negative: 0.
	AudienceWeight float64
	// AudienceHalfLife is the half-life of a viewer in a stream's audience
	// embedding (event time). Default 30m.
	AudienceHalfLife time.Duration
	// TasteHalfLife is the half-life of user tastes. Default 24h.
	TasteHalfLife time.Duration
	// TasteWeights says how much each kind of signal moves a user's taste
	// (processors/user). Nil: user.DefaultWeights().
	TasteWeights user.Weights
	// SellerContentHalfLife and SellerBuyerHalfLife are the half-lives of
	// a stream's content and of a buyer's taste in a seller's embedding;
	// SellerBuyerWeight is the buyers' share of it, in [0, 1]
	// (processors/entity Seller). Defaults 7d, 30d, 0.3; negative weight: 0.
	SellerContentHalfLife time.Duration
	SellerBuyerHalfLife   time.Duration
	SellerBuyerWeight     float64
	// SimRate is the simulator's rate in events/s (0 = unthrottled; the
	// flag's default is 200).
	SimRate float64
	// SimSeed seeds the simulator. Default 1.
	SimSeed int64
	// SimLimit stops the simulator after this many events (0 = never).
	SimLimit int
	// SimBadFraction is the share of deliberately bad events. Default 0.001.
	SimBadFraction float64
	// SimChange makes Simulate act as a changed producer (fields dropped,
	// categories renamed: simulate.Change), for feature monitoring drills.
	SimChange simulate.Change
	// SweepEvery is how often idle keys (ended streams, entities whose
	// features all expired) are deleted from the tables. Default 10m.
	SweepEvery time.Duration
	// FlushInterval is how long a processor keeps a changed state in its
	// write-behind cache before writing it to the table (the latency it
	// adds to features; pipeline.State). Default 100ms; negative: write
	// every change at once.
	FlushInterval time.Duration
	// Pprof mounts Go's profiler (net/http/pprof) at /debug/pprof/ on the
	// processors' metrics listener and on serving's API listener. Off by
	// default: a profile shows code paths and costs CPU while it runs.
	Pprof bool
	// FutureSkew is how far ahead of the processor's wall clock an event
	// time may be; later events go to the dead-letter topic as "future".
	// Default 1h (events.DefaultFutureSkew); negative: no check.
	FutureSkew time.Duration
	// Misrouted is what the processors do with a record in a partition its
	// key does not map to under Kafka's default partitioner: re-route it
	// (pipeline.Reroute, the default) or dead-letter it with reason
	// "misrouted" (pipeline.DeadLetterMisrouted).
	Misrouted pipeline.Misrouted
	// FeaturesFile is a feature-definition file (YAML); empty: the built-in
	// default set (features/defaults.yaml).
	FeaturesFile string
	// Entities overrides the entities besides the livestream that the
	// features file defines (tests).
	Entities []topologies.Entity
	// QueriesFile is the serving API's named-query file (YAML); empty: the
	// built-in serving/queries.yaml.
	QueriesFile string
	// APIToken, when set, is the bearer token the serving API's /v1 routes
	// require. Never logged.
	APIToken string
	// ServingSnapshot: serving index snapshots and a local (goleveldb)
	// livestream view for restarts in seconds (serving/snapshot.go); its
	// Index field tunes the index either way. Zero: off.
	ServingSnapshot serving.SnapshotConfig
	// ServingUsers: Shared splits the user table among the serving
	// replicas (serving/userparts.go); defaults in userparts.go. Zero:
	// every replica holds every user in memory.
	ServingUsers serving.UserPartitions
	// StaleAfter and MaxStaleness: a serving view staler than StaleAfter
	// is reported stale in /readyz; staler than MaxStaleness (if > 0),
	// /readyz answers 503 (serving/staleness.go). Defaults 5s and 0.
	StaleAfter, MaxStaleness time.Duration
	// Drift is serving's feature monitoring (serving/drift): sampling
	// interval, rolling window, reference file (flags --drift-interval,
	// --drift-window, --feature-reference). Zero: the defaults.
	Drift drift.Options
	// Kafka is TLS and SASL for every Kafka client (flags --kafka-*;
	// broker/security.go). Zero: PLAINTEXT. Real brokers only.
	Kafka broker.Security
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.EmbeddedAddr == "" {
		c.EmbeddedAddr = "127.0.0.1:0"
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = ":8080"
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.TasteHalfLife == 0 {
		c.TasteHalfLife = 24 * time.Hour
	}
	if c.SimSeed == 0 {
		c.SimSeed = 1
	}
	if c.SimBadFraction == 0 {
		c.SimBadFraction = 0.001
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate rejects unusable settings.
func (c *Config) Validate() error {
	var errs []error
	if c.Partitions < 1 || c.Partitions > 1024 {
		errs = append(errs, fmt.Errorf("partitions %d out of range 1..1024", c.Partitions))
	}
	if c.Replication < 0 || c.Replication > math.MaxInt16 {
		errs = append(errs, fmt.Errorf("replication %d out of range", c.Replication))
	}
	if c.SimRate < 0 {
		errs = append(errs, errors.New("sim rate must be >= 0"))
	}
	if c.SimBadFraction < 0 || c.SimBadFraction > 1 {
		errs = append(errs, errors.New("sim bad fraction must be in 0..1"))
	}
	if c.TasteHalfLife < 0 {
		errs = append(errs, errors.New("taste half-life must be >= 0"))
	}
	for k, w := range c.TasteWeights {
		if !(w >= 0) || math.IsInf(w, 0) {
			errs = append(errs, fmt.Errorf("taste weight of %s must be a finite number >= 0", k))
		}
	}
	if c.SellerContentHalfLife < 0 || c.SellerBuyerHalfLife < 0 {
		errs = append(errs, errors.New("seller half-lives must be >= 0"))
	}
	if c.SellerBuyerWeight > 1 {
		errs = append(errs, errors.New("seller buyer weight must be <= 1"))
	}
	if c.Brokers == "" && c.Kafka.Enabled() {
		errs = append(errs, errors.New("kafka TLS/SASL settings need --brokers (the embedded cluster is plaintext)"))
	}
	return errors.Join(errs...)
}

// App is one running livefeed process.
type App struct {
	cfg      Config
	Broker   *broker.Config
	Topology *topologies.Topology
	Features *features.Set
	Embedder models.Embedder
	Registry *prometheus.Registry
	embedded *broker.Embedded
	logID    string
	closers  []func()
	// procReady is set once the processors have recovered and run
	// (ServeMetrics' /readyz).
	procReady atomic.Bool
	// runsProcessors: RunProcessors was called; ServeMetrics then reports
	// the processor groups' lag (grouplag.go).
	runsProcessors atomic.Bool
	groupLag       *groupLag
	// brokers says whether a broker answers while the processors run
	// (brokerwatch.go): /readyz and livefeed_broker_reachable.
	brokers *brokerWatch
}

// New connects (starting the embedded cluster when no brokers are given) and
// loads the embedding model. It does not create topics or start groups.
func New(ctx context.Context, cfg Config) (*App, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	a := &App{cfg: cfg, Registry: prometheus.NewRegistry()}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	build := buildinfo.Read()
	cfg.Logger.Info("livefeed", "build", build)
	if err := buildinfo.Register(a.Registry, build); err != nil {
		return nil, err
	}
	a.groupLag = newGroupLag(a.Registry)
	a.brokers = newBrokerWatch(cfg.Logger)

	var brokers []string
	if cfg.Brokers == "" {
		e, err := broker.StartEmbedded(cfg.EmbeddedAddr, filepath.Join(cfg.DataDir, "kafka"))
		if err != nil {
			return nil, err
		}
		a.embedded, a.logID = e, e.LogID
		a.closers = append(a.closers, e.Close)
		brokers = e.Addrs()
		cfg.Logger.Info("embedded Kafka-protocol cluster (kfake) started", "addrs", brokers, "data", filepath.Join(cfg.DataDir, "kafka"))
	} else {
		brokers = strings.Split(cfg.Brokers, ",")
	}
	a.Broker = &broker.Config{
		Brokers:     brokers,
		StateDir:    filepath.Join(cfg.DataDir, "state"),
		Partitions:  int32(cfg.Partitions),
		Replication: int16(cfg.Replication),
		Logger:      cfg.Logger,
		Security:    cfg.Kafka,
	}
	a.Broker.Defaults()
	if err := a.Broker.Validate(); err != nil {
		a.Close()
		return nil, fmt.Errorf("invalid kafka configuration: %w", err)
	}
	if cfg.Brokers != "" {
		// Fail at start, naming brokers, user and mechanism, when the
		// credentials, CA or address are wrong.
		cfg.Logger.Info("kafka", "brokers", brokers, "security", a.Broker.Security)
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := a.Broker.Ping(pctx)
		cancel()
		if err != nil {
			a.Close()
			return nil, err
		}
	}
	topo, closeTopo, err := buildTopology(ctx, cfg)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.closers = append(a.closers, closeTopo)
	a.Topology, a.Features, a.Embedder = topo, topo.Features, topo.Embedder
	if err := registerModelInfo(a.Registry, cfg, topo.Embedder); err != nil {
		a.Close()
		return nil, err
	}
	a.Topology.Metrics = pipeline.NewMetrics(a.Registry)
	a.Topology.FenceMetrics = kgoka.NewMetrics(a.Registry)
	a.Topology.BackfillMetrics = backfill.NewMetrics(a.Registry)
	a.Topology.Embedding.Metrics = embedding.NewMetrics(a.Registry)
	a.Topology.VectorMetrics = livestream.NewVectorMetrics(a.Registry)
	return a, nil
}

// buildTopology assembles the processing topology of cfg — features,
// entities, taste weights and the embedding model — without touching Kafka.
// The returned func releases the model.
func buildTopology(ctx context.Context, cfg Config) (*topologies.Topology, func(), error) {
	all, err := LoadFeatures(cfg.FeaturesFile)
	if err != nil {
		return nil, nil, err
	}
	entities := cfg.Entities
	if entities == nil {
		entities = topologies.EntitiesOf(all)
	}
	topo := &topologies.Topology{
		Names:         topologies.Names{Prefix: cfg.TopicPrefix},
		Partitions:    int32(cfg.Partitions),
		Features:      all.ForEntity("livestream"),
		Entities:      entities,
		Weights:       cfg.TasteWeights,
		HalfLife:      cfg.TasteHalfLife,
		SweepEvery:    cfg.SweepEvery,
		FlushInterval: cfg.FlushInterval,
		FutureSkew:    cfg.FutureSkew,
		Misrouted:     cfg.Misrouted,
		Metrics:       pipeline.NewMetrics(nil),
		Logger:        cfg.Logger,
	}
	release := func() {}
	topo.Blend = livestream.Blend{AudienceWeight: cfg.AudienceWeight, AudienceHalfLife: cfg.AudienceHalfLife}
	topo.Seller = entity.Seller{ContentHalfLife: cfg.SellerContentHalfLife, BuyerHalfLife: cfg.SellerBuyerHalfLife,
		BuyerWeight: cfg.SellerBuyerWeight}
	topo.Embedding = embedding.Config{MaxBatch: cfg.EmbedBatch, MaxDelay: cfg.EmbedDelay, CacheSize: cfg.EmbedCache}
	topo.NoEmbeddingWorker = cfg.NoEmbeddingWorker
	if cfg.Embedder != nil && !cfg.NoEmbeddings {
		topo.Embedder = cfg.Embedder
	} else if !cfg.NoEmbeddings {
		e, err := loadEmbedder(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		topo.Embedder = e
		release = func() { _ = e.Close() }
	}
	return topo, release, nil
}

// LoadFeatures reads a features file (YAML), or the built-in default set
// when path is empty.
func LoadFeatures(path string) (*features.Set, error) {
	if path == "" {
		set, err := features.NewSet(features.Defaults()...)
		if err != nil {
			return nil, fmt.Errorf("loading the default features: %w", err)
		}
		return set, nil
	}
	defs, err := features.ParseFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading features: %w", err)
	}
	set, err := features.Compile(defs, features.WithFilename(path))
	if err != nil {
		return nil, fmt.Errorf("loading features: %w", err)
	}
	return set, nil
}

// OfflineTopology is the topology of cfg for offline recomputation: the same
// features, entities, weights and model, no Kafka.
func OfflineTopology(ctx context.Context, cfg Config) (*topologies.Topology, func(), error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("invalid configuration: %w", err)
	}
	return buildTopology(ctx, cfg)
}

// Close releases what New acquired, in reverse order.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Brokers are the seed brokers in use.
func (a *App) Brokers() []string { return a.Broker.Brokers }

func (a *App) admin() (*kadm.Client, func(), error) {
	cl, err := a.adminClient()
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

func (a *App) adminClient() (*kgo.Client, error) {
	// kadm answers ListTopics from franz-go's metadata cache; a short
	// minimum age lets EnsureTopics see the topics it just created at once
	// instead of after the default 5s.
	cl, err := kgo.NewClient(a.Broker.KgoOpts(kgo.MetadataMinAge(50 * time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return cl, nil
}

// CreateTopics creates every topic the topology needs (idempotent) and
// waits until every broker knows them.
func (a *App) CreateTopics(ctx context.Context) error {
	cl, err := a.adminClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	created, err := broker.EnsureTopics(ctx, cl, a.Broker.Replication, a.Topology.Topics())
	if len(created) > 0 {
		a.cfg.Logger.Info("topics created", "topics", created)
	}
	return err
}

// RunProcessors guards the local state against a wiped log, then runs the
// processors until ctx is done. ready is closed once they are ready.
func (a *App) RunProcessors(ctx context.Context, ready chan<- struct{}) error {
	a.runsProcessors.Store(true)
	adm, done, err := a.admin()
	if err != nil {
		return err
	}
	removed, err := broker.GuardState(ctx, a.Broker, adm, a.logID, a.Topology.TableTopics())
	done()
	if err != nil {
		return fmt.Errorf("checking local state: %w", err)
	}
	if len(removed) > 0 {
		a.cfg.Logger.Warn("removed local state that outlived its log", "dirs", removed)
	}
	ping, err := kgo.NewClient(a.Broker.KgoOpts()...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer ping.Close()
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { // owned: stopped before RunProcessors returns
		defer close(watched)
		a.brokers.run(wctx, a.Registry, ping)
	}()
	defer func() { stopWatch(); <-watched }()
	return a.runReady(ready, func(inner chan<- struct{}) error { return a.Topology.Run(ctx, a.Broker, inner) })
}

// runReady runs run, marking the process ready (ServeMetrics' /readyz) and
// closing ready once run closes its ready channel, and not ready again
// when it returns.
func (a *App) runReady(ready chan<- struct{}, run func(inner chan<- struct{}) error) error {
	inner, stop, watched := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { // owned here: ends when run is ready or returns
		defer close(watched)
		select {
		case <-inner:
			a.procReady.Store(true)
			if ready != nil {
				close(ready)
			}
		case <-stop:
		}
	}()
	err := run(inner)
	close(stop)
	<-watched
	a.procReady.Store(false)
	return err
}

// RunEmbeddingWorker runs only the embedding worker (`livefeed embed`) until
// ctx is done; ready is closed once it has partitions.
func (a *App) RunEmbeddingWorker(ctx context.Context, ready chan<- struct{}) error {
	w, err := a.Topology.EmbeddingWorker(a.Broker)
	if err != nil {
		return err
	}
	return a.runReady(ready, func(inner chan<- struct{}) error { return w.Run(ctx, inner) })
}

// NewServing creates the serving side (the table topics must exist).
func (a *App) NewServing() (*serving.Service, error) {
	return serving.New(serving.Config{
		Broker:          a.Broker,
		LivestreamTable: a.Topology.Names.LivestreamTable(),
		UserTable:       a.Topology.Names.UserTable(),
		Features:        a.Features,
		Entities:        a.servingEntities(),
		Embedder:        a.Embedder,
		Registerer:      a.Registry,
		Logger:          a.cfg.Logger,
		QueriesFile:     a.cfg.QueriesFile,
		APIToken:        a.cfg.APIToken,
		Snapshot:        a.cfg.ServingSnapshot,
		UserPartitions:  a.userPartitions(),
		StaleAfter:      a.cfg.StaleAfter,
		MaxStaleness:    a.cfg.MaxStaleness,
		Drift:           a.cfg.Drift,
	})
}

func (a *App) servingEntities() map[string]serving.Entity {
	out := map[string]serving.Entity{}
	for _, e := range a.Topology.Entities {
		out[e.Name] = serving.Entity{Table: a.Topology.Names.EntityTable(e.Name), Features: e.Features}
	}
	return out
}

// Serve runs the views and the HTTP server on ln until ctx is done, then
// shuts the server down gracefully.
func (a *App) Serve(ctx context.Context, svc *serving.Service, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.withPprof(svc.Handler(a.Registry)),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	viewErr := make(chan error, 1)
	go func() { viewErr <- svc.Run(ctx) }()
	// In `demo` the processors run in this process: their groups' lag goes
	// to this /metrics (the console's health page) as `process` reports it.
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); a.watchGroupLag(ctx) }()
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-viewErr:
		if err != nil {
			err = fmt.Errorf("serving views: %w", err)
		}
	case err = <-httpErr:
		err = fmt.Errorf("http server: %w", err)
	}
	shutdownCtx, stop := context.WithTimeout(context.Background(), 3*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	<-lagDone
	if e := <-viewErr; err == nil && e != nil && !errors.Is(e, context.Canceled) {
		err = fmt.Errorf("serving views: %w", e)
	}
	return err
}

// Simulate produces simulated traffic until ctx is done or the limit is hit.
func (a *App) Simulate(ctx context.Context) (simulate.Stats, error) {
	sc := simulate.Config{Seed: a.cfg.SimSeed, BadFraction: a.cfg.SimBadFraction}
	// Size the world (users, streams, sellers) for the rate, so the event
	// mix stays realistic; the defaults suit ~100–300 events/s.
	sc.FitRate(a.cfg.SimRate)
	gen, err := simulate.New(sc)
	if err != nil {
		return simulate.Stats{}, fmt.Errorf("creating simulator: %w", err)
	}
	cl, err := kgo.NewClient(a.Broker.KgoOpts(kgo.RecordPartitioner(broker.Partitioner()),
		kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return simulate.Stats{}, fmt.Errorf("creating producer: %w", err)
	}
	defer cl.Close()
	return simulate.Produce(ctx, cl, gen, simulate.ProduceOptions{
		Rate: a.cfg.SimRate, Limit: a.cfg.SimLimit, TopicPrefix: a.cfg.TopicPrefix, Change: &a.cfg.SimChange,
	})
}

// ServeMetrics serves /metrics, /healthz and /readyz (200 once the processors
// run, 503 before, and 503 "paused" while no Kafka broker answers:
// brokerwatch.go) on ln until ctx is done (for processes without the query
// API). In a process that runs the processors, /readyz and /metrics also
// report their groups' consumer lag (grouplag.go).
func (a *App) ServeMetrics(ctx context.Context, ln net.Listener) error {
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() { // owned: stopped before ServeMetrics returns
		defer close(lagDone)
		// Only a process that runs the processors (not `livefeed embed`).
		for !a.runsProcessors.Load() {
			select {
			case <-lagCtx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		a.groupLag.run(lagCtx, a)
	}()
	defer func() { stopLag(); <-lagDone }()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body, code := map[string]any{"status": "ready"}, http.StatusOK
		if !a.procReady.Load() {
			body["status"], code = "recovering", http.StatusServiceUnavailable
		} else if reason := a.brokers.paused(); reason != "" {
			body["status"], body["reason"], code = "paused", reason, http.StatusServiceUnavailable
		}
		if a.runsProcessors.Load() {
			for k, v := range a.groupLag.report() {
				body[k] = v
			}
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	})
	srv := &http.Server{Handler: a.withPprof(mux), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		shutdownCtx, stop := context.WithTimeout(context.Background(), 3*time.Second)
		defer stop()
		_ = srv.Shutdown(shutdownCtx)
		<-errc
		return nil
	case err := <-errc:
		return fmt.Errorf("metrics server: %w", err)
	}
}

// WriteLog writes cfg.SimLimit simulated events to a JSONL event log (one
// record {topic, key, value} per line, event times spaced for cfg.SimRate and
// ending now) — the input of offline recomputation.
func WriteLog(ctx context.Context, cfg Config, path string) error {
	cfg.Defaults()
	if cfg.SimLimit <= 0 {
		return errors.New("writing an event log needs --limit")
	}
	rate := cfg.SimRate
	if rate <= 0 {
		rate = 200
	}
	sc := simulate.Config{Seed: cfg.SimSeed, BadFraction: cfg.SimBadFraction}
	sc.FitRate(rate)
	gen, err := simulate.New(sc)
	if err != nil {
		return fmt.Errorf("creating simulator: %w", err)
	}
	change, err := cfg.SimChange.Compile()
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating event log: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	step := time.Duration(float64(time.Second) / rate)
	t := time.Now().Add(-time.Duration(cfg.SimLimit) * step)
	for i := 0; i < cfg.SimLimit && ctx.Err() == nil; i++ {
		t = t.Add(step)
		r := gen.Next(t)
		if change != nil {
			r = change(r)
		}
		value := json.RawMessage(r.Value)
		if !json.Valid(r.Value) {
			// A deliberately malformed event: keep its bytes as a JSON string.
			b, _ := json.Marshal(string(r.Value))
			value = b
		}
		if err := enc.Encode(struct {
			Topic string          `json:"topic"`
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}{r.Topic, r.Key, value}); err != nil {
			f.Close()
			return fmt.Errorf("writing event log: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing event log: %w", err)
	}
	return f.Close()
}

// withPprof serves Go's profiler at /debug/pprof/ beside h when the config
// asks for it (Config.Pprof), and h alone otherwise.
func (a *App) withPprof(h http.Handler) http.Handler {
	if !a.cfg.Pprof {
		return h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", h)
	return mux
}
