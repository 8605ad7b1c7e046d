package validate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func loadCompose(t *testing.T, path string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{path}, cli.WithWorkingDirectory(filepath.Dir(path)),
		cli.WithName("livefeed"), cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

// The compose file satisfies the compose-spec schema and compose-go's
// consistency checks, builds the image from deploy/Dockerfile, starts topic
// creation after a healthy Kafka and livefeed after the topics, sets only
// LIVEFEED_* variables that the commands read, and runs process and serve on
// the real model the image carries.
func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, "../compose/compose.yaml")
	if err != nil {
		t.Fatalf("compose file: %v", err)
	}
	models, err := imageModels("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kafka", "topics", "process", "serve", "simulate", "kafka-exporter", "prometheus", "grafana"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	kafka, _ := p.GetService("kafka")
	if !strings.HasPrefix(kafka.Image, "apache/kafka:") || kafka.HealthCheck == nil {
		t.Errorf("kafka: want the apache/kafka image with a health check, got %q", kafka.Image)
	}
	if env := kafka.Environment["KAFKA_PROCESS_ROLES"]; env == nil || *env != "broker,controller" {
		t.Error("kafka: not a combined KRaft node (KAFKA_PROCESS_ROLES)")
	}
	wantDep := map[string][2]string{
		"topics":   {"kafka", types.ServiceConditionHealthy},
		"process":  {"topics", types.ServiceConditionCompletedSuccessfully},
		"serve":    {"topics", types.ServiceConditionCompletedSuccessfully},
		"simulate": {"topics", types.ServiceConditionCompletedSuccessfully},
	}
	for name, dep := range wantDep {
		s, _ := p.GetService(name)
		if d, ok := s.DependsOn[dep[0]]; !ok || d.Condition != dep[1] {
			t.Errorf("%s: want depends_on %s with condition %s, got %+v", name, dep[0], dep[1], s.DependsOn)
		}
		if s.Build == nil {
			t.Errorf("%s: not built from the repository", name)
			continue
		}
		df := s.Build.Dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(s.Build.Context, df)
		}
		if _, err := os.Stat(df); err != nil {
			t.Errorf("%s: dockerfile: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(s.Build.Context, "go.mod")); err != nil {
			t.Errorf("%s: build context %s is not the repository root", name, s.Build.Context)
		}
		var env []string
		for k := range s.Environment {
			env = append(env, k)
		}
		cmd := commandOf(s.Command)
		if cmd == nil {
			t.Errorf("%s: no livefeed command", name)
			continue
		}
		checkEnv(t, "compose service "+name, cmd, env)
		envValues := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				envValues[k] = *v
			}
		}
		if err := checkModel(cmd, s.Command, envValues, models); err != nil {
			t.Errorf("compose service %s: %v", name, err)
		}
		if v, ok := s.Environment["LIVEFEED_BROKERS"]; !ok || v == nil || !strings.HasPrefix(*v, "kafka:") {
			t.Errorf("%s: LIVEFEED_BROKERS must point at the kafka service", name)
		}
	}
	checkPrometheusTargets(t, p)
}

// A compose file with a misspelt key is rejected: the validation is real.
func TestComposeRejectsUnknownKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(bad, []byte("services:\n  a:\n    image: busybox\n    comand: [\"true\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCompose(t, bad); err == nil || !strings.Contains(err.Error(), "comand") {
		t.Fatalf("a misspelt key loaded: %v", err)
	}
	dangling := filepath.Join(dir, "dangling.yaml")
	if err := os.WriteFile(dangling, []byte("services:\n  a:\n    image: busybox\n    depends_on: [nope]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCompose(t, dangling); err == nil {
		t.Fatal("a dependency on a missing service loaded")
	}
}

// Every Prometheus scrape target is a compose service listening on that port
// (livefeed: its --http flag; others: a published port).
func checkPrometheusTargets(t *testing.T, p *types.Project) {
	t.Helper()
	docs := yamlDocs(t, "../prometheus/prometheus.yml")
	if len(docs) != 1 {
		t.Fatalf("prometheus.yml: %d documents", len(docs))
	}
	jobs := list(docs[0], "scrape_configs")
	if len(jobs) == 0 {
		t.Fatal("prometheus.yml: no scrape_configs")
	}
	scraped := map[string]bool{}
	for _, job := range jobs {
		for _, sc := range list(job, "static_configs") {
			for _, target := range strs(sc, "targets") {
				host, port, ok := strings.Cut(target, ":")
				if !ok {
					t.Errorf("job %s: target %q has no port", str(job, "job_name"), target)
					continue
				}
				s, err := p.GetService(host)
				if err != nil {
					t.Errorf("job %s: target %s is no compose service", str(job, "job_name"), target)
					continue
				}
				scraped[host] = true
				listens := false
				if addr, ok := flagValue(s.Command, "http"); ok && strings.HasSuffix(addr, ":"+port) {
					listens = true
				}
				for _, pc := range s.Ports {
					if pc.Target == parsePort(port) {
						listens = true
					}
				}
				if !listens {
					t.Errorf("job %s: %s does not listen on port %s", str(job, "job_name"), host, port)
				}
			}
		}
	}
	for _, want := range []string{"process", "serve", "kafka-exporter"} {
		if !scraped[want] {
			t.Errorf("prometheus does not scrape %s", want)
		}
	}
	// The Kubernetes job keeps annotated pods and uses their port and path.
	k8s := yamlDocs(t, "../prometheus/prometheus-kubernetes.yml")
	if len(k8s) != 1 {
		t.Fatal("prometheus-kubernetes.yml: want one document")
	}
	var relabel []string
	for _, job := range list(k8s[0], "scrape_configs") {
		if str(job, "kubernetes_sd_configs", 0, "role") != "pod" {
			t.Errorf("job %s: want pod service discovery", str(job, "job_name"))
		}
		for _, r := range list(job, "relabel_configs") {
			relabel = append(relabel, strings.Join(strs(r, "source_labels"), ",")+"→"+str(r, "target_label")+str(r, "action"))
		}
	}
	joined := strings.Join(relabel, " ")
	for _, want := range []string{"prometheus_io_scrape→keep", "prometheus_io_path→__metrics_path__", "prometheus_io_port→__address__"} {
		if !strings.Contains(joined, want) {
			t.Errorf("prometheus-kubernetes.yml: no relabelling %s (have %s)", want, joined)
		}
	}
}

func parsePort(s string) uint32 {
	var n uint32
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}
