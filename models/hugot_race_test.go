package models

import (
	"testing"

	"github.com/gomlx/gomlx/backends"
)

// The "go" backend is re-registered to run ops sequentially (see init in
// hugot.go): the parallel executor of gomlx v0.26.0 has a data race that
// `go test -race` reports on every embed call. The -race runs of
// hugot_test.go are the real check; this one pins the config rewriting.
func TestHugotWithSequentialOps(t *testing.T) {
	cases := map[string]string{
		"":                           "ops_sequential",
		"parallelism=2":              "parallelism=2,ops_sequential",
		"ops_parallel":               "ops_parallel",
		"parallelism=1,ops_parallel": "parallelism=1,ops_parallel",
		"ops_sequential":             "ops_sequential",
	}
	for in, want := range cases {
		if got := withSequentialOps(in); got != want {
			t.Errorf("withSequentialOps(%q) = %q, want %q", in, got, want)
		}
	}
	for _, cfg := range []string{"go", "go:ops_parallel", "go:parallelism=1"} {
		b, err := backends.NewWithConfig(cfg)
		if err != nil {
			t.Errorf("NewWithConfig(%q): %v", cfg, err)
			continue
		}
		b.Finalize()
	}
}
