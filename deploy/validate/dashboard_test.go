package validate

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	promql "github.com/prometheus/prometheus/promql/parser"
)

// kafkaExporterMetrics are the series danielqsj/kafka-exporter (v1.9.0, the
// image deploy/ runs) exports, from its README's metric tables.
var kafkaExporterMetrics = []string{
	"kafka_brokers", "kafka_broker_info",
	"kafka_topic_partitions", "kafka_topic_partition_current_offset", "kafka_topic_partition_oldest_offset",
	"kafka_topic_partition_in_sync_replica", "kafka_topic_partition_leader", "kafka_topic_partition_leader_is_preferred",
	"kafka_topic_partition_replicas", "kafka_topic_partition_under_replicated_partition",
	"kafka_consumergroup_current_offset", "kafka_consumergroup_current_offset_sum",
	"kafka_consumergroup_lag", "kafka_consumergroup_lag_sum", "kafka_consumergroup_members",
}

// livefeedMetrics finds every Prometheus metric livefeed's code declares:
// composite literals of prometheus.{Counter,Gauge,Histogram,Summary}Opts
// and prometheus.NewDesc calls in the module's non-test Go files, with
// their series names (a histogram's _bucket, _sum and _count).
func livefeedMetrics(t *testing.T) map[string]string {
	t.Helper()
	series := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "vendor", "testdata", "node_modules":
				return filepath.SkipDir
			}
			if path != repoRoot {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module (this one)
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		consts := stringConsts(f)
		ast.Inspect(f, func(n ast.Node) bool {
			// A custom collector's prometheus.NewDesc("name", ...): its
			// kind shows only where it is collected; its name is the series.
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewDesc" && len(call.Args) > 0 {
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "prometheus" {
						name, ok := stringValue(call.Args[0], consts)
						if !ok {
							t.Errorf("%s: metric name is not a string constant; this check cannot see it", fset.Position(call.Pos()))
							return true
						}
						series[name] = fset.Position(call.Pos()).String()
					}
				}
				return true
			}
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "prometheus" {
				return true
			}
			kind := strings.TrimSuffix(sel.Sel.Name, "Opts")
			switch kind {
			case "Counter", "Gauge", "Histogram", "Summary":
			default:
				return true
			}
			var ns, sub, name string
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, _ := kv.Key.(*ast.Ident)
				if key == nil {
					continue
				}
				v, ok := stringValue(kv.Value, consts)
				switch key.Name {
				case "Namespace", "Subsystem", "Name":
					if !ok {
						t.Errorf("%s: metric %s is not a string constant; this check cannot see it", fset.Position(kv.Pos()), key.Name)
						return true
					}
				}
				switch key.Name {
				case "Namespace":
					ns = v
				case "Subsystem":
					sub = v
				case "Name":
					name = v
				}
			}
			full := prometheus.BuildFQName(ns, sub, name)
			if full == "" {
				return true
			}
			where := fset.Position(lit.Pos()).String()
			switch kind {
			case "Histogram":
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					series[full+s] = where
				}
			case "Summary":
				for _, s := range []string{"", "_sum", "_count"} {
					series[full+s] = where
				}
			default:
				series[full] = where
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(series) < 5 {
		t.Fatalf("found only %d livefeed series; the scan is broken", len(series))
	}
	return series
}

func stringConsts(f *ast.File) map[string]string {
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							out[n.Name] = s
						}
					}
				}
			}
		}
	}
	return out
}

func stringValue(e ast.Expr, consts map[string]string) (string, bool) {
	switch v := e.(type) {
	case *ast.BasicLit:
		if v.Kind == token.STRING {
			s, err := strconv.Unquote(v.Value)
			return s, err == nil
		}
	case *ast.Ident:
		s, ok := consts[v.Name]
		return s, ok
	}
	return "", false
}

