package plot

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/livefeed/livefeed/bench"
	"github.com/livefeed/livefeed/bench/servingbench"
)

// Pipeline is one `livefeed bench pipeline --json` report and the name it
// is shown under (its file's, e.g. "pipeline-kafka").
type Pipeline struct {
	Name   string
	Report *bench.Report
}

// Serving is the part of a `livefeed bench serving --json` report the
// charts read. The report's Config holds an io.Writer and cannot be
// decoded whole; these are its fields that say what was run.
type Serving struct {
	Date   string `json:"date"`
	Config struct {
		N       int `json:"N"`
		Dim     int `json:"Dim"`
		K       int `json:"K"`
		Queries int `json:"Queries"`
		PeerEf  int `json:"PeerEf"`
	} `json:"config"`
	Rows []servingbench.Row `json:"rows"`
}

// seriesOf names the curve a serving row belongs to: livefeed's ef-sweep
// rows ("livefeed ef=32") join their variant's curve; the peers keep
// their engine's name, faiss's in-traversal filter said as such.
func seriesOf(engine string) string {
	if i := strings.Index(engine, " ef="); i >= 0 {
		engine = engine[:i]
	}
	if engine == "faiss-sel" {
		return "faiss IDSelectorBitmap"
	}
	if engine == "faiss" {
		return "faiss post-filter"
	}
	if engine == "hnswlib" {
		return "hnswlib post-filter"
	}
	return engine
}

// RecallQPS draws recall@k against sequential queries per second, one
// panel per filter (the ann-benchmarks view: up and to the right is
// better), from one or more serving reports on the same data (e.g. runs
// at several --peer-ef merged).
func RecallQPS(reports []Serving) ([]byte, error) {
	type point struct {
		recall, qps float64
		engine      string
	}
	type key struct{ cas, series string }
	var (
		cases    []string
		sels     = map[string]float64{}
		names    []string
		pts      = map[key][]point{}
		n, k, nq int
		seen     = map[[3]string]bool{}
	)
	for _, r := range reports {
		n, k, nq = max(n, r.Config.N), max(k, r.Config.K), max(nq, r.Config.Queries)
		for _, row := range r.Rows {
			// A run repeated for another --peer-ef measures livefeed's
			// configurations again: the first report's rows stand. A peer's
			// kind names its efSearch, so its rows at other values add points.
			id := [3]string{row.Case, row.Engine, row.Kind}
			if row.QPS1 <= 0 || seen[id] {
				continue
			}
			seen[id] = true
			if !slices.Contains(cases, row.Case) {
				cases = append(cases, row.Case)
				sels[row.Case] = row.Selectivity
			}
			s := seriesOf(row.Engine)
			if !slices.Contains(names, s) {
				names = append(names, s)
			}
			kk := key{row.Case, s}
			pts[kk] = append(pts[kk], point{row.Recall, row.QPS1, row.Engine})
		}
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("recall/QPS: the serving reports have no rows")
	}
	colour := map[string]string{}
	for i, s := range names {
		colour[s] = palette[i%len(palette)]
	}

	const cols, pw, ph, padL, padT, gapX, gapY = 4, 250, 190, 70, 60, 90, 80
	rowsN := (len(cases) + cols - 1) / cols
	w := padL + cols*(pw+gapX)
	h := padT + rowsN*(ph+gapY) + 20
	title := fmt.Sprintf("Filtered k-NN: recall@%d vs queries/s per filter selectivity (%d vectors; single-thread)", k, n)
	c := newCanvas(float64(w), float64(h), title)
	for ci, cas := range cases {
		col, row := ci%cols, ci/cols
		left := float64(padL + col*(pw+gapX))
		top := float64(padT + row*(ph+gapY))
		lo, hi := math.Inf(1), 0.0
		minRecall := 1.0
		for _, s := range names {
			for _, p := range pts[key{cas, s}] {
				lo, hi = math.Min(lo, p.qps), math.Max(hi, p.qps)
				minRecall = math.Min(minRecall, p.recall)
			}
		}
		ylo, yhi := logRange(lo, hi)
		xlo := math.Max(0, math.Floor(minRecall*10-0.001)/10)
		if xlo > 0.9 {
			xlo = 0.9
		}
		f := newFrame(left, top, pw, ph, scale{lo: xlo, hi: 1}, scale{lo: ylo, hi: yhi, log: true})
		f.axes(c, "recall", "queries/s")
		c.text(left+pw/2, top-8, fmt.Sprintf("filter %s (selectivity %s)", cas, pct(sels[cas])), "middle", 13, "bold", "")
		for _, s := range names {
			ps := slices.Clone(pts[key{cas, s}])
			if len(ps) == 0 {
				continue
			}
			slices.SortFunc(ps, func(a, b point) int {
				return cmp.Or(cmp.Compare(a.recall, b.recall), cmp.Compare(b.qps, a.qps))
			})
			end := c.series(cas + "/" + s)
			var line [][2]float64
			for _, p := range ps {
				line = append(line, [2]float64{f.x.at(p.recall), f.y.at(p.qps)})
			}
			c.polyline(line, colour[s])
			for i, p := range ps {
				c.marker(line[i][0], line[i][1], colour[s], fmt.Sprintf("%s %s: recall %.4f, %.0f q/s", cas, p.engine, p.recall, p.qps))
			}
			end()
		}
	}
	// The legend goes in the first free panel slot, or below the grid.
	slot := len(cases)
	lx, ly := float64(padL+(slot%cols)*(pw+gapX)), float64(padT+(slot/cols)*(ph+gapY)+20)
	if slot >= rowsN*cols {
		lx, ly = float64(padL), float64(h-10)
	}
	cols2 := make([]string, len(names))
	for i, s := range names {
		cols2[i] = colour[s]
	}
	c.legend(lx, ly, names, cols2)
	c.text(lx, ly+float64(len(names))*17+12, fmt.Sprintf("%d queries per filter; a curve is one engine", nq), "start", 11, "", "")
	c.text(lx, ly+float64(len(names))*17+27, "at several efSearch values", "start", 11, "", "")
	return c.bytes(), nil
}

