// Package servingbench measures serving/index at scale (`livefeed bench
// serving`): a synthetic catalogue of clustered vectors with attributes,
// filters of selectivity 100/50/10/1/0.1 %, a two-attribute AND and a
// filter correlated with the vectors; recall@k against exact search,
// latency of sequential queries, throughput of concurrent clients, build
// time and memory. In the same run, on the same data, faiss (IndexHNSWFlat)
// and hnswlib from PyPI, filtering as their users do (post-filter with
// over-fetch; faiss also with its in-traversal IDSelectorBitmap), via the
// Python script of bench/peers when python3 has the packages.
package servingbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/livefeed/livefeed/features"
	"github.com/livefeed/livefeed/serving/index"
	"github.com/livefeed/livefeed/serving/index/vec"
)

// Config sets a run up. Zero values take the defaults.
type Config struct {
	N          int // catalogue size (default 100000)
	Dim        int // default 384
	Partitions int // index shards (default 8, the topics' partitions)
	Queries    int // queries per filter (default 500)
	K          int // default 10
	Seed       uint64
	Clients    int // concurrent clients of the throughput run (default GOMAXPROCS)
	Options    index.Options
	// Cases limits the filters to these names (empty: all).
	Cases []string
	// EfSweep re-measures every filter at each of these efSearch values
	// (rows "livefeed ef=N"), without rebuilding.
	EfSweep []int
	// Sweeps re-measure every filter with other search-time options
	// (rows "livefeed <sweep>"), without rebuilding, after EfSweep.
	Sweeps []Sweep
	// Quantize picks the livefeed variants built and measured one after
	// the other on the same data: "off" (float32, the default), "on" (int8
	// codes + float32 rescoring), "both" (off then on), "all" (both, then
	// int8 codes without floats).
	Quantize string
	// Snapshot also writes each variant's index to a snapshot in TempDir,
	// restores it, checks the restored index answers every query alike,
	// and reports the times beside the build's.
	Snapshot bool
	// FloatsDir keeps the float32 rescoring vectors of the int8 variant
	// in a mapped file in this directory (index.Options.FloatsDir), and
	// measures what a rescoring read costs (Engine.Rescoring).
	FloatsDir string
	// IndexFile reuses a built index across runs of the same catalogue
	// (N, Dim, Seed, Partitions) and graph-shaping options: the first
	// variant measured is restored from this snapshot when it exists, else
	// built and saved there before its queries. Search-time options
	// (efSearch, thresholds) may differ between runs.
	IndexFile string
	// NoUpdates skips the write-side measurement (updates, queries under
	// updates).
	NoUpdates bool

	// Peers runs faiss and hnswlib when python3 has them.
	Peers       bool
	Python      string // default python3
	PeerQueries int    // queries per filter for the peers (default min(Queries, 200))
	PeerEf      int    // peers' efSearch (default 64)
	Overfetch   float64
	TempDir     string // for the data handed to the peers (default: a new temporary dir)

	Progress io.Writer // progress lines; nil: none
}

