package validate

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// alertRules is a Prometheus rule file (the fields livefeed's examples use;
// an unknown field fails decoding).
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// The example alert rules parse, select only metrics livefeed (or the
// runtime collectors, or kafka-exporter) exports, name their severity and
// say what fired; Prometheus loads the file.
func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile("../prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	known := knownSeries(t)
	alertName := regexp.MustCompile(`^[A-Z][A-Za-z0-9]+$`)
	templateVar := regexp.MustCompile(`\{\{[^}]*\}\}`)
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if !alertName.MatchString(r.Alert) || seen[r.Alert] {
				t.Errorf("alert %q: want a unique CamelCase name", r.Alert)
			}
			seen[r.Alert] = true
			if err := checkExpr(r.Expr, known); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
				t.Errorf("alert %s: for %q is not a positive duration", r.Alert, r.For)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs a severity label, a summary and a description", r.Alert)
			}
			for _, a := range r.Annotations {
				for _, v := range templateVar.FindAllString(a, -1) {
					if !strings.Contains(v, "$labels.") && !strings.Contains(v, "$value") {
						t.Errorf("alert %s: template %s reads neither $labels nor $value", r.Alert, v)
					}
				}
			}
		}
	}
	if !seen["LivefeedFeatureDrift"] {
		t.Error("alerts.yml lacks LivefeedFeatureDrift")
	}
	prom, err := os.ReadFile("../prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prom), "alerts.yml") {
		t.Error("prometheus.yml does not load alerts.yml (rule_files)")
	}
}
