package bench

// Recovery speed (issue 6, item 3): how long a processor and a serving
// replica take to become ready on a table of a million keys, and how much
// memory that costs. RunRecovery fills the livestream table topic of a fresh
// topic prefix with N encoded states (built by the livestream processor's
// own Updater), then runs each case in a fresh child process (re-executing
// the binary, see RecoveryConfig.Exe), so that each case's peak RSS (VmHWM)
// is its own. RecoveryChild is the child's side.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/livefeed/livefeed/app"
	"github.com/livefeed/livefeed/broker"
	"github.com/livefeed/livefeed/events"
	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/processors/livestream"
	"github.com/livefeed/livefeed/tables"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Recovery cases, in run order. Each runs in its own process; the warm
// cases reuse the local state the cold case before them left.
const (
	// RecoverProcessorCold: the processors start with an empty state dir
	// and recover every table from its changelog into goleveldb.
	RecoverProcessorCold = "processor-cold"
	// RecoverProcessorWarm: the processors restart on the local state the
	// cold case left (goleveldb with its offsets).
	RecoverProcessorWarm = "processor-warm"
	// RecoverServingMemory: a serving replica with memory views reads the
	// tables from Kafka and builds the index.
	RecoverServingMemory = "serving-memory"
	// RecoverServingSnapCold: serving with a snapshot dir that is empty:
	// goleveldb view recovered from Kafka, index built; the graceful stop
	// writes the index snapshot.
	RecoverServingSnapCold = "serving-snapshot-cold"
	// RecoverServingSnapWarm: serving restarts on that view state and
	// snapshot.
	RecoverServingSnapWarm = "serving-snapshot-warm"
)

// RecoveryCases lists every case in run order.
func RecoveryCases() []string {
	return []string{RecoverProcessorCold, RecoverProcessorWarm, RecoverServingMemory, RecoverServingSnapCold, RecoverServingSnapWarm}
}

// RecoveryConfig sizes a recovery run.
type RecoveryConfig struct {
	// Brokers of the run; required (the command starts an embedded kfake
	// cluster for the run when the user gives none, so that the children
	// share it).
	Brokers []string
	// Partitions of every topic. Default 8.
	Partitions int
	// Keys is the number of livestream states in the table. Default 1,000,000.
	Keys int
	// Dim is the length of each state's embedding (0: none, nothing is
	// indexed). Default 384.
	Dim int
	// LiveFraction of the streams are live (indexed by serving); the rest
	// have ended. Default 1.
	LiveFraction float64
	// Seed of the generated states. Default 1.
	Seed uint64
	// Quantize: the serving index stores int8 codes (serving.SnapshotConfig.Index).
	Quantize bool
	// Cases to run (default RecoveryCases()).
	Cases []string
	// Dir holds each case's local state (default a temporary directory,
	// removed at the end unless Keep).
	Dir string
	// Prefix is the topic prefix of an already filled table (skip the fill).
	Prefix string
	// Exe and Args re-execute this program as a child running one case:
	// the child gets Args followed by --child=<case> --child-prefix=...
	// --child-dir=... and must call RecoveryChild with the same config.
	Exe  string
	Args []string
	// Timeout of one case. Default 10m.
	Timeout time.Duration
	// CPUProfileDir, if set, gets a CPU profile <case>.pprof of each child
	// (start to stopped).
	CPUProfileDir string
	// Keep leaves the topics and the state dirs.
	Keep bool
	// Progress receives one line per step (nil: nothing).
	Progress io.Writer
}

