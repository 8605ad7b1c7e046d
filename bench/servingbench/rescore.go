package servingbench

import (
	"bufio"
	"context"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/livefeed/livefeed/serving/index"
)

// Rescoring is what rescoring from float32 vectors in a file costs
// (Config.FloatsDir): the unfiltered queries (4·k candidates rescored
// each, one pread of a vector each) run with the file in the page cache,
// then after dropping it from there.
type Rescoring struct {
	FileBytes int64            `json:"file_bytes"`
	Phases    []RescoringPhase `json:"phases"`
	Note      string           `json:"note,omitempty"`
}

// RescoringPhase is one state of the file's pages: "page cache" (the
// queries ran just before) or "disk" (dropped from the page cache first).
type RescoringPhase struct {
	State  string  `json:"state"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MeanMS float64 `json:"mean_ms"`
	// DiskKB is what the process read from the storage device per query
	// (/proc/self/io read_bytes).
	DiskKB float64 `json:"disk_kb_per_query"`
}

// measureRescoring runs the unfiltered case's queries with the file's
// pages cached (they ran just before), then with them dropped.
func measureRescoring(ctx context.Context, ix *index.Index, cat *Catalogue, c Case, k int, now time.Time) *Rescoring {
	out := &Rescoring{FileBytes: int64(ix.FloatFileBytes())}
	run := func(state string) {
		lat := make([]time.Duration, 0, cat.NQ)
		rb0 := readBytes()
		var sum time.Duration
		for q := range cat.NQ {
			if ctx.Err() != nil {
				return
			}
			t := time.Now()
			ix.Search(cat.Query(q), k, c.F, now)
			d := time.Since(t)
			lat = append(lat, d)
			sum += d
		}
		rb1 := readBytes()
		n := float64(len(lat))
		if n == 0 {
			return
		}
		out.Phases = append(out.Phases, RescoringPhase{State: state, P50MS: percentileMS(lat, 0.5), P99MS: percentileMS(lat, 0.99),
			MeanMS: float64(sum) / 1e6 / n, DiskKB: float64(rb1-rb0) / 1024 / n})
	}
	run("page cache")
	if err := ix.EvictFloats(); err != nil {
		out.Note = err.Error()
		return out
	}
	run("disk")
	return out
}

// readBytes is what the process has read from storage (Linux; 0 else).
func readBytes() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "read_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// Resident is the process's resident set (Linux /proc/self/status; zero
// elsewhere), after returning freed heap to the OS.
type Resident struct {
	RSS  int64 `json:"rss_bytes"`
	Anon int64 `json:"rss_anon_bytes"` // heap, stacks: what the index holds in memory
	File int64 `json:"rss_file_bytes"` // mapped file pages (the binary)
}

func resident() Resident {
	debug.FreeOSMemory()
	var r Resident
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return r
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &r.RSS
		case "RssAnon":
			dst = &r.Anon
		case "RssFile":
			dst = &r.File
		default:
			continue
		}
		if kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			*dst = kb << 10
		}
	}
	return r
}
