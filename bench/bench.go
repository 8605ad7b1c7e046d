// Package bench measures the whole livefeed pipeline the way it runs in
// production: real goka processors, real views and the HTTP API, against an
// embedded kfake cluster or real Kafka brokers. It produces the figures of
// BENCHMARKS.md (see `livefeed bench pipeline`).
//
// Three phases run one after another, each on its own App with its own topic
// prefix (so runs and phases never share topics or consumer groups, even on a
// shared broker):
//
//  1. throughput: simulated events are produced first, then the processors
//     start and the harness times how fast the groups work off the backlog;
//  2. freshness: with background traffic flowing, a new live stream is
//     produced and /v1/recommendations is polled until it shows up;
//  3. query: thousands of live streams and users with taste vectors are
//     loaded, then /v1/recommendations is timed sequentially and with
//     concurrent clients.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/broker"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Phase names, in the order they run.
const (
	PhaseThroughput = "throughput"
	PhaseFreshness  = "freshness"
	PhaseQuery      = "query"
)

// Phases lists every phase in run order.
func Phases() []string { return []string{PhaseThroughput, PhaseFreshness, PhaseQuery} }

// Config sizes a run. Zero fields take the defaults of Defaults (or of
// QuickDefaults when Quick is set).
type Config struct {
	// App is the base configuration of every phase's App: Brokers (empty:
	// an embedded kfake cluster started by the harness), DataDir (empty: a
	// temporary directory, removed afterwards), Partitions, ModelDir,
	// TasteHalfLife, Logger. TopicPrefix, if set, is prepended to the run's
	// own unique prefix. The simulator fields are ignored.
	App app.Config
	// HTTPAddr is where each phase's API listens. Default 127.0.0.1:0.
	HTTPAddr string
	// Phases to run (default all, see Phases).
	Phases []string
	// Quick selects the smaller defaults (CI smoke test).
	Quick bool
	// Seed seeds the simulators and the synthetic catalog. Default 1.
	Seed int64

	// Events pre-produced for the throughput phase. Default 200000 (quick 20000).
	Events int
	// SimRate is the simulated event rate the throughput backlog is
	// generated at: event times are spaced 1/SimRate apart and end now.
	// Default 200.
	SimRate float64

	// Samples of the freshness phase. Default 200 (quick 50).
	Samples int
	// BackgroundRate is the simulated traffic during the freshness phase in
	// events/s. Default 200.
	BackgroundRate float64
	// PollInterval of the freshness probe. Default 1ms.
	PollInterval time.Duration

	// Streams are the live streams of the query phase. Default 10000 (quick 2000).
	Streams int
	// Users with a taste vector in the query phase. Default 100 (quick 50).
	Users int
	// StreamsPerUser is how many streams each user joins and chats in. Default 6.
	StreamsPerUser int
	// Requests timed sequentially (and again spread over Clients). Default
	// 5000 (quick 500).
	Requests int
	// Clients of the concurrent part of the query phase. Default 2.
	Clients int

	// Keep leaves the run's topics and consumer groups on the brokers
	// (default: deleted at the end when Brokers is set) and its data dir
	// (under App.DataDir).
	Keep bool
	// Progress receives one line per step (nil: nothing).
	Progress io.Writer
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	def := func(p *int, full, quick int) {
		if *p == 0 {
			*p = full
			if c.Quick {
				*p = quick
			}
		}
	}
	def(&c.Events, 200_000, 20_000)
	def(&c.Samples, 200, 50)
	def(&c.Streams, 10_000, 2_000)
	def(&c.Users, 100, 50)
	def(&c.StreamsPerUser, 6, 6)
	def(&c.Requests, 5_000, 500)
	def(&c.Clients, 2, 2)
	if c.SimRate == 0 {
		c.SimRate = 200
	}
	if c.BackgroundRate == 0 {
		c.BackgroundRate = 200
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Millisecond
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:0"
	}
	if len(c.Phases) == 0 {
		c.Phases = Phases()
	}
	if c.App.Partitions == 0 {
		c.App.Partitions = 8
	}
	if c.App.Logger == nil {
		c.App.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate rejects unusable sizes.
func (c *Config) Validate() error {
	var errs []error
	for _, p := range c.Phases {
		if !slices.Contains(Phases(), p) {
			errs = append(errs, fmt.Errorf("unknown phase %q (known: %s)", p, strings.Join(Phases(), ", ")))
		}
	}
	pos := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be >= 1, got %d", name, v))
		}
	}
	pos("events", c.Events)
	pos("samples", c.Samples)
	pos("streams", c.Streams)
	pos("users", c.Users)
	pos("streams per user", c.StreamsPerUser)
	pos("requests", c.Requests)
	pos("clients", c.Clients)
	if !(c.SimRate > 0) || !(c.BackgroundRate > 0) {
		errs = append(errs, errors.New("sim rate and background rate must be > 0"))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("poll interval must be > 0"))
	}
	if c.App.NoEmbeddings {
		errs = append(errs, errors.New("the benchmark needs embeddings (taste vectors); do not disable them"))
	}
	return errors.Join(errs...)
}

