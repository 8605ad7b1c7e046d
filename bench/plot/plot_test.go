package plot

import (
	"encoding/xml"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// svgSeries parses an SVG document with encoding/xml and returns, per
// series group, its circles' coordinates and its rectangles' widths.
type svgSeries struct {
	points [][2]float64
	bars   []float64
}

func parseSVG(t *testing.T, path string) map[string]*svgSeries {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	out := map[string]*svgSeries{}
	var (
		stack   []string // series name per open <g>, "" for others
		sawRoot bool
	)
	attr := func(se xml.StartElement, name string) string {
		for _, a := range se.Attr {
			if a.Name.Local == name {
				return a.Value
			}
		}
		return ""
	}
	float := func(se xml.StartElement, name string) float64 {
		v, err := strconv.ParseFloat(attr(se, name), 64)
		if err != nil {
			t.Fatalf("%s: <%s %s=%q>: %v", path, se.Name.Local, name, attr(se, name), err)
		}
		return v
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s does not parse as XML: %v", path, err)
		}
		switch se := tok.(type) {
		case xml.StartElement:
			if !sawRoot {
				if se.Name.Local != "svg" || se.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("%s: root element %v, want svg in the SVG namespace", path, se.Name)
				}
				sawRoot = true
			}
			cur := ""
			if len(stack) > 0 {
				cur = stack[len(stack)-1]
			}
			switch se.Name.Local {
			case "g":
				if s := attr(se, "data-series"); s != "" {
					if out[s] != nil {
						t.Errorf("%s: series %q drawn twice", path, s)
					}
					out[s] = &svgSeries{}
					cur = s
				}
				stack = append(stack, cur)
			case "circle":
				if cur != "" {
					out[cur].points = append(out[cur].points, [2]float64{float(se, "cx"), float(se, "cy")})
				}
			case "rect":
				if cur != "" {
					out[cur].bars = append(out[cur].bars, float(se, "width"))
				}
			}
		case xml.EndElement:
			if se.Name.Local == "g" {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if !sawRoot {
		t.Fatalf("%s: empty document", path)
	}
	return out
}

// The fixtures in testdata draw into three SVG documents that parse and
// hold every series with its points: livefeed's ef sweep and faiss's runs
// at two efSearch values as curves per filter (the rerun's livefeed row,
// a repeat, dropped), each run's throughput bars in proportion, and the
// latency percentiles of freshness and both query runs.
func TestChartsFromFixtures(t *testing.T) {
	in, err := ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Pipelines) != 1 || len(in.Serving) != 2 {
		t.Fatalf("read %d pipeline and %d serving reports, want 1 and 2", len(in.Pipelines), len(in.Serving))
	}
	dir := t.TempDir()
	written, err := WriteDir(dir, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, RecallQPSFile), filepath.Join(dir, ThroughputFile), filepath.Join(dir, LatencyFile)}
	if !slices.Equal(written, want) {
		t.Fatalf("wrote %q, want %q", written, want)
	}

	recall := parseSVG(t, want[0])
	for name, n := range map[string]int{
		"100%/livefeed":               3,
		"100%/faiss post-filter":      3,
		"1%/livefeed":                 1,
		"1%/faiss IDSelectorBitmap":   1,
		"1%/hnswlib post-filter":      1,
		"100%/faiss IDSelectorBitmap": 0,
	} {
		s := recall[name]
		if n == 0 {
			if s != nil {
				t.Errorf("recall/QPS: series %q drawn without data", name)
			}
			continue
		}
		if s == nil {
			t.Errorf("recall/QPS: no series %q; have %q", name, slices.Sorted(maps.Keys(recall)))
			continue
		}
		if len(s.points) != n {
			t.Errorf("recall/QPS %q: %d points, want %d", name, len(s.points), n)
		}
		// Recall on x rises along the curve; the fastest point (ef=16 for
		// livefeed) is highest, y being inverted in SVG.
		for i := 1; i < len(s.points); i++ {
			if s.points[i][0] <= s.points[i-1][0] {
				t.Errorf("recall/QPS %q: points not in recall order: %v", name, s.points)
			}
		}
	}
	if lf := recall["100%/livefeed"]; lf != nil && len(lf.points) == 3 {
		if !(lf.points[0][1] < lf.points[1][1] && lf.points[1][1] < lf.points[2][1]) {
			t.Errorf("recall/QPS livefeed: 8000, 4000, 2000 q/s not drawn top to bottom: %v", lf.points)
		}
	}

	bars := parseSVG(t, want[1])
	run := "pipeline-fixture (kfake, quick)/"
	widths := map[string]float64{}
	for name, v := range map[string]float64{"livefeed processors": 12000, "goka floor (count per key)": 50000,
		"goka two-hop floor": 25000, "franz-go floor": 500000} {
		s := bars[run+name]
		if s == nil || len(s.bars) != 1 {
			t.Fatalf("throughput: series %q missing or not one bar; have %q", run+name, slices.Sorted(maps.Keys(bars)))
		}
		widths[name] = s.bars[0] / v
	}
	for name, k := range widths {
		if r := k / widths["franz-go floor"]; r < 0.95 || r > 1.05 {
			t.Errorf("throughput: bar %q not in proportion to its value (%.3f of the scale)", name, r)
		}
	}

	lat := parseSVG(t, want[2])
	for _, name := range []string{"pipeline-fixture (kfake, quick): produce → visible",
		"pipeline-fixture (kfake, quick): 1 client(s)", "pipeline-fixture (kfake, quick): 2 client(s)"} {
		s := lat[name]
		if s == nil || len(s.points) != len(percentiles) {
			t.Errorf("latency: series %q missing or not %d percentiles; have %q", name, len(percentiles), slices.Sorted(maps.Keys(lat)))
			continue
		}
		for i := 1; i < len(s.points); i++ {
			if s.points[i][1] > s.points[i-1][1] { // higher percentile, higher or equal latency: not lower on screen
				t.Errorf("latency %q: percentiles drawn out of order: %v", name, s.points)
			}
		}
	}
}