func (c *RecoveryConfig) defaults() {
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Keys == 0 {
		c.Keys = 1_000_000
	}
	if c.Dim < 0 {
		c.Dim = 0
	}
	if c.LiveFraction == 0 {
		c.LiveFraction = 1
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if len(c.Cases) == 0 {
		c.Cases = RecoveryCases()
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
}

// RecoveryCaseResult is what one child measured.
type RecoveryCaseResult struct {
	Case string `json:"case"`
	// ReadySeconds is from the start of app.New (connect, topology) to
	// ready: the processors' ready channel, or serving.Service.Ready (every
	// view recovered). ProcessSeconds is the parent's clock from exec to
	// the child's ready line (adds process start-up).
	ReadySeconds   float64 `json:"ready_seconds"`
	ProcessSeconds float64 `json:"process_seconds"`
	// StopSeconds is the graceful stop (serving with a snapshot dir writes
	// the index snapshot then).
	StopSeconds float64 `json:"stop_seconds"`
	// PeakRSSMiB is VmHWM at ready; RSSMiB VmRSS at ready; HeapMiB the Go
	// heap in use at ready.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_mib"`
	// Indexed streams (serving cases).
	Indexed int `json:"indexed,omitempty"`
	// Restore is how serving restored its index (snapshot cases).
	Restore string `json:"restore,omitempty"`
	// DiskMiB is the case's local state on disk after it stopped.
	DiskMiB float64 `json:"disk_mib"`
	// KeysPerSec is Keys / ReadySeconds.
	KeysPerSec float64 `json:"keys_per_sec"`
}

// RecoveryReport is a run's outcome.
type RecoveryReport struct {
	StartedAt    time.Time            `json:"started_at"`
	Brokers      string               `json:"brokers"`
	Partitions   int                  `json:"partitions"`
	Keys         int                  `json:"keys"`
	Dim          int                  `json:"dim"`
	LiveFraction float64              `json:"live_fraction"`
	Quantize     bool                 `json:"quantize"`
	Prefix       string               `json:"prefix"`
	FillSeconds  float64              `json:"fill_seconds,omitempty"`
	TableMiB     float64              `json:"table_mib"` // encoded values produced
	Cases        []RecoveryCaseResult `json:"cases"`
}

// WriteText prints the report for humans.
func (r *RecoveryReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "livefeed bench recovery — %s, brokers %s, %d partitions\n", r.StartedAt.Format("2006-01-02 15:04:05 MST"), r.Brokers, r.Partitions)
	if r.FillSeconds > 0 {
		fmt.Fprintf(&b, "  livestream table: %d keys (%.0f%% live, %d-dim embeddings), %.0f MiB of values, prefix %s, filled in %.1fs; index quantize %v",
			r.Keys, 100*r.LiveFraction, r.Dim, r.TableMiB, r.Prefix, r.FillSeconds, r.Quantize)
	} else {
		fmt.Fprintf(&b, "  livestream table of %d keys filled by an earlier run, prefix %s; index quantize %v", r.Keys, r.Prefix, r.Quantize)
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "  %-22s %9s %9s %8s %10s %9s %9s %9s %9s  %s\n", "case", "ready s", "exec→rdy", "stop s", "keys/s", "peak RSS", "RSS", "heap", "disk", "index")
	for _, c := range r.Cases {
		idx := ""
		if strings.HasPrefix(c.Case, "serving") {
			idx = strconv.Itoa(c.Indexed)
			if c.Restore != "" {
				idx += " (" + c.Restore + ")"
			}
		}
		fmt.Fprintf(&b, "  %-22s %9.2f %9.2f %8.2f %10.0f %8.0fM %8.0fM %8.0fM %8.0fM  %s\n", c.Case, c.ReadySeconds, c.ProcessSeconds,
			c.StopSeconds, c.KeysPerSec, c.PeakRSSMiB, c.RSSMiB, c.HeapMiB, c.DiskMiB, idx)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// RunRecovery fills the table (unless cfg.Prefix names a filled one) and
// runs every case in a child process.
func RunRecovery(ctx context.Context, cfg RecoveryConfig) (*RecoveryReport, error) {
	cfg.defaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("recovery: no brokers")
	}
	if cfg.Exe == "" {
		return nil, errors.New("recovery: no executable to run the cases in")
	}
	rep := &RecoveryReport{StartedAt: time.Now().UTC(), Brokers: strings.Join(cfg.Brokers, ","), Partitions: cfg.Partitions,
		Keys: cfg.Keys, Dim: cfg.Dim, LiveFraction: cfg.LiveFraction, Quantize: cfg.Quantize, Prefix: cfg.Prefix}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "livefeed-recovery-")
		if err != nil {
			return nil, fmt.Errorf("creating the state dir: %w", err)
		}
		dir = d
		if !cfg.Keep {
			defer os.RemoveAll(d)
		}
	}
	if rep.Prefix == "" {
		rep.Prefix = fmt.Sprintf("recovery-%d-", time.Now().UnixNano()%1_000_000_000)
		start := time.Now()
		bytes, err := fillRecoveryTable(ctx, cfg, rep.Prefix, filepath.Join(dir, "fill"))
		if err != nil {
			return rep, err
		}
		rep.FillSeconds = time.Since(start).Seconds()
		rep.TableMiB = float64(bytes) / (1 << 20)
		fmt.Fprintf(cfg.Progress, "recovery: filled %d keys (%.0f MiB) in %.1fs\n", cfg.Keys, rep.TableMiB, rep.FillSeconds)
		if !cfg.Keep {
			defer deleteRecoveryTopics(cfg, rep.Prefix)
		}
	}
	for _, c := range cfg.Cases {
		res, err := runRecoveryChild(ctx, cfg, c, rep.Prefix, dir)
		if err != nil {
			return rep, fmt.Errorf("case %s: %w", c, err)
		}
		fmt.Fprintf(cfg.Progress, "recovery: %s ready in %.2fs, peak RSS %.0f MiB\n", c, res.ReadySeconds, res.PeakRSSMiB)
		rep.Cases = append(rep.Cases, *res)
	}
	return rep, nil
}

