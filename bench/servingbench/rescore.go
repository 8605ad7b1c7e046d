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

// Rescoring is what rescoring from float32 vectors in a mapped file costs
// (Config.FloatsDir): the unfiltered queries (4·k candidates rescored
// each) run with the file's pages in three states.
type Rescoring struct {
	FileBytes int64            `json:"file_bytes"`
	Phases    []RescoringPhase `json:"phases"`
	Note      string           `json:"note,omitempty"`
}

// RescoringPhase is one state of the pages: "mapped" (the queries ran
// just before: no fault), "page cache" (unmapped, still cached: minor
// faults), "disk" (dropped from the page cache too: major faults).
type RescoringPhase struct {
	State       string  `json:"state"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	MeanMS      float64 `json:"mean_ms"`
	MinorFaults float64 `json:"minor_faults_per_query"`
	MajorFaults float64 `json:"major_faults_per_query"`
}

// measureRescoring runs the unfiltered case's queries once to map their
// pages, then in each state.
func measureRescoring(ctx context.Context, ix *index.Index, cat *Catalogue, c Case, k int, now time.Time) *Rescoring {
	out := &Rescoring{FileBytes: int64(ix.FloatFileBytes())}
	run := func(state string) {
		lat := make([]time.Duration, 0, cat.NQ)
		min0, maj0 := faults()
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
		min1, maj1 := faults()
		n := float64(len(lat))
		if n == 0 {
			return
		}
		out.Phases = append(out.Phases, RescoringPhase{State: state, P50MS: percentileMS(lat, 0.5), P99MS: percentileMS(lat, 0.99),
			MeanMS: float64(sum) / 1e6 / n, MinorFaults: float64(min1-min0) / n, MajorFaults: float64(maj1-maj0) / n})
	}
	run("mapped")
	if err := ix.EvictFloats(false); err != nil {
		out.Note = err.Error()
		return out
	}
	run("page cache")
	if err := ix.EvictFloats(true); err != nil {
		out.Note = err.Error()
		return out
	}
	run("disk")
	return out
}

// Resident is the process's resident set (Linux /proc/self/status; zero
// elsewhere), after returning freed heap to the OS.
type Resident struct {
	RSS  int64 `json:"rss_bytes"`
	Anon int64 `json:"rss_anon_bytes"` // heap, stacks: what the index holds in memory
	File int64 `json:"rss_file_bytes"` // mapped file pages (the binary, a float32 vector file's mapped pages)
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