// Labels and titles are escaped: a run named with markup stays text.
func TestEscapesText(t *testing.T) {
	c := newCanvas(100, 100, `a <b> & "c"`)
	end := c.series(`x<y`)
	c.text(1, 1, "</svg>", "start", 10, "", "")
	end()
	doc := string(c.bytes())
	dec := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("does not parse: %v\n%s", err, doc)
		}
	}
	if !strings.Contains(doc, "&lt;/svg&gt;") {
		t.Errorf("text not escaped:\n%s", doc)
	}
}

// A directory without reports, or with a report that does not decode, is
// an error rather than an empty chart.
func TestReadDirErrors(t *testing.T) {
	if _, err := ReadDir(t.TempDir()); err == nil {
		t.Error("empty directory: no error")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pipeline.json"), []byte(`{"throughput": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "pipeline.json") {
		t.Errorf("bad report: error %v, want one naming the file", err)
	}
}

// Log axes cover their data with 1-2-5 ticks.
func TestLogRange(t *testing.T) {
	for _, c := range []struct{ lo, hi, wlo, whi float64 }{
		{300, 9000, 200, 10000}, {12000, 500000, 10000, 500000}, {0.6, 13, 0.5, 20}, {100, 100, 100, 1000},
	} {
		lo, hi := logRange(c.lo, c.hi)
		if lo != c.wlo || hi != c.whi {
			t.Errorf("logRange(%g, %g) = %g, %g; want %g, %g", c.lo, c.hi, lo, hi, c.wlo, c.whi)
		}
	}
}

// The charts in docs/bench are those its reports draw: replacing a report
// without running `livefeed bench plot` fails here.
func TestCheckedInPlotsAreCurrent(t *testing.T) {
	const docs = "../../docs/bench"
	in, err := ReadDir(docs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	written, err := WriteDir(dir, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range written {
		name := filepath.Base(path)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(filepath.Join(docs, name))
		if err != nil || !slices.Equal(got, have) {
			t.Errorf("docs/bench/%s is not what its reports draw; regenerate: go run ./cmd/livefeed bench plot", name)
		}
	}
}