func pct(sel float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", 100*sel), "0"), ".") + "%"
}

// runLabel names a pipeline run in a chart: its file's name and broker.
func runLabel(p Pipeline) string {
	b := p.Report.Brokers
	if !strings.Contains(b, "kfake") {
		b = "Kafka"
	} else {
		b = "kfake"
	}
	mode := ""
	if p.Report.Quick {
		mode = ", quick"
	}
	return fmt.Sprintf("%s (%s%s)", p.Name, b, mode)
}

// Throughput draws input events per CPU-second of livefeed's processors
// beside the floors measured in the same run: goka counting per key,
// goka's two hops, and a bare franz-go consume-count-produce loop.
func Throughput(runs []Pipeline) ([]byte, error) {
	type bar struct {
		name string
		v    float64
	}
	type group struct {
		label string
		bars  []bar
	}
	var groups []group
	names := []string{"livefeed processors", "goka floor (count per key)", "goka two-hop floor", "franz-go floor"}
	for _, p := range runs {
		t := p.Report.Throughput
		if t == nil {
			continue
		}
		g := group{label: runLabel(p)}
		g.bars = append(g.bars, bar{names[0], t.EventsPerCPUSecond})
		for i, fl := range []*bench.FloorResult{t.Floor, t.TwoHopFloor, t.FranzFloor} {
			if fl != nil {
				g.bars = append(g.bars, bar{names[i+1], fl.EventsPerCPUSecond})
			}
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return nil, fmt.Errorf("throughput: no pipeline report has a throughput phase")
	}
	hi := 0.0
	for _, g := range groups {
		for _, b := range g.bars {
			hi = math.Max(hi, b.v)
		}
	}
	const left, barH, gap, width = 250, 20, 26, 520
	nBars := 0
	for _, g := range groups {
		nBars += len(g.bars)
	}
	h := 60 + float64(nBars*barH+len(groups)*(gap+18)) + 50
	c := newCanvas(left+width+170, h, "Processor throughput: input events per CPU-second (higher is better)")
	x := scale{lo: 0, hi: niceStep(hi/5) * math.Ceil(hi/niceStep(hi/5)), p0: left, p1: left + width}
	top := 60.0
	y := top
	colour := map[string]string{}
	for i, n := range names {
		colour[n] = palette[i]
	}
	for _, g := range groups {
		c.text(10, y+12, g.label, "start", 12, "bold", "")
		y += 18
		for _, b := range g.bars {
			end := c.series(g.label + "/" + b.name)
			c.text(left-8, y+barH*0.7, b.name, "end", 12, "", "")
			c.rect(left, y+2, x.at(b.v)-left, barH-4, colour[b.name], "none")
			c.text(x.at(b.v)+5, y+barH*0.7, fmt.Sprintf("%.0f", b.v), "start", 11, "", "")
			end()
			y += barH
		}
		y += gap
	}
	for _, v := range x.ticks() {
		px := x.at(v)
		c.line(px, top, px, y-gap+4, "#e5e5e5", 1, "")
		c.text(px, y-gap+18, label(v), "middle", 11, "", "")
	}
	c.line(left, top, left, y-gap+4, "#888888", 1, "")
	c.text(left+width/2, y-gap+36, "input events per second of process CPU (all cores), same backlog, broker and config", "middle", 12, "", "")
	return c.bytes(), nil
}

// percentiles in the order a distribution is drawn.
var percentiles = []struct {
	name string
	of   func(bench.Latency) float64
}{
	{"p50", func(l bench.Latency) float64 { return l.P50 }},
	{"p90", func(l bench.Latency) float64 { return l.P90 }},
	{"p95", func(l bench.Latency) float64 { return l.P95 }},
	{"p99", func(l bench.Latency) float64 { return l.P99 }},
	{"max", func(l bench.Latency) float64 { return l.Max }},
}

// Latency draws the latency distributions as percentile curves (log ms):
// data freshness (produce → visible in /v1/recommendations) and
// recommendation query latency, sequential and concurrent, per run.
func Latency(runs []Pipeline) ([]byte, error) {
	type curve struct {
		name string
		l    bench.Latency
	}
	var fresh, query []curve
	for _, p := range runs {
		lbl := runLabel(p)
		if f := p.Report.Freshness; f != nil && f.Latency.Count > 0 {
			fresh = append(fresh, curve{lbl + ": produce → visible", f.Latency})
		}
		if q := p.Report.Query; q != nil {
			for _, run := range []bench.QueryRun{q.Sequential, q.Concurrent} {
				if run.Client.Count > 0 {
					query = append(query, curve{fmt.Sprintf("%s: %d client(s)", lbl, run.Clients), run.Client})
				}
			}
		}
	}
	if len(fresh)+len(query) == 0 {
		return nil, fmt.Errorf("latency: no pipeline report has a freshness or query phase")
	}
	const pw, ph, padL, top, gapX = 380, 260, 80, 70, 110
	panels := []struct {
		title  string
		curves []curve
	}{{"Data freshness: produce → visible in recommendations", fresh}, {"Recommendation query latency (client side)", query}}
	c := newCanvas(padL+2*(pw+gapX), top+ph+60+float64(max(len(fresh), len(query)))*17+20,
		"Latency distributions (bench pipeline; log scale)")
	for pi, pn := range panels {
		left := float64(padL + pi*(pw+gapX))
		lo, hi := math.Inf(1), 0.0
		for _, cv := range pn.curves {
			for _, p := range percentiles {
				v := p.of(cv.l)
				if v > 0 {
					lo, hi = math.Min(lo, v), math.Max(hi, v)
				}
			}
		}
		if hi == 0 {
			lo, hi = 1, 10
		}
		ylo, yhi := logRange(lo, hi)
		f := newFrame(left, top, pw, ph, scale{lo: 0, hi: float64(len(percentiles) - 1)}, scale{lo: ylo, hi: yhi, log: true, unit: "ms"})
		// Categorical x axis: draw the frame and y grid, then our own x labels.
		c.rect(f.left, f.top, pw, ph, "#ffffff", "#888888")
		for _, v := range f.y.ticks() {
			py := f.y.at(v)
			c.line(f.left, py, f.right, py, "#e5e5e5", 1, "")
			c.text(f.left-5, py+4, label(v)+"ms", "end", 11, "", "")
		}
		for i, p := range percentiles {
			px := f.x.at(float64(i))
			c.line(px, f.top, px, f.bottom, "#e5e5e5", 1, "")
			c.text(px, f.bottom+15, p.name, "middle", 11, "", "")
		}
		c.text(left+pw/2, top-10, pn.title, "middle", 13, "bold", "")
		var lnames, lcols []string
		for i, cv := range pn.curves {
			col := palette[i%len(palette)]
			end := c.series(cv.name)
			var line [][2]float64
			for j, p := range percentiles {
				line = append(line, [2]float64{f.x.at(float64(j)), f.y.at(p.of(cv.l))})
			}
			c.polyline(line, col)
			for j, p := range percentiles {
				c.marker(line[j][0], line[j][1], col, fmt.Sprintf("%s %s %.2fms", cv.name, p.name, p.of(cv.l)))
			}
			end()
			lnames, lcols = append(lnames, fmt.Sprintf("%s (n=%d)", cv.name, cv.l.Count)), append(lcols, col)
		}
		c.legend(left, top+ph+40, lnames, lcols)
	}
	return c.bytes(), nil
}
