package app

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// The generated test model never runs silently: every start logs it at warn
// level and exports livefeed_embedding_model_info{model="test"}; every
// process exports livefeed_build_info.
func TestModelAndBuildInfo(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		cfg       Config
		wantModel string // "": no model info
	}{
		{"test model", Config{ModelDir: TestModel}, TestModel},
		{"no embeddings", Config{NoEmbeddings: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncBuffer
			cfg := tc.cfg
			cfg.DataDir = t.TempDir()
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			a, err := New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			mfs, err := a.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			build := labelsOf(mfs, "livefeed_build_info")
			if len(build) != 1 || build[0]["goversion"] == "" || build[0]["version"] == "" || build[0]["revision"] == "" {
				t.Errorf("livefeed_build_info: %v", build)
			}
			model := labelsOf(mfs, "livefeed_embedding_model_info")
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), "TEST model")
			if tc.wantModel == "" {
				if len(model) != 0 || warned {
					t.Errorf("without embeddings: model info %v, warned %v", model, warned)
				}
				return
			}
			if len(model) != 1 || model[0]["model"] != tc.wantModel || model[0]["dim"] == "" || model[0]["version"] == "" {
				t.Errorf("livefeed_embedding_model_info: %v, want model=%q", model, tc.wantModel)
			}
			if !warned {
				t.Errorf("the test model was not announced at warn level; logs:\n%s", logs.String())
			}
		})
	}
}

func labelsOf(mfs []*dto.MetricFamily, name string) []map[string]string {
	var out []map[string]string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if m.GetGauge().GetValue() != 1 {
				l["value"] = "not 1"
			}
			out = append(out, l)
		}
	}
	return out
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