func (c Config) withDefaults() Config {
	if c.N == 0 {
		c.N = 100_000
	}
	if c.Dim == 0 {
		c.Dim = 384
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Queries == 0 {
		c.Queries = 500
	}
	if c.K == 0 {
		c.K = 10
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Clients == 0 {
		c.Clients = runtime.GOMAXPROCS(0)
	}
	if c.Python == "" {
		c.Python = "python3"
	}
	if c.PeerQueries == 0 {
		c.PeerQueries = min(c.Queries, 200)
	}
	if c.PeerEf == 0 {
		c.PeerEf = 64
	}
	if c.Overfetch == 0 {
		c.Overfetch = 2
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Quantize == "" {
		c.Quantize = "off"
	}
	return c
}

// variant is one livefeed configuration of a run.
type variant struct {
	name string
	opts index.Options
}

func variants(c Config) ([]variant, error) {
	f := variant{"livefeed", c.Options}
	q := variant{"livefeed int8", c.Options}
	q.opts.Quantize = true
	d := variant{"livefeed int8 no-floats", q.opts}
	d.opts.DropFloats = true
	if c.FloatsDir != "" {
		q.name += " floats-on-disk"
		q.opts.FloatsDir = c.FloatsDir
	}
	switch c.Quantize {
	case "off":
		return []variant{f}, nil
	case "on":
		return []variant{q}, nil
	case "both":
		return []variant{f, q}, nil
	case "all":
		return []variant{f, q, d}, nil
	}
	return nil, fmt.Errorf("quantize %q: want off, on, both or all", c.Quantize)
}

// Report is a run's result.
type Report struct {
	Date       string     `json:"date"`
	GoVersion  string     `json:"go_version"`
	GOMAXPROCS int        `json:"gomaxprocs"`
	Config     Config     `json:"config"`
	Engines    []Engine   `json:"engines"`
	Rows       []Row      `json:"rows"`
	Updates    []*Updates `json:"updates,omitempty"`
	PeerNote   string     `json:"peer_note,omitempty"`
}

// Engine is one engine's build.
type Engine struct {
	Name        string  `json:"name"`
	BuildSec    float64 `json:"build_s"`
	MemoryBytes int64   `json:"memory_bytes"`
	MemoryNote  string  `json:"memory_note"`
	Params      string  `json:"params"`
	// VectorBytes is read by every search (codes, or float32 vectors);
	// RescoreBytes only by rescoring (float32 kept beside codes).
	VectorBytes  int64     `json:"vector_bytes,omitempty"`
	RescoreBytes int64     `json:"rescore_bytes,omitempty"`
	Snapshot     *Snapshot `json:"snapshot,omitempty"`
	// Resident: the process's resident set before the build and after
	// it (and after the queries, when rescoring has mapped pages of a
	// float32 vector file in).
	ResidentBefore Resident   `json:"resident_before"`
	ResidentBuilt  Resident   `json:"resident_built"`
	ResidentQuery  Resident   `json:"resident_queried"`
	FileBytes      int64      `json:"float_file_bytes,omitempty"`
	Rescoring      *Rescoring `json:"rescoring,omitempty"`
}

// Snapshot is the restart measurement: write the index to local disk,
// restore it, compare.
type Snapshot struct {
	Bytes      int64   `json:"bytes"`
	WriteSec   float64 `json:"write_s"`
	RestoreSec float64 `json:"restore_s"`
	// Identical: every query of every filter returned the same hits, rank
	// for rank, from the restored index.
	Identical bool   `json:"identical"`
	Note      string `json:"note,omitempty"`
}

// Row is one engine on one filter.
type Row struct {
	Case        string         `json:"case"`
	Kind        string         `json:"kind"`
	Selectivity float64        `json:"selectivity"`
	Engine      string         `json:"engine"`
	Recall      float64        `json:"recall"`
	P50MS       float64        `json:"p50_ms"`
	P99MS       float64        `json:"p99_ms"`
	QPS1        float64        `json:"qps_1"`       // sequential queries per second
	QPSClients  float64        `json:"qps_clients"` // with Config.Clients concurrent clients
	Plans       map[string]int `json:"plans,omitempty"`
	Scanned     float64        `json:"scanned_mean,omitempty"`
	Queries     int            `json:"queries"`
}

// Run builds the catalogue and the index, measures every filter, then runs
// the peers on the same data.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	rep := &Report{Date: time.Now().UTC().Format("2006-01-02"), GoVersion: runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Config: cfg}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, "bench serving: "+format+"\n", args...) }

	t0 := time.Now()
	cat := Generate(cfg.N, cfg.Queries, cfg.Dim, cfg.Seed, runtime.GOMAXPROCS(0))
	logf("generated %d × %d vectors and %d queries in %.1fs", cfg.N, cfg.Dim, cfg.Queries, time.Since(t0).Seconds())

	cases := Cases()
	if len(cfg.Cases) > 0 {
		cases = slices.DeleteFunc(cases, func(c Case) bool { return !slices.Contains(cfg.Cases, c.Name) })
	}
	masks := make([][]bool, len(cases))
	sels := make([]float64, len(cases))
	for ci, c := range cases {
		masks[ci] = make([]bool, cfg.N)
		n := 0
		for i := range cat.Items {
			if c.Match(&cat.Items[i], cat.Topic[i]) {
				masks[ci][i] = true
				n++
			}
		}
		sels[ci] = float64(n) / float64(cfg.N)
	}

	t0 = time.Now()
	truth := exactTruth(ctx, cat, masks, cfg.K)
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	logf("exact top-%d of %d queries × %d filters in %.1fs", cfg.K, cfg.Queries, len(cases), time.Since(t0).Seconds())

	fs, err := features.NewSet(features.LivestreamDefaults()...)
	if err != nil {
		return rep, err
	}
	vs, err := variants(cfg)
	if err != nil {
		return rep, err
	}
	for i, v := range vs {
		if i > 0 {
			cfg.IndexFile = "" // one file per catalogue and options
		}
		if err := runVariant(ctx, rep, v, cfg, cat, cases, truth, sels, fs, logf); err != nil {
			return rep, err
		}
	}
	if cfg.Peers {
		peerRows, engines, note, err := runPeers(ctx, cfg, cat, cases, masks, sels, truth, logf)
		rep.PeerNote = note
		if err != nil {
			rep.PeerNote = "peers failed: " + err.Error()
			logf("%s", rep.PeerNote)
		}
		rep.Engines = append(rep.Engines, engines...)
		rep.Rows = append(rep.Rows, peerRows...)
	}
	runtime.KeepAlive(cat)
	return rep, nil
}

// runVariant builds one livefeed variant, measures every filter (and the
// ef sweep), the snapshot round trip and the updates.
func runVariant(ctx context.Context, rep *Report, v variant, cfg Config, cat *Catalogue, cases []Case, truth [][][]int,
	sels []float64, fs *features.Set, logf func(string, ...any)) error {
	before := heapInUse()
	rssBefore := resident()
	t0 := time.Now()
	ix, restored, err := buildOrRestore(ctx, v, cfg, cat, fs, logf)
	if err != nil {
		return err
	}
	buildSec := time.Since(t0).Seconds()
	if restored {
		v.name += " (restored)"
	}
	mem := heapInUse() - before
	rssBuilt := resident()
	trav, resc := ix.VectorBytes()
	if err := ix.FloatsErr(); err != nil {
		logf("%s: float32 vectors not on disk: %v", v.name, err)
	}
	opts := v.opts.WithDefaults()
	logf("%s: built the index (%d partitions) in %.1fs, %d MB (vectors: %d MB searched, %d MB rescoring only)",
		v.name, cfg.Partitions, buildSec, mem>>20, trav>>20, resc>>20)
	params := fmt.Sprintf("%d partitions, one graph, M=%d efConstruction=%d efSearch=%d, exact below %d/partition, ACORN below %.0f%%",
		cfg.Partitions, opts.M, opts.EfConstruction, opts.EfSearch, opts.ExactThreshold, 100*opts.ExpandBelow)
	if cfg.N >= opts.LargeGraph {
		params += fmt.Sprintf(", large graph (≥ %d nodes): level 1's list as entry points, efSearch ≥ %d", opts.LargeGraph, opts.LargeEfSearch)
	}
	if len(opts.SubGraphs) > 0 {
		params += fmt.Sprintf(", sub-graphs per %s", strings.Join(opts.SubGraphs, ", per "))
	}
	if !opts.Quantize || !opts.DropFloats {
		params += fmt.Sprintf(", float32 dot kernel: %s", vec.SIMDFloat)
	}
	if opts.Quantize {
		params += fmt.Sprintf(", int8 codes (dot kernel: %s)", vec.SIMDInt8)
		if !opts.DropFloats {
			params += fmt.Sprintf(", rescoring %d·k with float32", opts.Rescore)
			if opts.FloatsDir != "" {
				params += " read from a file"
			}
		}
	}
	eng := Engine{Name: v.name, BuildSec: buildSec, MemoryBytes: mem,
		MemoryNote:  "Go heap growth: graphs, vectors, attribute bitmaps, item copies (without vectors)",
		Params:      params,
		VectorBytes: int64(trav), RescoreBytes: int64(resc),
		ResidentBefore: rssBefore, ResidentBuilt: rssBuilt, FileBytes: int64(ix.FloatFileBytes())}
	defer ix.Close()
	logf("%s: resident set before %d MB (anon %d, file %d), built %d MB (anon %d, file %d); float32 file %d MB",
		v.name, rssBefore.RSS>>20, rssBefore.Anon>>20, rssBefore.File>>20, rssBuilt.RSS>>20, rssBuilt.Anon>>20, rssBuilt.File>>20, eng.FileBytes>>20)

	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for ci, c := range cases {
		if err := ctx.Err(); err != nil {
			return err
		}
		row := measure(ctx, ix, cat, c, truth[ci], cfg, now)
		row.Engine, row.Selectivity = v.name, sels[ci]
		rep.Rows = append(rep.Rows, row)
		logf("%-8s %s recall %.4f p50 %.3fms p99 %.3fms %.0f q/s (%d clients %.0f q/s) plans %v scanned %.0f",
			c.Name, v.name, row.Recall, row.P50MS, row.P99MS, row.QPS1, cfg.Clients, row.QPSClients, row.Plans, row.Scanned)
	}
	for _, ef := range cfg.EfSweep {
		ix.SetEfSearch(ef)
		for ci, c := range cases {
			if err := ctx.Err(); err != nil {
				return err
			}
			row := measure(ctx, ix, cat, c, truth[ci], cfg, now)
			row.Engine, row.Selectivity = fmt.Sprintf("%s ef=%d", v.name, ef), sels[ci]
			rep.Rows = append(rep.Rows, row)
			logf("%-8s %s ef=%d recall %.4f p50 %.3fms p99 %.3fms %.0f q/s plans %v scanned %.0f",
				c.Name, v.name, ef, row.Recall, row.P50MS, row.P99MS, row.QPS1, row.Plans, row.Scanned)
		}
	}
	for _, sw := range cfg.Sweeps {
		o := opts
		sw.Apply(&o)
		ix.SetSearchOptions(o)
		for ci, c := range cases {
			if err := ctx.Err(); err != nil {
				return err
			}
			row := measure(ctx, ix, cat, c, truth[ci], cfg, now)
			row.Engine, row.Selectivity = fmt.Sprintf("%s %s", v.name, sw.Name), sels[ci]
			rep.Rows = append(rep.Rows, row)
			logf("%-8s %s %s recall %.4f p50 %.3fms p99 %.3fms %.0f q/s (%d clients %.0f q/s) plans %v scanned %.0f",
				c.Name, v.name, sw.Name, row.Recall, row.P50MS, row.P99MS, row.QPS1, cfg.Clients, row.QPSClients, row.Plans, row.Scanned)
		}
	}
	ix.SetSearchOptions(opts)
	eng.ResidentQuery = resident()
	logf("%s: resident set after the queries %d MB (anon %d, file %d)", v.name, eng.ResidentQuery.RSS>>20, eng.ResidentQuery.Anon>>20, eng.ResidentQuery.File>>20)
	if opts.FloatsDir != "" && len(cases) > 0 {
		c := cases[0]
		for _, x := range cases {
			if x.Name == "100%" {
				c = x
			}
		}
		eng.Rescoring = measureRescoring(ctx, ix, cat, c, cfg.K, now)
		for _, ph := range eng.Rescoring.Phases {
			logf("%s: rescoring, %s %s: p50 %.3fms p99 %.3fms mean %.3fms, read from the disk %.1f KB per query",
				v.name, c.Name, ph.State, ph.P50MS, ph.P99MS, ph.MeanMS, ph.DiskKB)
		}
	}
	if cfg.Snapshot {
		eng.Snapshot = measureSnapshot(ctx, ix, v, cfg, cat, cases, fs, now)
		logf("%s: snapshot %d MB written in %.2fs, restored in %.2fs (build %.1fs), identical results %v %s",
			v.name, eng.Snapshot.Bytes>>20, eng.Snapshot.WriteSec, eng.Snapshot.RestoreSec, buildSec, eng.Snapshot.Identical, eng.Snapshot.Note)
	}
	rep.Engines = append(rep.Engines, eng)
	if err := ctx.Err(); err != nil || cfg.NoUpdates {
		return err
	}
	u := measureUpdates(ctx, ix, cat, cfg, now)
	u.Engine = v.name
	rep.Updates = append(rep.Updates, u)
	for _, k := range u.Kinds {
		logf("%s update %-40s p50 %.1fµs p99 %.1fµs %.0f/s", v.name, k.Kind, k.P50US, k.P99US, k.PerS)
	}
	logf("%s unfiltered queries: idle p50 %.3fms p99 %.3fms; with %.0f updates/s p50 %.3fms p99 %.3fms",
		v.name, u.IdleP50MS, u.IdleP99MS, u.LoadApplied, u.LoadP50MS, u.LoadP99MS)
	return nil
}

// buildOrRestore builds v's index over the catalogue, or restores it
// from cfg.IndexFile when that exists (restored true), checking that it
// holds the catalogue's items; a built index is saved to cfg.IndexFile.
func buildOrRestore(ctx context.Context, v variant, cfg Config, cat *Catalogue, fs *features.Set,
	logf func(string, ...any)) (*index.Index, bool, error) {
	if cfg.IndexFile != "" {
		if _, err := os.Stat(cfg.IndexFile); err == nil {
			ix, _, err := index.LoadSnapshot(cfg.IndexFile, fs, v.opts)
			if err != nil {
				return nil, false, fmt.Errorf("restoring %s: %w", cfg.IndexFile, err)
			}
			if err := sameCatalogue(ix, cat, cfg.Partitions); err != nil {
				ix.Close()
				return nil, false, fmt.Errorf("%s: %w", cfg.IndexFile, err)
			}
			logf("%s: restored the index from %s", v.name, cfg.IndexFile)
			return ix, true, nil
		}
	}
	ix := index.NewWithOptions(cfg.Partitions, fs, v.opts)
	if err := build(ctx, ix, cat, cfg.Partitions); err != nil {
		ix.Close()
		return nil, false, err
	}
	if cfg.IndexFile != "" {
		t0 := time.Now()
		if _, err := ix.SaveSnapshot(cfg.IndexFile); err != nil {
			ix.Close()
			return nil, false, err
		}
		logf("%s: saved the index to %s in %.1fs", v.name, cfg.IndexFile, time.Since(t0).Seconds())
	}
	return ix, false, nil
}

// sameCatalogue checks that a restored index holds cat's items, each in
// the partition build puts it in (item i in i mod partitions).
func sameCatalogue(ix *index.Index, cat *Catalogue, partitions int) error {
	if ix.Len() != cat.N || ix.Partitions() != partitions {
		return fmt.Errorf("holds %d items in %d partitions, the catalogue %d in %d", ix.Len(), ix.Partitions(), cat.N, partitions)
	}
	for p := range partitions {
		for _, id := range ix.IDs(int32(p)) {
			if i := itemIndex(id); i < 0 || i >= cat.N || i%partitions != p {
				return fmt.Errorf("item %s in partition %d is not the catalogue's", id, p)
			}
		}
	}
	return nil
}

// measureSnapshot saves ix to a file, restores it (timed, after dropping
// nothing from the page cache: the file was just written, as on a
// replica's graceful restart) and compares every query of every filter.
func measureSnapshot(ctx context.Context, ix *index.Index, v variant, cfg Config, cat *Catalogue, cases []Case,
	fs *features.Set, now time.Time) *Snapshot {
	out := &Snapshot{}
	dir := cfg.TempDir
	if dir == "" {
		d, err := os.MkdirTemp("", "livefeed-bench-snapshot-")
		if err != nil {
			out.Note = err.Error()
			return out
		}
		defer os.RemoveAll(d)
		dir = d
	}
	path := filepath.Join(dir, "index.snap")
	defer os.Remove(path)
	t0 := time.Now()
	info, err := ix.SaveSnapshot(path)
	out.WriteSec, out.Bytes = time.Since(t0).Seconds(), info.Bytes
	if err != nil {
		out.Note = err.Error()
		return out
	}
	runtime.GC()
	t0 = time.Now()
	rx, _, err := index.LoadSnapshot(path, fs, v.opts)
	out.RestoreSec = time.Since(t0).Seconds()
	if err != nil {
		out.Note = err.Error()
		return out
	}
	defer rx.Close()
	out.Identical = true
	for _, c := range cases {
		for q := range cat.NQ {
			if ctx.Err() != nil {
				out.Identical, out.Note = false, "cancelled"
				return out
			}
			a, _ := ix.Search(cat.Query(q), cfg.K, c.F, now)
			b, _ := rx.Search(cat.Query(q), cfg.K, c.F, now)
			if len(a) != len(b) {
				out.Identical, out.Note = false, fmt.Sprintf("%s query %d: %d hits, restored %d", c.Name, q, len(a), len(b))
				return out
			}
			for j := range a {
				if a[j].Item.ID != b[j].Item.ID || a[j].Score != b[j].Score {
					out.Identical, out.Note = false, fmt.Sprintf("%s query %d rank %d: %s, restored %s", c.Name, q, j, a[j].Item.ID, b[j].Item.ID)
					return out
				}
			}
		}
	}
	return out
}

// heapInUse is the live heap after two collections: a graph dropped by an
// earlier variant stays reachable through its sync.Pool (registered with
// the runtime) until the pool's victim cache is cleared by the second.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// build upserts the catalogue, item i into partition i mod partitions, one
// writer goroutine per group of partitions (so each shard sees its items in
// order and the build is reproducible).
func build(ctx context.Context, ix *index.Index, cat *Catalogue, partitions int) error {
	workers := min(runtime.GOMAXPROCS(0), partitions)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range cat.Items {
				p := i % partitions
				if p%workers != w {
					continue
				}
				if i%4096 == 0 && ctx.Err() != nil {
					return
				}
				ix.Upsert(int32(p), &cat.Items[i])
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// exactTruth returns, per filter and query, the k nearest allowed items
// (brute force, ties by index).
func exactTruth(ctx context.Context, cat *Catalogue, masks [][]bool, k int) [][][]int {
	truth := make([][][]int, len(masks))
	for ci := range masks {
		truth[ci] = make([][]int, cat.NQ)
	}
	var wg sync.WaitGroup
	next := make(chan int, cat.NQ)
	for q := range cat.NQ {
		next <- q
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			scores := make([]float32, cat.N)
			for q := range next {
				if ctx.Err() != nil {
					return
				}
				qv := cat.Query(q)
				for i := range scores {
					scores[i] = vec.Dot(qv, cat.Vector(i))
				}
				for ci, m := range masks {
					truth[ci][q] = topIndices(scores, m, k)
				}
			}
		})
	}
	wg.Wait()
	return truth
}

func topIndices(scores []float32, mask []bool, k int) []int {
	type si struct {
		s float32
		i int
	}
	h := make([]si, 0, k+1)
	worse := func(a, b si) bool { return a.s < b.s || (a.s == b.s && a.i > b.i) }
	for i, s := range scores {
		if !mask[i] {
			continue
		}
		if len(h) == k && !worse(h[len(h)-1], si{s, i}) {
			continue
		}
		// insertion into a small sorted slice (best first)
		j := sort.Search(len(h), func(j int) bool { return worse(h[j], si{s, i}) })
		h = slices.Insert(h, j, si{s, i})
		if len(h) > k {
			h = h[:k]
		}
	}
	out := make([]int, len(h))
	for j, x := range h {
		out[j] = x.i
	}
	return out
}

func recallOf(got []int, want []int) float64 {
	if len(want) == 0 {
		return 1
	}
	hit := 0
	for _, g := range got {
		if slices.Contains(want, g) {
			hit++
		}
	}
	return float64(hit) / float64(len(want))
}

// measure runs one filter: sequential queries (latency, recall, plans),
// then Config.Clients concurrent clients (throughput).
func measure(ctx context.Context, ix *index.Index, cat *Catalogue, c Case, truth [][]int, cfg Config, now time.Time) Row {
	row := Row{Case: c.Name, Kind: c.Kind, Engine: "livefeed", Plans: map[string]int{}, Queries: cat.NQ}
	for q := range min(cat.NQ, 50) { // warm-up
		ix.Search(cat.Query(q), cfg.K, c.F, now)
	}
	lat := make([]time.Duration, 0, cat.NQ)
	var recall, scanned float64
	start := time.Now()
	for q := range cat.NQ {
		if ctx.Err() != nil {
			break
		}
		t := time.Now()
		hits, st := ix.Search(cat.Query(q), cfg.K, c.F, now)
		lat = append(lat, time.Since(t))
		got := make([]int, len(hits))
		for j, h := range hits {
			got[j] = itemIndex(h.Item.ID)
		}
		recall += recallOf(got, truth[q])
		scanned += float64(st.Scanned)
		row.Plans[st.Plan]++
		for _, ps := range st.Partitions {
			if ps.Far {
				row.Plans["far-partitions"]++
			}
		}
	}
	elapsed := time.Since(start)
	n := len(lat)
	if n == 0 {
		return row
	}
	row.Recall, row.Scanned = recall/float64(n), scanned/float64(n)
	row.P50MS, row.P99MS = percentileMS(lat, 0.50), percentileMS(lat, 0.99)
	row.QPS1 = float64(n) / elapsed.Seconds()
	row.QPSClients = throughput(ctx, cfg.Clients, n, func(q int) { ix.Search(cat.Query(q), cfg.K, c.F, now) })
	return row
}

// throughput runs clients goroutines, each over all n queries (from its own
// offset), and returns queries per second.
func throughput(ctx context.Context, clients, n int, query func(q int)) float64 {
	var wg sync.WaitGroup
	start := time.Now()
	for cl := range clients {
		wg.Go(func() {
			for j := range n {
				if ctx.Err() != nil {
					return
				}
				query((j + cl*n/clients) % n)
			}
		})
	}
	wg.Wait()
	return float64(clients*n) / time.Since(start).Seconds()
}

func percentileMS(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	i = max(0, min(len(s)-1, i))
	return float64(s[i]) / 1e6
}

// ErrNoPeers is reported when python3 or its packages are missing.
var ErrNoPeers = errors.New("python3 with faiss-cpu, hnswlib and numpy not found")