func deleteRecoveryTopics(cfg RecoveryConfig, prefix string) {
	adm, done, err := newAdmin(cfg.Brokers)
	if err != nil {
		return
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var del []string
	for _, t := range topics.Names() {
		if strings.HasPrefix(t, prefix) {
			del = append(del, t)
		}
	}
	if len(del) > 0 {
		_, _ = adm.DeleteTopics(ctx, del...)
	}
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return
	}
	var gs []string
	for _, g := range groups.Groups() {
		if strings.HasPrefix(g, prefix) {
			gs = append(gs, g)
		}
	}
	if len(gs) > 0 {
		_, _ = adm.DeleteGroups(ctx, gs...)
	}
}

// recoveryApp is the App of a run: the bench's topics, no embedding model
// (the cases measure table recovery, not model loading).
func recoveryApp(ctx context.Context, cfg RecoveryConfig, prefix, dataDir string) (*app.App, error) {
	ac := app.Config{
		Brokers:      strings.Join(cfg.Brokers, ","),
		DataDir:      dataDir,
		Partitions:   cfg.Partitions,
		TopicPrefix:  prefix,
		NoEmbeddings: true,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	ac.ServingSnapshot.Index.Quantize = cfg.Quantize
	return app.New(ctx, ac)
}

// fillRecoveryTable creates the run's topics and produces cfg.Keys encoded
// livestream states to the livestream table topic. It returns the bytes of
// the values produced.
func fillRecoveryTable(ctx context.Context, cfg RecoveryConfig, prefix, dataDir string) (int64, error) {
	a, err := recoveryApp(ctx, cfg, prefix, dataDir)
	if err != nil {
		return 0, err
	}
	defer a.Close()
	if err := a.CreateTopics(ctx); err != nil {
		return 0, fmt.Errorf("creating topics: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(broker.Partitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(50_000),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return 0, fmt.Errorf("creating producer: %w", err)
	}
	defer cl.Close()
	topic := string(a.Topology.Names.LivestreamTable())
	gen := newStateGen(cfg, a.Features)
	var total int64
	var firstErr error
	errc := make(chan error, 1)
	for i := range cfg.Keys {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		key, val, err := gen.next(ctx, i)
		if err != nil {
			return total, err
		}
		total += int64(len(val))
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
		if i > 0 && i%200_000 == 0 {
			fmt.Fprintf(cfg.Progress, "recovery: produced %d\n", i)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return total, fmt.Errorf("flushing: %w", err)
	}
	select {
	case firstErr = <-errc:
	default:
	}
	if firstErr != nil {
		return total, fmt.Errorf("producing the table: %w", firstErr)
	}
	return total, nil
}

// stateGen builds livestream states with the livestream processor's
// Updater: a metadata event, viewer joins, a chat message and a bid, all in
// the last hour, then an embedding of cfg.Dim random unit-length floats.
type stateGen struct {
	cfg  RecoveryConfig
	upd  *livestream.Updater
	rng  *rand.Rand
	now  time.Time
	cats []string
}

func newStateGen(cfg RecoveryConfig, fs *features.Set) *stateGen {
	return &stateGen{
		cfg:  cfg,
		upd:  &livestream.Updater{Features: fs, ViewerTimeout: 2 * time.Minute},
		rng:  rand.New(rand.NewPCG(cfg.Seed, 7)),
		now:  time.Now().Truncate(time.Millisecond),
		cats: []string{"fashion", "electronics", "collectibles", "beauty", "home", "sports", "toys", "jewelry"},
	}
}

func (g *stateGen) next(ctx context.Context, i int) (string, []byte, error) {
	id := fmt.Sprintf("ls-%07d", i)
	t0 := g.now.Add(-time.Duration(g.rng.Int64N(int64(time.Hour))))
	h := func(n int, d time.Duration) events.Header {
		return events.Header{EventID: fmt.Sprintf("%s-e%d", id, n), EventTime: t0.Add(d), LivestreamID: id}
	}
	status := events.StatusLive
	if g.rng.Float64() >= g.cfg.LiveFraction {
		status = events.StatusEnded
	}
	cat := g.cats[g.rng.IntN(len(g.cats))]
	st := &tables.Livestream{LivestreamID: id}
	g.upd.Apply(ctx, st, &events.Livestream{Header: h(0, 0), SellerID: fmt.Sprintf("seller-%d", g.rng.IntN(50_000)),
		Title: fmt.Sprintf("%s live drop #%d", cat, i), Category: cat, Tags: []string{cat, "live", "deal"}, Language: "en", Status: events.StatusLive})
	viewers := 1 + g.rng.IntN(5)
	for v := range viewers {
		g.upd.Apply(ctx, st, &events.Viewing{Header: h(1+v, time.Duration(v+1)*time.Second), Type: events.ViewingJoin,
			UserID: fmt.Sprintf("user-%d", g.rng.IntN(1_000_000))})
	}
	g.upd.Apply(ctx, st, &events.Chat{Header: h(10, 20*time.Second), UserID: "user-1", Text: "hi"})
	g.upd.Apply(ctx, st, &events.Auction{Header: h(11, 30*time.Second), AuctionID: id + "-a", Type: events.AuctionBid,
		UserID: "user-2", Amount: float64(1 + g.rng.IntN(500)), Currency: "USD"})
	if status == events.StatusEnded {
		g.upd.Apply(ctx, st, &events.Livestream{Header: h(12, 40*time.Second), SellerID: st.SellerID, Title: st.Title,
			Category: cat, Tags: st.Tags, Language: "en", Status: events.StatusEnded})
	}
	if g.cfg.Dim > 0 {
		v := make(events.Vector, g.cfg.Dim)
		var n float64
		for j := range v {
			x := g.rng.NormFloat64()
			v[j] = float32(x)
			n += x * x
		}
		n = math.Sqrt(n)
		for j := range v {
			v[j] = float32(float64(v[j]) / n)
		}
		st.Embedding, st.EmbeddingModel = v, "bench-random"
	}
	val, err := tables.Marshal(st)
	if err != nil {
		return "", nil, fmt.Errorf("encoding %s: %w", id, err)
	}
	return id, val, nil
}

// childLine prefixes the child's result on its stdout.
const childLine = "RECOVERY-RESULT "

// childReady prefixes the child's ready notice on its stdout.
const childReady = "RECOVERY-READY"

func caseDir(dir, c string) string {
	switch c {
	case RecoverProcessorCold, RecoverProcessorWarm:
		return filepath.Join(dir, "processor")
	case RecoverServingSnapCold, RecoverServingSnapWarm:
		return filepath.Join(dir, "serving-snapshot")
	default:
		return filepath.Join(dir, "serving-memory")
	}
}

func runRecoveryChild(ctx context.Context, cfg RecoveryConfig, c, prefix, dir string) (*RecoveryCaseResult, error) {
	d := caseDir(dir, c)
	if c == RecoverProcessorCold || c == RecoverServingSnapCold || c == RecoverServingMemory {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("emptying %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", d, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	args := append(append([]string(nil), cfg.Args...), "--child="+c, "--child-prefix="+prefix, "--child-dir="+d)
	cmd := exec.CommandContext(ctx, cfg.Exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the child: %w", err)
	}
	var res *RecoveryCaseResult
	var readyAt time.Duration
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == childReady:
			readyAt = time.Since(start)
		case strings.HasPrefix(line, childLine):
			res = new(RecoveryCaseResult)
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, childLine)), res); err != nil {
				return nil, fmt.Errorf("decoding the child's result: %w", err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("child: %w", err)
	}
	if res == nil {
		return nil, errors.New("the child reported no result")
	}
	res.ProcessSeconds = readyAt.Seconds()
	res.DiskMiB = float64(dirSize(d)) / (1 << 20)
	if res.ReadySeconds > 0 {
		res.KeysPerSec = float64(cfg.Keys) / res.ReadySeconds
	}
	return res, nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// RecoveryChild runs case c in this process (the child): it starts the
// processors or a serving replica on the run's topics with local state in
// dir, waits until ready, writes the ready line and the result to out and
// stops gracefully.
func RecoveryChild(ctx context.Context, cfg RecoveryConfig, c, prefix, dir string, out io.Writer) error {
	cfg.defaults()
	start := time.Now()
	if cfg.CPUProfileDir != "" {
		stop, err := StartCPUProfile(filepath.Join(cfg.CPUProfileDir, c+".pprof"))
		if err != nil {
			return err
		}
		defer stop()
	}
	a, err := recoveryAppFor(ctx, cfg, c, prefix, dir)
	if err != nil {
		return err
	}
	res := &RecoveryCaseResult{Case: c}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	ready := make(chan struct{})
	var indexed func() int
	var restore func() string
	switch c {
	case RecoverProcessorCold, RecoverProcessorWarm:
		go func() { done <- a.RunProcessors(ctx, ready) }()
	case RecoverServingMemory, RecoverServingSnapCold, RecoverServingSnapWarm:
		svc, err := a.NewServing()
		if err != nil {
			a.Close()
			return fmt.Errorf("creating serving: %w", err)
		}
		indexed = func() int { return svc.Index().Len() }
		restore = func() string {
			st := svc.Restored()
			switch {
			case st.FromSnapshot:
				return fmt.Sprintf("snapshot, %d items, %.2fs", st.Items, st.Took.Seconds())
			case st.Reason != "":
				return "no snapshot"
			}
			return ""
		}
		go func() { done <- svc.Run(ctx) }()
		go func() { // owned: ends when ready or ctx is done
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				if svc.Ready() {
					close(ready)
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	default:
		a.Close()
		return fmt.Errorf("unknown case %q", c)
	}
	select {
	case <-ready:
	case err := <-done:
		a.Close()
		return fmt.Errorf("stopped before ready: %v", err)
	case <-ctx.Done():
		a.Close()
		return ctx.Err()
	}
	res.ReadySeconds = time.Since(start).Seconds()
	fmt.Fprintln(out, childReady)
	if indexed != nil {
		res.Indexed = indexed()
		res.Restore = restore()
	}
	res.RSSMiB = procStatusMiB("VmRSS")
	res.PeakRSSMiB = procStatusMiB("VmHWM") // after: RSS may grow between the reads
	res.HeapMiB = heapInUseMiB()
	stopStart := time.Now()
	cancel()
	var stopErr error
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			stopErr = err
		}
	case <-time.After(2 * time.Minute):
		return errors.New("did not stop within 2m")
	}
	a.Close()
	res.StopSeconds = time.Since(stopStart).Seconds()
	js, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s%s\n", childLine, js)
	if stopErr != nil {
		return fmt.Errorf("stopping: %w", stopErr)
	}
	return nil
}

func recoveryAppFor(ctx context.Context, cfg RecoveryConfig, c, prefix, dir string) (*app.App, error) {
	if c == RecoverServingSnapCold || c == RecoverServingSnapWarm {
		ac := app.Config{
			Brokers: strings.Join(cfg.Brokers, ","), DataDir: dir, Partitions: cfg.Partitions, TopicPrefix: prefix,
			NoEmbeddings: true,
			Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		}
		ac.ServingSnapshot.Dir = filepath.Join(dir, "snapshot")
		ac.ServingSnapshot.Index.Quantize = cfg.Quantize
		return app.New(ctx, ac)
	}
	return recoveryApp(ctx, cfg, prefix, dir)
}

func heapInUseMiB() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// procStatusMiB reads a kB field of /proc/self/status in MiB (0 if absent).
func procStatusMiB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(name) != field {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0
		}
		return kb / 1024
	}
	return 0
}