// knownSeries: livefeed's metrics, the Go and process collectors every
// livefeed process registers (app.New), kafka-exporter's, and Prometheus' up.
func knownSeries(t *testing.T) map[string]string {
	known := livefeedMetrics(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		switch mf.GetType().String() {
		case "HISTOGRAM":
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[name+s] = "runtime collector"
			}
		case "SUMMARY":
			for _, s := range []string{"", "_sum", "_count"} {
				known[name+s] = "runtime collector"
			}
		default:
			known[name] = "runtime collector"
		}
	}
	for _, m := range kafkaExporterMetrics {
		known[m] = "kafka-exporter"
	}
	known["up"] = "prometheus"
	return known
}

// grafanaVars replaces Grafana's variables with values PromQL accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// exprMetrics parses a PromQL expression and returns the metric names it selects.
func exprMetrics(expr string) ([]string, error) {
	e, err := promql.NewParser(promql.Options{}).ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var names []string
	promql.Inspect(e, func(n promql.Node, _ []promql.Node) error {
		if vs, ok := n.(*promql.VectorSelector); ok {
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == "__name__" {
						name = m.Value
					}
				}
			}
			names = append(names, name)
		}
		return nil
	})
	return names, nil
}

func checkExpr(expr string, known map[string]string) error {
	names, err := exprMetrics(expr)
	if err != nil {
		return fmt.Errorf("PromQL does not parse: %w", err)
	}
	if len(names) == 0 {
		return fmt.Errorf("selects no metric")
	}
	for _, n := range names {
		if _, ok := known[n]; !ok {
			return fmt.Errorf("metric %q does not exist (not declared in livefeed's code, the runtime collectors or kafka-exporter)", n)
		}
	}
	return nil
}

type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// Every PromQL expression of the Grafana dashboard parses and selects only
// metrics that exist, and the dashboard shows what operating livefeed needs.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../grafana/livefeed.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Fatal("dashboard needs a uid and a title")
	}
	known := knownSeries(t)
	used := map[string]bool{}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if err := checkExpr(tg.Expr, known); err != nil {
					t.Errorf("panel %q query %s: %v\n  %s", p.Title, tg.RefID, err, tg.Expr)
				}
				names, _ := exprMetrics(tg.Expr)
				for _, n := range names {
					used[n] = true
				}
			}
		}
	}
	walk(d.Panels)
	for what, metric := range map[string]string{
		"consumer lag":        "kafka_consumergroup_lag_sum",
		"events/s":            "livefeed_processor_events_total",
		"query latency":       "livefeed_http_request_seconds_bucket",
		"DLQ rate":            "livefeed_dead_letters_total",
		"late events":         "livefeed_late_events_dropped_total",
		"index size":          "livefeed_index_streams",
		"process memory":      "process_resident_memory_bytes",
		"embedding worker":    "livefeed_embedding_records_total",
		"embedding delay":     "livefeed_embedding_record_age_seconds_bucket",
		"view staleness":      "livefeed_serving_staleness_seconds",
		"duplicates absorbed": "livefeed_duplicates_absorbed_total",
		"write-behind queue":  "livefeed_state_queued_bytes",
		"backpressure waits":  "livefeed_state_backpressure_waits_total",
		"the build":           "livefeed_build_info",
	} {
		if !used[metric] {
			t.Errorf("the dashboard does not show %s (%s)", what, metric)
		}
	}
	var unused []string
	for n, src := range known {
		if strings.HasPrefix(n, "livefeed_") && !used[n] && !strings.HasSuffix(n, "_sum") && !strings.HasSuffix(n, "_count") {
			unused = append(unused, n+" ("+src+")")
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Logf("livefeed metrics not on the dashboard: %s", strings.Join(unused, ", "))
	}
}

// The check itself catches a misspelt metric and broken PromQL.
func TestCheckExprRejects(t *testing.T) {
	known := map[string]string{"livefeed_dead_letters_total": "x"}
	for expr, want := range map[string]string{
		`rate(livefeed_dead_letter_total[5m])`:                   "does not exist",
		`sum(rate(livefeed_dead_letters_total[5m])`:              "does not parse",
		`sum by (topic) (rate(livefeed_dead_letters_total[5m]))`: "",
		`{__name__="livefeed_nope"}`:                             "does not exist",
		`vector(1)`:                                              "selects no metric",
	} {
		err := checkExpr(expr, known)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", expr, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", expr, err, want)
		}
	}
}