// Report is the result of a run. Durations are in milliseconds unless the
// name says otherwise.
type Report struct {
	StartedAt  time.Time `json:"started_at"`
	RunID      string    `json:"run_id"`
	Brokers    string    `json:"brokers"` // "embedded kfake" or the list
	Partitions int       `json:"partitions"`
	Quick      bool      `json:"quick"`
	GoVersion  string    `json:"go_version"`
	GOOS       string    `json:"goos"`
	GOARCH     string    `json:"goarch"`
	NumCPU     int       `json:"num_cpu"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	Revision   string    `json:"vcs_revision,omitempty"`
	Modified   bool      `json:"vcs_modified,omitempty"`
	Model      string    `json:"embedding_model,omitempty"`
	ModelDim   int       `json:"embedding_dim,omitempty"`
	Settings   Settings  `json:"settings"`

	Throughput *ThroughputResult `json:"throughput,omitempty"`
	Freshness  *FreshnessResult  `json:"freshness,omitempty"`
	Query      *QueryResult      `json:"query,omitempty"`

	TotalSeconds float64 `json:"total_seconds"`
}

// Settings are the sizes a run used.
type Settings struct {
	Phases         []string `json:"phases"`
	Seed           int64    `json:"seed"`
	Events         int      `json:"events"`
	SimRate        float64  `json:"sim_rate"`
	Samples        int      `json:"samples"`
	BackgroundRate float64  `json:"background_rate"`
	PollIntervalMS float64  `json:"poll_interval_ms"`
	Streams        int      `json:"streams"`
	Users          int      `json:"users"`
	StreamsPerUser int      `json:"streams_per_user"`
	Requests       int      `json:"requests"`
	Clients        int      `json:"clients"`
}

// Run runs the configured phases and returns their report. The report is
// returned (partially filled) together with an error when a phase fails.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid benchmark configuration: %w", err)
	}
	start := time.Now()
	runID := fmt.Sprintf("%x", start.UnixNano()&0xffffffffff)
	rep := &Report{
		StartedAt: start.UTC(), RunID: runID, Partitions: cfg.App.Partitions, Quick: cfg.Quick,
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Settings: Settings{
			Phases: cfg.Phases, Seed: cfg.Seed, Events: cfg.Events, SimRate: cfg.SimRate,
			Samples: cfg.Samples, BackgroundRate: cfg.BackgroundRate,
			PollIntervalMS: float64(cfg.PollInterval) / float64(time.Millisecond),
			Streams:        cfg.Streams, Users: cfg.Users, StreamsPerUser: cfg.StreamsPerUser,
			Requests: cfg.Requests, Clients: cfg.Clients,
		},
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rep.Revision = s.Value
			case "vcs.modified":
				rep.Modified = s.Value == "true"
			}
		}
	}

	r := &runner{cfg: cfg, rep: rep, prefix: cfg.App.TopicPrefix + "bench-" + runID + "-"}
	defer func() { rep.TotalSeconds = time.Since(start).Seconds() }()

	// Data dir: the processors' local state and the generated test model,
	// shared by the phases (their state dirs are keyed by topic, hence by
	// the phase's prefix). It is useless after the run and removed unless
	// Keep.
	if cfg.App.DataDir == "" {
		dir, err := os.MkdirTemp("", "livefeed-bench-")
		if err != nil {
			return rep, fmt.Errorf("creating data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		r.dataDir = dir
	} else {
		r.dataDir = filepath.Join(cfg.App.DataDir, "bench-"+runID)
		if err := os.MkdirAll(r.dataDir, 0o755); err != nil {
			return rep, fmt.Errorf("creating data dir: %w", err)
		}
		if !cfg.Keep {
			defer os.RemoveAll(r.dataDir)
		}
	}

	// One broker for all phases: the given one or an in-memory kfake cluster.
	if cfg.App.Brokers == "" {
		addr := cfg.App.EmbeddedAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		e, err := broker.StartEmbedded(addr, "")
		if err != nil {
			return rep, err
		}
		defer e.Close()
		r.brokers = strings.Join(e.Addrs(), ",")
		rep.Brokers = "embedded kfake"
	} else {
		r.brokers = cfg.App.Brokers
		rep.Brokers = cfg.App.Brokers
		if !cfg.Keep {
			defer r.cleanup()
		}
	}
	r.progress("run %s: brokers %s, %d partitions, phases %s", runID, rep.Brokers, cfg.App.Partitions, strings.Join(cfg.Phases, ","))

	for _, p := range Phases() {
		if !slices.Contains(cfg.Phases, p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		var err error
		switch p {
		case PhaseThroughput:
			rep.Throughput, err = r.throughput(ctx)
		case PhaseFreshness:
			rep.Freshness, err = r.freshness(ctx)
		case PhaseQuery:
			rep.Query, err = r.query(ctx)
		}
		if err != nil {
			return rep, fmt.Errorf("phase %s: %w", p, err)
		}
	}
	return rep, nil
}

// runner holds what the phases share.
type runner struct {
	cfg     Config
	rep     *Report
	prefix  string // of the run; each phase adds its name
	brokers string
	dataDir string
	used    []string // phase prefixes, for cleanup
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", args...)
	}
}

// newApp creates a phase's App with its own topic prefix and creates its
// topics.
func (r *runner) newApp(ctx context.Context, phase string) (*app.App, error) {
	cfg := r.cfg.App
	cfg.Brokers = r.brokers
	cfg.DataDir = r.dataDir
	cfg.TopicPrefix = r.prefix + phase + "-"
	cfg.HTTPAddr = r.cfg.HTTPAddr
	cfg.SimLimit, cfg.SimRate = 0, 0
	r.used = append(r.used, cfg.TopicPrefix)
	a, err := app.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if a.Embedder != nil && r.rep.Model == "" {
		r.rep.Model, r.rep.ModelDim = a.Embedder.Version(), a.Embedder.Dim()
	}
	if a.Topology == nil || a.Topology.Metrics == nil {
		a.Close()
		return nil, errors.New("app has no processor metrics")
	}
	if err := a.CreateTopics(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("creating topics: %w", err)
	}
	return a, nil
}

// cleanup deletes the run's topics and consumer groups from real brokers
// (best effort, bounded).
func (r *runner) cleanup() {
	if len(r.used) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(r.brokers, ",")...))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		r.progress("cleanup: listing topics: %v", err)
		return
	}
	var del []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, r.prefix) {
			del = append(del, t)
		}
	}
	groups, err := adm.ListGroups(ctx)
	var gdel []string
	if err == nil {
		for _, g := range groups.Groups() {
			if strings.HasPrefix(g, r.prefix) {
				gdel = append(gdel, g)
			}
		}
	}
	if len(gdel) > 0 {
		if _, err := adm.DeleteGroups(ctx, gdel...); err != nil {
			r.progress("cleanup: deleting groups: %v", err)
		}
	}
	if len(del) > 0 {
		if _, err := adm.DeleteTopics(ctx, del...); err != nil {
			r.progress("cleanup: deleting topics: %v", err)
		}
	}
	r.progress("cleanup: deleted %d topics and %d groups with prefix %s", len(del), len(gdel), r.prefix)
}
