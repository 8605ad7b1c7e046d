package validate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promql "github.com/prometheus/prometheus/promql/parser"
)

// notInDemo are the dashboard's metrics that a healthy demo run does not
// emit, and why. Every other metric a panel selects must have a series in
// the demo's /metrics, and a counter or histogram one that moved.
var notInDemo = map[string]string{
	"up": "Prometheus' own, per scrape target",
	// Counters of faults, created at the first one: a demo on a healthy
	// embedded broker has none, and their panels stay empty until one.
	"livefeed_late_events_dropped_total":      "an event later than its feature's allowed lateness; the simulator sends none",
	"livefeed_duplicates_absorbed_total":      "a replay after a crash or a rebalance",
	"livefeed_state_backpressure_waits_total": "the changelog falling behind the write-behind queue's byte limit",
}

// mayStayZero are counters whose series exist from the start and that
// count what a demo run may not have done yet.
var mayStayZero = map[string]string{
	"livefeed_embedding_dead_letters_total": "a livestream record the embedding worker cannot read",
	"livefeed_embedding_cache_hits_total":   "a title the worker embedded before; the simulator repeats one after about a minute",
}

// demoJobs are the Prometheus jobs that scrape livefeed in deploy/ (the
// compose file's; the demo is process and serve in one).
var demoJobs = []string{"livefeed-process", "livefeed-serve"}

// Every panel of the Grafana dashboard shows data from a demo run: the
// shipped binary's `livefeed demo` (embedded broker, simulated marketplace,
// test model) runs while the test calls its API; each PromQL vector
// selector of every panel must match a series of its /metrics (with the
// job labels Prometheus adds), and a counter's or histogram's must have
// moved, so a panel cannot plot a metric the binary declares but never
// updates. kafka-exporter's metrics and those in notInDemo are exempt,
// and those in mayStayZero need not move.
func TestDashboardShowsTheDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs livefeed demo for about half a minute")
	}
	bin := livefeedBin(t)
	selectors := dashboardSelectors(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--http", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 20 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	urls := make(chan string, 1)
	go func() {
		api := regexp.MustCompile(`^\s+API\s+(http://\S+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := api.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	defer func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Error("livefeed demo did not stop within 30s of SIGINT")
		}
	}()
	var base string
	select {
	case base = <-urls:
	case err := <-exited:
		t.Fatalf("livefeed demo exited before it was ready: %v\n%s", err, stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("livefeed demo not ready after 2 minutes\n%s", stderr.String())
	}
	ready := time.Now()
	t.Logf("demo at %s", base)

	// What a user of the demo does: recommendations with and without
	// filters, a named query with explain, a text search, the features.
	calls := []struct{ method, path, body string }{
		{"GET", "/v1/recommendations?user_id=u-0001&k=5", ""},
		{"GET", "/v1/recommendations?user_id=u-0002&k=5&category=trading-cards&min_viewers=1", ""},
		{"GET", "/v1/queries/for_you?user_id=u-0001&explain=true", ""},
		{"POST", "/v1/search", `{"text":"vintage sneakers","k":5}`},
	}
	use := func() {
		for _, c := range calls {
			req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}

	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		use()
		series := scrape(t, ctx, base+"/metrics")
		missing = missing[:0]
		for _, s := range selectors {
			if why := s.unmet(series); why != "" {
				missing = append(missing, fmt.Sprintf("panel %q query %s: %s %s", s.panel, s.refID, s.text, why))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Error(m)
	}
	if len(missing) == 0 {
		t.Logf("every panel has data %.0fs after the demo was ready", time.Since(ready).Seconds())
	}
}

// selector is one vector selector of a dashboard query.
type selector struct {
	panel, refID, text string
	name               string
	matchers           []*labels.Matcher
	mustMove           bool // a counter or histogram: some series above 0
}

// unmet says why no series of the scrape satisfies s ("" if one does).
func (s selector) unmet(series []map[string]string) string {
	matched := 0
	for _, ls := range series {
		if !slices.ContainsFunc(s.matchers, func(m *labels.Matcher) bool { return !m.Matches(ls[m.Name]) }) {
			matched++
			if !s.mustMove || ls[valueLabel] != "0" {
				return ""
			}
		}
	}
	if matched == 0 {
		return "selects no series in the demo"
	}
	return fmt.Sprintf("selects %d series in the demo, all 0 (declared but never updated?)", matched)
}

// valueLabel carries a sample's value beside its labels in a scrape.
const valueLabel = "__value__"

// dashboardSelectors are the vector selectors of every panel query, less
// those of kafka-exporter's metrics and of notInDemo.
func dashboardSelectors(t *testing.T) []selector {
	t.Helper()
	raw, err := os.ReadFile("../grafana/livefeed.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var out []selector
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, tg := range p.Targets {
				e, err := promql.NewParser(promql.Options{}).ParseExpr(grafanaVars.Replace(tg.Expr))
				if err != nil {
					t.Errorf("panel %q query %s: %v", p.Title, tg.RefID, err)
					continue
				}
				promql.Inspect(e, func(n promql.Node, _ []promql.Node) error {
					vs, ok := n.(*promql.VectorSelector)
					if !ok {
						return nil
					}
					name := vs.Name
					for _, m := range vs.LabelMatchers {
						if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
							name = m.Value
						}
					}
					if _, ok := notInDemo[name]; ok || slices.Contains(kafkaExporterMetrics, name) {
						return nil
					}
					_, zero := mayStayZero[name]
					move := !zero && (strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_count"))
					out = append(out, selector{panel: p.Title, refID: tg.RefID, text: vs.String(), name: name,
						matchers: vs.LabelMatchers, mustMove: move})
					return nil
				})
			}
		}
	}
	walk(d.Panels)
	if len(out) < 10 {
		t.Fatalf("found %d selectors on the dashboard; the walk is broken", len(out))
	}
	return out
}

// scrape reads a /metrics page into one label set per sample (name in
// __name__, the value in valueLabel), each under every job of demoJobs.
func scrape(t *testing.T, ctx context.Context, url string) []map[string]string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	var out []map[string]string
	add := func(name string, labels []*dto.LabelPair, extra map[string]string, v float64) {
		for _, job := range demoJobs {
			ls := map[string]string{model.MetricNameLabel: name, "job": job, "instance": "demo",
				valueLabel: fmt.Sprint(v)}
			for _, l := range labels {
				ls[l.GetName()] = l.GetValue()
			}
			for k, v := range extra {
				ls[k] = v
			}
			out = append(out, ls)
		}
	}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, m.GetLabel(), nil, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, m.GetLabel(), nil, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, m.GetLabel(), nil, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", m.GetLabel(), map[string]string{"le": fmt.Sprint(b.GetUpperBound())}, float64(b.GetCumulativeCount()))
				}
				add(name+"_bucket", m.GetLabel(), map[string]string{"le": "+Inf"}, float64(h.GetSampleCount()))
				add(name+"_sum", m.GetLabel(), nil, h.GetSampleSum())
				add(name+"_count", m.GetLabel(), nil, float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				add(name, m.GetLabel(), nil, 0)
				add(name+"_sum", m.GetLabel(), nil, s.GetSampleSum())
				add(name+"_count", m.GetLabel(), nil, float64(s.GetSampleCount()))
			}
		}
	}
	return out
}
